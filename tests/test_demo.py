"""The demo script: runs against the simulator; reads KSEF_* for real KSeF."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from ksef_facade import DEMO, TEST
from ksef_facade.identifiers import is_valid_ksef_number

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "demo.py"


def _load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ksef_demo", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo = _load_demo()


def test_demo_against_simulator(capsys: pytest.CaptureFixture[str]) -> None:
    """By default the demo sends invoices to the simulator and prints their numbers."""
    assert demo.main(["--invoices", "2"], environ={}) == 0

    out = capsys.readouterr().out
    numbers = re.findall(r"KSeF number (\S+)", out)
    assert len(numbers) == 2
    assert all(is_valid_ksef_number(number) for number in numbers)
    assert "Refreshed; new access token" in out
    assert re.search(r"Session UPO reference: \d{8}-EU-", out)


def test_demo_runs_as_a_script() -> None:
    """`python scripts/demo.py` (what `make demo` runs) exits 0 with a UPO line."""
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--invoices", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )

    assert result.returncode == 0, result.stderr
    assert "Session UPO reference" in result.stdout


def test_rendered_invoice_names_both_parties() -> None:
    """The template is filled with the seller, the buyer and the invoice number."""
    xml = demo.render_invoice(
        "5265877635", "3896717236", "DEMO/1", demo.date(2026, 1, 2)
    )

    assert b"<NIP>5265877635</NIP>" in xml
    assert b"<NIP>3896717236</NIP>" in xml
    assert b"<P_2>DEMO/1</P_2>" in xml
    assert b"<P_1>2026-01-02</P_1>" in xml
    assert b"${" not in xml


def test_ksef_variables_select_test() -> None:
    """KSEF_NIP and KSEF_TOKEN select KSeF TEST unless KSEF_ENV says otherwise."""
    target = demo.target_from_env({"KSEF_NIP": "5265877635", "KSEF_TOKEN": "t"})

    assert target.environment is TEST
    assert target.ksef_token.reveal() == "t"


def test_ksef_env_demo() -> None:
    """KSEF_ENV=demo selects the DEMO environment."""
    target = demo.target_from_env(
        {"KSEF_NIP": "5265877635", "KSEF_TOKEN": "t", "KSEF_ENV": "demo"}
    )

    assert target.environment is DEMO


def test_prod_is_refused() -> None:
    """The demo never sends invoices to PROD."""
    with pytest.raises(SystemExit, match="PROD"):
        demo.target_from_env(
            {"KSEF_NIP": "5265877635", "KSEF_TOKEN": "t", "KSEF_ENV": "prod"}
        )


def test_half_configured_is_refused() -> None:
    """A NIP without a token is an error, not a silent fallback to the simulator."""
    with pytest.raises(SystemExit, match="both"):
        demo.target_from_env({"KSEF_NIP": "5265877635"})
