"""No KSeF token or access token reaches a log record, repr, str or error message.

Every facade object is built with ``CANARY`` as the KSeF token (the simulator is
provisioned with it) and driven through authentication, refresh, an online session
and failures at DEBUG logging. The tokens KSeF issued along the way are checked too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from test_canary import CANARY, LeakCheck
from test_client import async_client, fa3_invoice, sync_client

from ksef_facade import KsefError, Secret, nip_context
from ksef_facade.forms import FormCode
from ksef_facade.testing import Simulator
from ksef_facade.testing.pytest_plugin import TEST_NIP, SimulatorEnv

_LOGGERS = ("", "ksef_facade", "httpx", "httpcore")


@pytest.fixture
def leaks(caplog: pytest.LogCaptureFixture) -> Iterator[LeakCheck]:
    """A LeakCheck at DEBUG on every watched logger; logs are checked at the end."""
    for name in _LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    check = LeakCheck(CANARY, caplog)

    yield check

    check.check_logs()


@pytest.fixture
def canary_env() -> SimulatorEnv:
    """An in-process simulator whose KSeF token for TEST_NIP is the canary."""
    sim = Simulator()
    sim.add_ksef_token(TEST_NIP, CANARY)
    return SimulatorEnv("http://ksef-simulator.invalid/v2", sim, TEST_NIP, CANARY, True)


async def test_async_flow_leaks_nothing(
    canary_env: SimulatorEnv, leaks: LeakCheck, caplog: pytest.LogCaptureFixture
) -> None:
    """Auth, refresh, a session and a UPO at DEBUG leave the canary nowhere."""
    env = canary_env
    client = async_client(env, ksef_token=Secret(CANARY))
    async with client:
        with nip_context(env.nip):
            access = await client.access_token()
            cached = client.tokens.cached_tokens() if client.tokens else None
            env.sim.expire_tokens("access")
            async with client.online_session(FormCode.FA3) as session:
                handle = await session.send(fa3_invoice(env.nip))
                await handle.result()
            await session.upo()

        for obj in (
            client,
            client.api,
            client.auth,
            client.encryption,
            client.tokens,
            session,
            handle,
            cached,
        ):
            leaks.check_object(obj)

    assert leaks.record_count > 0
    for token in (access.reveal(), cached.refresh_token.reveal() if cached else ""):
        assert token
        assert all(token not in record.getMessage() for record in caplog.records)


def test_sync_failures_leak_nothing(canary_env: SimulatorEnv, leaks: LeakCheck) -> None:
    """Errors raised for a revoked token and a wrong context carry no secret."""
    env = canary_env
    errors: list[BaseException] = []
    with sync_client(env, ksef_token=Secret(CANARY)) as client:
        with nip_context("5213017228"):
            try:
                client.access_token()
            except KsefError as error:
                errors.append(error)

        env.sim.revoke_ksef_token(CANARY)
        with nip_context(env.nip):
            try:
                client.access_token()
            except KsefError as error:
                errors.append(error)
        leaks.check_object(client)

    assert len(errors) == 2
    for error in errors:
        leaks.check_exception(error)
