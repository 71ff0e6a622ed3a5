"""The ksef-sim command line."""

from __future__ import annotations

import io
import subprocess
import sys

import httpx
import pytest

from ksef_facade.testing.__main__ import _parse_tokens, main, report_violations
from ksef_facade.testing.simulator import Simulator


def test_token_option_is_parsed() -> None:
    """--token NIP:SECRET splits at the first colon."""
    assert _parse_tokens(["5265877635:a:b"]) == [("5265877635", "a:b")]


def test_malformed_token_option_exits() -> None:
    """A --token without a colon stops with a message."""
    with pytest.raises(SystemExit):
        _parse_tokens(["5265877635"])


def test_serve_prints_base_url_and_tokens() -> None:
    """`python -m ksef_facade.testing serve` prints where it listens and its tokens."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ksef_facade.testing",
            "serve",
            "--port",
            "0",
            "--token",
            "5265877635:SECRET-1",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        second = process.stdout.readline().strip()
        base_url = first.rsplit(" ", 1)[-1]
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/v2")
        assert second == "KSeF token for NIP 5265877635: SECRET-1"
        response = httpx.get(f"{base_url}/security/public-key-certificates", timeout=10)
        assert response.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def test_violations_are_reported_once_each() -> None:
    """report_violations writes each new request or response violation once."""
    sim = Simulator()
    out = io.StringIO()
    sim.record_contract_violation("request", "POST /v2/x (x): bad")
    counts = report_violations(sim, (0, 0), out)
    sim.record_contract_violation("response", "GET /v2/y (y) -> 200: bad")
    counts = report_violations(sim, counts, out)
    assert counts == (1, 1)
    assert out.getvalue().splitlines() == [
        "contract violation (request): POST /v2/x (x): bad",
        "contract violation (response): GET /v2/y (y) -> 200: bad",
    ]


def test_validate_contract_without_spec_exits_with_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """serve --validate-contract with no spec file exits naming the problem."""
    monkeypatch.setenv("KSEF_SPEC_FILE", str(tmp_path / "missing.json"))
    with pytest.raises(SystemExit, match="cannot validate the contract"):
        main(["serve", "--port", "0", "--validate-contract"])
