"""Demo: authenticate, refresh, send FA(3) invoices online and in a batch.

    python scripts/demo.py                 against the built-in simulator (loopback)
    KSEF_NIP=... KSEF_TOKEN=... KSEF_ENV=test python scripts/demo.py
                                           against KSeF TEST (or DEMO)

It prints the KSeF number of every invoice and the session UPO's reference number,
then sends a batch session in small parts with a progress bar on stderr and prints
the outcome of every invoice in it.
The invoices come from ``scripts/data/invoice_fa3_template.xml``. PROD is refused:
a demo has no business issuing real invoices.
"""

from __future__ import annotations

import argparse
import os
import string
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TextIO

import attrs

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # running as `python scripts/demo.py`
    sys.path.insert(0, str(REPO_ROOT))

from ksef_facade import Environment, Secret, nip_context  # noqa: E402
from ksef_facade._sync.client import KsefClient  # noqa: E402
from ksef_facade.batch_state import BatchProgress, BatchResult, OutcomeKind  # noqa: E402
from ksef_facade.forms import FormCode  # noqa: E402

TEMPLATE = Path(__file__).resolve().parent / "data" / "invoice_fa3_template.xml"
SIMULATOR_NIP = "5265877635"
DEFAULT_BUYER_NIP = "3896717236"


@attrs.frozen
class Target:
    """Where the demo runs: an environment, a NIP and its KSeF token."""

    environment: Environment
    nip: str
    ksef_token: Secret
    label: str


