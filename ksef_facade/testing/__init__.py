"""A local KSeF 2.0 simulator for tests (placeholder docstring, see below)."""

from __future__ import annotations

from .clock import ManualClock, SystemClock
from .simulator import DEFAULT_PERMISSIONS, ReceivedInvoice, Simulator

__all__ = [
    "DEFAULT_PERMISSIONS",
    "ManualClock",
    "ReceivedInvoice",
    "Simulator",
    "SystemClock",
    "run_simulator",
]


def __getattr__(name: str) -> object:
    if name == "run_simulator":
        from .server import run_simulator

        return run_simulator
    raise AttributeError(name)
