"""Fixtures for the simulator's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from simkit import Kit

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