def render_invoice(seller_nip: str, buyer_nip: str, number: str, issued: date) -> bytes:
    """Return an FA(3) invoice from the template, as UTF-8 bytes."""
    template = string.Template(TEMPLATE.read_text(encoding="utf-8"))
    text = template.substitute(
        seller_nip=seller_nip,
        buyer_nip=buyer_nip,
        invoice_number=number,
        issue_date=issued.isoformat(),
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    return text.encode("utf-8")


def target_from_env(environ: Mapping[str, str]) -> Target | None:
    """Return the real KSeF target named by KSEF_* variables, or None for the sim."""
    nip, token = environ.get("KSEF_NIP"), environ.get("KSEF_TOKEN")
    if not nip and not token:
        return None
    if not nip or not token:
        raise SystemExit("demo: set both KSEF_NIP and KSEF_TOKEN, or neither.")

    environment = Environment.parse(environ.get("KSEF_ENV", "test"))
    if environment.name == "prod":
        raise SystemExit("demo: refusing to send demo invoices to KSeF PROD.")
    return Target(environment, nip, Secret(token), f"KSeF {environment.name.upper()}")


@contextmanager
def simulator_target() -> Iterator[Target]:
    """Serve the built-in simulator on a loopback port for the demo's duration."""
    from ksef_facade.testing import Simulator
    from ksef_facade.testing.server import run_simulator

    sim = Simulator()
    token = sim.add_ksef_token(SIMULATOR_NIP)
    with run_simulator(sim) as base_url:
        yield Target(
            Environment.custom(base_url, name="simulator"),
            SIMULATOR_NIP,
            Secret(token),
            f"the built-in simulator at {base_url}",
        )


def authenticate_and_refresh(
    client: KsefClient, ksef_token: Secret, out: TextIO
) -> None:
    """Authenticate the context NIP, refresh once, and hand the tokens to the client."""
    tokens = client.auth.authenticate_with_ksef_token(ksef_token)
    print(
        f"Authenticated; access token valid until {tokens.access_valid_until}", file=out
    )

    refreshed = client.auth.refresh_access_token(tokens.refresh_token)
    print(f"Refreshed; new access token valid until {refreshed.valid_until}", file=out)

    # The client's TokenProvider starts from these tokens instead of a new login.
    if client.tokens is not None:
        client.tokens.seed_tokens(
            attrs.evolve(
                tokens,
                access_token=refreshed.token,
                access_valid_until=refreshed.valid_until,
            )
        )


def send_online(
    client: KsefClient, nip: str, buyer_nip: str, count: int, out: TextIO
) -> list[str]:
    """Send ``count`` FA(3) invoices in one online session; return KSeF numbers."""
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    today = date.today()

    with client.online_session(FormCode.FA3) as session:
        print(f"Online session {session.reference_number} opened", file=out)
        handles = [
            session.send(render_invoice(nip, buyer_nip, f"DEMO/{stamp}/{n}", today))
            for n in range(1, count + 1)
        ]
        numbers = [handle.result() for handle in handles]
        for number in numbers:
            print(f"Invoice accepted: KSeF number {number}", file=out)

    print(f"Online session {session.reference_number} closed", file=out)
    upo_pages = session.upo()
    for reference in upo_pages:
        print(f"Session UPO reference: {reference}", file=out)
    return numbers


class ProgressBar:
    """A plain-text progress bar: ``[#####-----] 5/10 parts``."""

    def __init__(self, stream: TextIO, width: int = 20) -> None:
        self._stream = stream
        self._width = width
        self._live = stream.isatty()

    def __call__(self, progress: BatchProgress) -> None:
        """Draw the bar for ``progress`` (in place on a terminal)."""
        total = max(progress.parts_total, 1)
        filled = self._width * progress.parts_done // total
        bar = "#" * filled + "-" * (self._width - filled)
        text = f"[{bar}] {progress.parts_done}/{progress.parts_total} parts"
        done = progress.parts_done == progress.parts_total
        if self._live:
            print("\r" + text, end="\n" if done else "", file=self._stream, flush=True)
        else:
            print(text, file=self._stream, flush=True)


def send_batch(
    client: KsefClient,
    nip: str,
    buyer_nip: str,
    count: int,
    out: TextIO,
    progress: TextIO,
) -> BatchResult:
    """Send ``count`` FA(3) invoices in one batch session, in small parts."""
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    today = date.today()
    invoices = (
        (f"demo-{n}.xml", render_invoice(nip, buyer_nip, f"DEMO/B/{stamp}/{n}", today))
        for n in range(1, count + 1)
    )

    print(f"Sending {count} invoices in a batch session", file=out)
    # Small parts, so that even a demo-sized package shows parallel uploads.
    result = client.send_batch(
        invoices, FormCode.FA3, part_size=1_000, on_progress=ProgressBar(progress)
    )
    print(f"Batch session {result.session_reference_number} processed", file=out)
    for outcome in result.outcomes:
        if outcome.kind is OutcomeKind.ACCEPTED:
            detail = f"accepted as {outcome.ksef_number}"
        elif outcome.status is not None and outcome.kind is OutcomeKind.REJECTED:
            detail = f"rejected, {outcome.status.code} {outcome.status.description}"
        else:
            detail = f"unknown: {outcome.reason}"
        print(f"Batch invoice {outcome.name}: {detail}", file=out)
    for reference in result.upo:
        print(f"Batch session UPO reference: {reference}", file=out)
    return result


def run(
    target: Target,
    *,
    count: int,
    buyer_nip: str,
    out: TextIO,
    batch_count: int = 6,
) -> list[str]:
    """Run the whole demo against ``target``; return the KSeF numbers."""
    print(f"Running against {target.label} for NIP {target.nip}", file=out)
    with (
        KsefClient(
            target.environment,
            ksef_token=target.ksef_token,
            poll_interval=timedelta(milliseconds=200),
        ) as client,
        nip_context(target.nip),
    ):
        authenticate_and_refresh(client, target.ksef_token, out)
        numbers = send_online(client, target.nip, buyer_nip, count, out)
        send_batch(client, target.nip, buyer_nip, batch_count, out, sys.stderr)
    return numbers


def main(
    argv: list[str] | None = None, environ: Mapping[str, str] | None = None
) -> int:
    """Parse arguments, pick the target (simulator by default) and run the demo."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=3, help="how many to send")
    parser.add_argument(
        "--batch-invoices", type=int, default=6, help="how many to send in a batch"
    )
    args = parser.parse_args(argv)
    environ = os.environ if environ is None else environ
    buyer_nip = environ.get("KSEF_BUYER_NIP", DEFAULT_BUYER_NIP)

    real = target_from_env(environ)
    if real is not None:
        run(
            real,
            count=args.invoices,
            buyer_nip=buyer_nip,
            out=sys.stdout,
            batch_count=args.batch_invoices,
        )
        return 0

    with simulator_target() as target:
        run(
            target,
            count=args.invoices,
            buyer_nip=buyer_nip,
            out=sys.stdout,
            batch_count=args.batch_invoices,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
