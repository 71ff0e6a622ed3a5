"""Pytest fixtures that start the KSeF simulator for a test.

``ksef_simulator`` serves a fresh simulator on a free loopback port;
``ksef_simulator_inprocess`` gives the same environment without a socket. Both
provision a KSeF token for :data:`TEST_NIP`, use zero processing delay, and validate
every request and response against the pinned spec when it is available: a response
that breaks the contract fails the test, and so does a request unless the test calls
``env.allow_invalid_requests()`` (for tests that send bad requests on purpose).

The module imports the simulator lazily, so it can be registered as a ``pytest11``
plugin without making starlette or uvicorn a requirement of every test run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import pytest

from .identifiers import TEST_NIP

if TYPE_CHECKING:
    from .simulator import Simulator

__all__ = [
    "TEST_NIP",
    "SimulatorEnv",
    "ksef_simulator",
    "ksef_simulator_inprocess",
    "simulator_env",
]

IN_PROCESS_BASE_URL = "http://ksef-simulator.invalid/v2"


@dataclass
class SimulatorEnv:
    """What a test needs to talk to the simulator."""

    base_url: str
    sim: Simulator
    nip: str
    ksef_token: str = field(repr=False)
    in_process: bool = False
    check_requests: bool = True

    def client(self, **kwargs: object) -> httpx.Client:
        """Return a blocking httpx client for ``base_url`` (in-process if need be)."""
        if self.in_process:
            kwargs.setdefault("transport", self.sim.sync_transport())
        return httpx.Client(base_url=self.base_url, **kwargs)  # type: ignore[arg-type]

    def async_client(self, **kwargs: object) -> httpx.AsyncClient:
        """Return an async httpx client for ``base_url`` (in-process if need be)."""
        if self.in_process:
            kwargs.setdefault("transport", self.sim.async_transport())
        return httpx.AsyncClient(base_url=self.base_url, **kwargs)  # type: ignore[arg-type]

    def allow_invalid_requests(self) -> None:
        """Do not fail the test for requests that break the contract."""
        self.check_requests = False

    def contract_problems(self) -> list[str]:
        """Return the contract violations that should fail the test."""
        return self.sim.contract_problems(requests=self.check_requests)


def _finish(env: SimulatorEnv) -> None:
    problems = env.contract_problems()
    if problems:
        pytest.fail("KSeF contract violations:\n" + "\n".join(problems), pytrace=False)


def simulator_env(*, in_process: bool, **options: object) -> Iterator[SimulatorEnv]:
    """Yield a fresh simulator environment, then fail on contract violations.

    ``options`` go to :class:`Simulator`; fixtures built on this helper get the
    same set-up as ``ksef_simulator`` with, for example, a processing delay.
    """
    # Imported here so that loading this plugin needs no simulator extras.
    from .contract import default_spec_path
    from .server import run_simulator
    from .simulator import Simulator

    options.setdefault("validate_contract", default_spec_path().is_file())
    sim = Simulator(**options)  # type: ignore[arg-type]
    token = sim.add_ksef_token(TEST_NIP)
    if in_process:
        env = SimulatorEnv(IN_PROCESS_BASE_URL, sim, TEST_NIP, token, in_process=True)
        yield env
    else:
        with run_simulator(sim) as base_url:
            env = SimulatorEnv(base_url, sim, TEST_NIP, token)
            yield env
    _finish(env)


@pytest.fixture
def ksef_simulator() -> Iterator[SimulatorEnv]:
    """A fresh simulator on a free 127.0.0.1 port, with a token for ``TEST_NIP``."""
    yield from simulator_env(in_process=False)


@pytest.fixture
def ksef_simulator_inprocess() -> Iterator[SimulatorEnv]:
    """A fresh in-process simulator (no socket), with a token for ``TEST_NIP``."""
    yield from simulator_env(in_process=True)
