"""Command line: ``ksef-sim serve`` (or ``python -m ksef_facade.testing serve``).

Starts the simulator on a loopback port, prints its base URL and the KSeF tokens it
accepts, and serves until interrupted. Tokens are given as ``NIP:SECRET`` (repeat
``--token``); with none, one is made for the default test NIP and printed.
With ``--validate-contract`` each contract violation is written to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from .identifiers import TEST_NIP

if TYPE_CHECKING:
    from .simulator import Simulator

__all__ = ["main"]

# Simulator options the command line can set; unset ones keep their defaults.
_TUNABLE = ("seed", "processing_delay", "access_token_ttl", "refresh_token_ttl")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ksef-sim", description="A local KSeF 2.0 simulator."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the simulator over HTTP")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=int, default=8765, help="port (0 picks a free one)"
    )
    serve.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="NIP:SECRET",
        help="a KSeF token to accept for a NIP context (repeatable)",
    )
    # Options left out keep the Simulator's own defaults (hence SUPPRESS).
    serve.add_argument(
        "--seed",
        type=int,
        default=argparse.SUPPRESS,
        help="seed for keys and identifiers (default 0)",
    )
    serve.add_argument(
        "--processing-delay",
        type=float,
        default=argparse.SUPPRESS,
        help="seconds until work completes (default 0)",
    )
    serve.add_argument(
        "--access-token-ttl",
        type=float,
        default=argparse.SUPPRESS,
        help="seconds (default 900)",
    )
    serve.add_argument(
        "--refresh-token-ttl",
        type=float,
        default=argparse.SUPPRESS,
        help="seconds (default 7 days)",
    )
    serve.add_argument(
        "--rate-limits", action="store_true", help="enforce the spec's x-rate-limits"
    )
    serve.add_argument(
        "--validate-contract",
        action="store_true",
        help="validate traffic against the pinned spec (KSEF_SPEC_FILE); "
        "violations are written to stderr",
    )
    return parser


def _parse_tokens(values: list[str]) -> list[tuple[str, str]]:
    tokens = []
    for value in values:
        nip, sep, secret = value.partition(":")
        if not sep or not secret:
            raise SystemExit(
                f"--token must look like NIP:SECRET, got {value[:12]!r}..."
            )
        tokens.append((nip, secret))
    return tokens


def report_violations(
    sim: Simulator, reported: tuple[int, int], out: TextIO
) -> tuple[int, int]:
    """Write the contract violations not yet reported; return the new counts.

    ``reported`` counts the request and the response violations written so far;
    with ``--validate-contract`` this is how the operator sees them.
    """
    with sim.lock:
        requests = list(sim.contract_request_violations)
        responses = list(sim.contract_violations)
    for problem in requests[reported[0] :]:
        out.write(f"contract violation (request): {problem}\n")
    for problem in responses[reported[1] :]:
        out.write(f"contract violation (response): {problem}\n")
    out.flush()
    return len(requests), len(responses)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)

    from .server import start_server
    from .simulator import Simulator

    try:
        sim = Simulator(
            **{name: getattr(args, name) for name in _TUNABLE if hasattr(args, name)},
            enforce_rate_limits=args.rate_limits,
            validate_contract=args.validate_contract,
        )
    except (FileNotFoundError, ImportError) as exc:
        raise SystemExit(f"cannot validate the contract: {exc}") from exc
    accepted = []
    try:
        for nip, secret in _parse_tokens(args.token) or [(TEST_NIP, "")]:
            accepted.append((nip, sim.add_ksef_token(nip, secret or None)))
    except ValueError as exc:
        raise SystemExit(f"invalid --token: {exc}") from exc

    base_url, server, thread = start_server(sim, args.host, args.port)
    out = sys.stdout
    out.write(f"KSeF simulator listening on {base_url}\n")
    for nip, token in accepted:
        out.write(f"KSeF token for NIP {nip}: {token}\n")
    out.flush()

    reported = (0, 0)
    try:
        while thread.is_alive():
            thread.join(timeout=0.5)
            reported = report_violations(sim, reported, sys.stderr)
    except KeyboardInterrupt:
        server.should_exit = True
        thread.join(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
