"""The README's code examples run as written, against the simulator."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

import ksef_facade
from ksef_facade import Environment
from ksef_facade.testing.pytest_plugin import SimulatorEnv

README = Path(__file__).resolve().parent.parent / "README.md"
INVOICE = Path(__file__).resolve().parent / "data" / "fa3_invoice.xml"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text("utf-8"), re.DOTALL)


@pytest.fixture
def readme_namespace(
    ksef_simulator: SimulatorEnv, monkeypatch: pytest.MonkeyPatch
) -> dict[str, object]:
    """Names the examples take as given, with TEST pointing at the simulator."""
    monkeypatch.setattr(
        ksef_facade, "TEST", Environment.custom(ksef_simulator.base_url)
    )
    return {"token": ksef_simulator.ksef_token, "invoice_xml": INVOICE.read_bytes()}


def test_blocking_example_sends_an_invoice(
    readme_namespace: dict[str, object],
    ksef_simulator: SimulatorEnv,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The blocking example prints a KSeF number and a UPO reference."""
    exec(_python_blocks()[0], readme_namespace)  # noqa: S102 - our own README

    printed = capsys.readouterr().out
    (received,) = ksef_simulator.sim.received_invoices()
    assert received.ksef_number is not None
    assert received.ksef_number in printed


def test_asyncio_example_sends_an_invoice(
    readme_namespace: dict[str, object],
    ksef_simulator: SimulatorEnv,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The asyncio example, wrapped in a coroutine, prints a KSeF number."""
    body = _python_blocks()[1]
    source = "async def example():\n" + "".join(
        f"    {line}\n" for line in body.splitlines()
    )
    exec(source, readme_namespace)  # noqa: S102 - our own README

    asyncio.run(readme_namespace["example"]())  # type: ignore[operator]

    (received,) = ksef_simulator.sim.received_invoices()
    assert received.ksef_number is not None
    assert received.ksef_number in capsys.readouterr().out
