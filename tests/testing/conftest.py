"""Fixtures for the simulator's own tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import pytest
from simkit import Kit

from ksef_facade.testing.clock import ManualClock
from ksef_facade.testing.pytest_plugin import (  # noqa: F401 - fixture
    SimulatorEnv,
    ksef_simulator,
    simulator_env,
)


@pytest.fixture
def env() -> Iterator[SimulatorEnv]:
    """A fresh in-process simulator with a provisioned KSeF token."""
    yield from simulator_env(in_process=True)


@pytest.fixture
def kit(env: SimulatorEnv) -> Iterator[Kit]:
    """A plain-HTTP client kit talking to the in-process simulator."""
    with env.client() as client:
        yield Kit(client)


@pytest.fixture
def authed(kit: Kit, env: SimulatorEnv) -> Kit:
    """A kit already authenticated with the provisioned KSeF token."""
    kit.authenticate(env.nip, env.ksef_token)
    return kit


@pytest.fixture
def make_env() -> Iterator[Callable[..., SimulatorEnv]]:
    """Build in-process environments with custom Simulator options."""
    with ExitStack() as stack:

        def build(**options: object) -> SimulatorEnv:
            return stack.enter_context(
                contextmanager(simulator_env)(in_process=True, **options)
            )

        yield build


@pytest.fixture
def manual_clock() -> ManualClock:
    """A clock that tests move by hand."""
    return ManualClock()
