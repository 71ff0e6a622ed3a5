"""AuthFacade against the simulator: KSeF-token auth, polling, refresh, sessions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from ksef_facade import (
    AuthenticationFailedError,
    Environment,
    KsefApiError,
    KsefTimeoutError,
    NipContextMissingError,
    Secret,
    UnauthorizedError,
    nip_context,
)
from ksef_facade._async.api import AsyncKsefApi
from ksef_facade._async.auth import AsyncAuthFacade
from ksef_facade._async.encryption import AsyncEncryptionService
from ksef_facade._sync.api import KsefApi
from ksef_facade._sync.auth import AuthFacade
from ksef_facade._sync.encryption import EncryptionService
from ksef_facade.testing.pytest_plugin import SimulatorEnv, simulator_env

FAST_POLL = timedelta(milliseconds=10)


@pytest.fixture
def env() -> Iterator[SimulatorEnv]:
    """A fresh in-process simulator with a KSeF token for its NIP."""
    yield from simulator_env(in_process=True)


@pytest.fixture
def loopback_env() -> Iterator[SimulatorEnv]:
    """A fresh simulator served on a 127.0.0.1 port."""
    yield from simulator_env(in_process=False)


def async_auth(
    env: SimulatorEnv, **options: object
) -> tuple[AsyncAuthFacade, AsyncKsefApi]:
    """An async AuthFacade over an in-process simulator, and its API to close."""
    api = AsyncKsefApi(
        Environment.custom(env.base_url), transport=env.sim.async_transport()
    )
    encryption = AsyncEncryptionService(api.get_public_key_certificates)
    return AsyncAuthFacade(api, encryption, poll_interval=FAST_POLL, **options), api  # type: ignore[arg-type]


def sync_auth(env: SimulatorEnv, **options: object) -> tuple[AuthFacade, KsefApi]:
    """A blocking AuthFacade for ``env`` (in-process or loopback)."""
    transport = env.sim.sync_transport() if env.in_process else None
    api = KsefApi(Environment.custom(env.base_url), transport=transport)
    encryption = EncryptionService(api.get_public_key_certificates)
    return AuthFacade(api, encryption, poll_interval=FAST_POLL, **options), api  # type: ignore[arg-type]


async def test_ksef_token_authentication_end_to_end(env: SimulatorEnv) -> None:
    """One call yields access and refresh tokens with future expiries."""
    auth, api = async_auth(env)
    with nip_context(env.nip):
        tokens = await auth.authenticate_with_ksef_token(Secret(env.ksef_token))
    await api.aclose()

    now = datetime.now(UTC)
    assert now < tokens.access_valid_until < tokens.refresh_valid_until
    assert tokens.access_token != tokens.refresh_token
    assert env.sim.request_counts["auth_status"] >= 1


def test_ksef_token_authentication_over_loopback(loopback_env: SimulatorEnv) -> None:
    """The blocking facade authenticates over a real socket."""
    auth, api = sync_auth(loopback_env)
    with nip_context(loopback_env.nip):
        tokens = auth.authenticate_with_ksef_token(Secret(loopback_env.ksef_token))
    api.close()

    assert tokens.access_valid_until > datetime.now(UTC)


def test_context_identifier_is_the_context_nip(env: SimulatorEnv) -> None:
    """The authentication is made for the NIP of the context and no other."""
    other = "5213017228"
    auth, api = sync_auth(env)

    with nip_context(other), pytest.raises(KsefApiError) as raised:
        auth.authenticate_with_ksef_token(Secret(env.ksef_token))
    api.close()

    assert raised.value.codes == (450,)
    assert other in " ".join(raised.value.details)


def test_wrong_ksef_token_fails_with_status(env: SimulatorEnv) -> None:
    """An unknown KSeF token ends the polling with status 450, raised."""
    auth, api = sync_auth(env)

    with nip_context(env.nip), pytest.raises(KsefApiError) as raised:
        auth.authenticate_with_ksef_token(Secret("not-a-real-token"))
    api.close()

    assert raised.value.code == 450
    assert raised.value.reference_number is not None


def test_failed_authentication_is_typed(env: SimulatorEnv) -> None:
    """A failure status ends the polling with AuthenticationFailedError."""
    auth, api = sync_auth(env)

    with nip_context(env.nip), pytest.raises(AuthenticationFailedError) as raised:
        auth.authenticate_with_ksef_token(Secret("not-a-real-token"))
    api.close()

    assert isinstance(raised.value, KsefApiError)
    assert raised.value.code == 450


def test_missing_context_sends_nothing(env: SimulatorEnv) -> None:
    """Without nip_context the facade raises before any request."""
    auth, api = sync_auth(env)

    with pytest.raises(NipContextMissingError):
        auth.authenticate_with_ksef_token(Secret(env.ksef_token))
    api.close()

    assert sum(env.sim.request_counts.values()) == 0


def test_ksef_token_must_be_secret(env: SimulatorEnv) -> None:
    """A plain str token is refused so it never travels unmasked."""
    auth, api = sync_auth(env)

    with nip_context(env.nip), pytest.raises(TypeError, match="Secret"):
        auth.authenticate_with_ksef_token(env.ksef_token)  # type: ignore[arg-type]
    api.close()


def test_polling_waits_for_processing() -> None:
    """With a processing delay the status is polled until it succeeds."""
    for env in simulator_env(in_process=True, processing_delay=0.2):
        auth, api = sync_auth(env)
        with nip_context(env.nip):
            auth.authenticate_with_ksef_token(Secret(env.ksef_token))
        api.close()

        assert env.sim.request_counts["auth_status"] >= 2


def test_polling_times_out() -> None:
    """A status still in progress after the overall timeout raises KsefTimeoutError."""
    for env in simulator_env(in_process=True, processing_delay=30.0):
        auth, api = sync_auth(env, poll_timeout=timedelta(milliseconds=100))
        with nip_context(env.nip):
            operation = auth.start_ksef_token_authentication(Secret(env.ksef_token))
            with pytest.raises(KsefTimeoutError) as raised:
                auth.wait_until_authenticated(operation)
        api.close()

        assert raised.value.reference_number == operation.reference_number
        assert raised.value.last_status_code == 100


async def test_refresh_gives_new_access_token(env: SimulatorEnv) -> None:
    """The refresh token buys a different, valid access token."""
    auth, api = async_auth(env)
    with nip_context(env.nip):
        tokens = await auth.authenticate_with_ksef_token(Secret(env.ksef_token))
        refreshed = await auth.refresh_access_token(tokens.refresh_token)
    await api.aclose()

    assert refreshed.token != tokens.access_token
    assert refreshed.valid_until >= tokens.access_valid_until


async def test_redeem_twice_fails(env: SimulatorEnv) -> None:
    """Tokens are handed out once per authentication (uwierzytelnianie.md, 4)."""
    auth, api = async_auth(env)
    with nip_context(env.nip):
        operation = await auth.start_ksef_token_authentication(Secret(env.ksef_token))
        await auth.wait_until_authenticated(operation)
        await auth.redeem(operation)
        with pytest.raises(KsefApiError) as raised:
            await auth.redeem(operation)
    await api.aclose()

    assert raised.value.status_code == 400


async def test_key_rotation_21470_refreshes_and_retries(env: SimulatorEnv) -> None:
    """After an emergency rotation the first submit gets 21470, the retry passes."""
    auth, api = async_auth(env)
    with nip_context(env.nip):
        await auth.authenticate_with_ksef_token(Secret(env.ksef_token))
        [new_key] = env.sim.rotate_keys("KsefTokenEncryption", withdraw_old=True)
        tokens = await auth.authenticate_with_ksef_token(Secret(env.ksef_token))
    await api.aclose()

    assert tokens.access_valid_until > datetime.now(UTC)
    assert env.sim.request_counts["auth_ksef_token"] == 3
    assert env.sim.request_counts["get_public_key_certificates"] == 2
    assert new_key


async def test_sessions_listed_revoked_with_explicit_token(env: SimulatorEnv) -> None:
    """Sessions are listed and revoked with a given access token; refresh then fails."""
    auth, api = async_auth(env)
    with nip_context(env.nip):
        tokens = await auth.authenticate_with_ksef_token(Secret(env.ksef_token))
        listed = [s async for s in auth.list_sessions(access_token=tokens.access_token)]
        await auth.revoke_current_session(access_token=tokens.access_token)
        with pytest.raises(UnauthorizedError):
            await auth.refresh_access_token(tokens.refresh_token)
    await api.aclose()

    assert [s.is_current for s in listed] == [True]


async def test_sessions_paged_by_continuation_token(env: SimulatorEnv) -> None:
    """Listing follows continuation tokens across pages."""
    auth, api = async_auth(env)
    with nip_context(env.nip):
        for _ in range(11):
            tokens = await auth.authenticate_with_ksef_token(Secret(env.ksef_token))
        listed = [
            s.reference_number
            async for s in auth.list_sessions(
                access_token=tokens.access_token, page_size=10
            )
        ]
    await api.aclose()

    assert len(listed) == len(set(listed)) == 11
    assert env.sim.request_counts["auth_sessions_list"] == 2


def test_revoke_named_session(env: SimulatorEnv) -> None:
    """A session revoked by reference number can no longer refresh."""
    auth, api = sync_auth(env)
    with nip_context(env.nip):
        first = auth.authenticate_with_ksef_token(Secret(env.ksef_token))
        second = auth.authenticate_with_ksef_token(Secret(env.ksef_token))
        [old] = [
            s
            for s in auth.list_sessions(access_token=second.access_token)
            if not s.is_current
        ]
        auth.revoke_session(old.reference_number, access_token=second.access_token)
        with pytest.raises(UnauthorizedError):
            auth.refresh_access_token(first.refresh_token)
        auth.refresh_access_token(second.refresh_token)
    api.close()


def test_poll_settings_must_be_positive(env: SimulatorEnv) -> None:
    """Zero or negative poll settings are refused at construction."""
    api = KsefApi(Environment.custom(env.base_url), transport=env.sim.sync_transport())
    with pytest.raises(ValueError, match="positive"):
        AuthFacade(api, EncryptionService(None), poll_interval=timedelta(0))
    api.close()
