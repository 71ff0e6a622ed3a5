"""KsefClient against the simulator: tokens, errors, downloads, both flavours.

Also the helpers the other facade tests share: clients built for a simulator
environment and FA(3) invoices rendered from the demo's template.
"""

from __future__ import annotations

import asyncio
import string
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ksef_facade import (
    BadRequestError,
    Environment,
    InvoiceHashMismatchError,
    KsefTransportError,
    NipContextMissingError,
    RateLimitError,
    Secret,
    ServerError,
    UpoHashMismatchError,
    nip_context,
)
from ksef_facade._async.client import AsyncKsefClient
from ksef_facade._concurrency import run_bounded
from ksef_facade._sync.client import KsefClient
from ksef_facade.forms import FormCode
from ksef_facade.identifiers import is_valid_ksef_number
from ksef_facade.retry import RetryPolicy
from ksef_facade.testing.pytest_plugin import SimulatorEnv, simulator_env

TEMPLATE = (
    Path(__file__).resolve().parent.parent / "scripts/data/invoice_fa3_template.xml"
)
BUYER_NIP = "3896717236"
FAST = {
    "poll_interval": timedelta(milliseconds=10),
    "poll_timeout": timedelta(seconds=10),
    "retry_policy": RetryPolicy(max_attempts=2).without_waits(),
}


@pytest.fixture
def env() -> Iterator[SimulatorEnv]:
    """A fresh in-process simulator with a KSeF token for its NIP."""
    yield from simulator_env(in_process=True)


@pytest.fixture
def loopback_env() -> Iterator[SimulatorEnv]:
    """A fresh simulator served on a 127.0.0.1 port."""
    yield from simulator_env(in_process=False)


def fa3_invoice(seller_nip: str, number: str = "FV/1") -> bytes:
    """Return an FA(3) invoice for ``seller_nip`` from the demo template."""
    text = string.Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        seller_nip=seller_nip,
        buyer_nip=BUYER_NIP,
        issue_date="2026-01-10",
        invoice_number=number,
        created_at="2026-01-10T10:00:00Z",
    )
    return text.encode("utf-8")


def async_client(env: SimulatorEnv, **options: Any) -> AsyncKsefClient:
    """An asyncio client for ``env`` with fast polling and no retry waits."""
    options.setdefault("ksef_token", Secret(env.ksef_token))
    if env.in_process:
        options.setdefault("transport", env.sim.async_transport())
    return AsyncKsefClient(Environment.custom(env.base_url), **{**FAST, **options})


def sync_client(env: SimulatorEnv, **options: Any) -> KsefClient:
    """A blocking client for ``env`` with fast polling and no retry waits."""
    options.setdefault("ksef_token", Secret(env.ksef_token))
    if env.in_process:
        options.setdefault("transport", env.sim.sync_transport())
    return KsefClient(Environment.custom(env.base_url), **{**FAST, **options})


class RewritingTransport(httpx.AsyncBaseTransport):
    """Passes requests through and lets a test rewrite chosen responses."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        rewrite: Callable[[httpx.Request, httpx.Response], httpx.Response],
    ) -> None:
        self._inner = inner
        self._rewrite = rewrite

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        await response.aread()
        return self._rewrite(request, response)


async def test_access_token_for_context_nip(
    env: SimulatorEnv,
) -> None:
    """The client authenticates the context NIP once and reuses the token."""
    async with async_client(env) as client:
        with nip_context(env.nip):
            first = await client.access_token()
            second = await client.access_token()

    assert first == second
    assert env.sim.request_counts["auth_ksef_token"] == 1
    assert env.sim.request_counts["auth_redeem"] == 1


async def test_expired_access_token_is_refreshed(
    env: SimulatorEnv,
) -> None:
    """After the access token expires the provider refreshes instead of re-auth."""
    async with async_client(env) as client:
        with nip_context(env.nip):
            await client.access_token()
            env.sim.expire_tokens("access")
            async with client.online_session(FormCode.FA3) as session:
                handle = await session.send(fa3_invoice(env.nip))

            number = await handle.result()

    assert is_valid_ksef_number(number)
    assert env.sim.request_counts["auth_refresh"] == 1
    assert env.sim.request_counts["auth_ksef_token"] == 1


def test_short_lived_access_token_refreshed_before_expiry() -> None:
    """With a 2 s access token and a 60 s skew every use refreshes it first."""
    for env in simulator_env(in_process=True, access_token_ttl=2.0):
        with sync_client(env) as client, nip_context(env.nip):
            first = client.access_token()
            second = client.access_token()

        assert first != second
        assert env.sim.request_counts["auth_refresh"] >= 1
        assert env.sim.request_counts["auth_ksef_token"] == 1


async def test_token_source_per_nip(env: SimulatorEnv) -> None:
    """A function from NIP to KSeF token serves several taxpayers."""
    other_nip = "5213017228"
    tokens = {env.nip: env.ksef_token, other_nip: env.sim.add_ksef_token(other_nip)}

    async with async_client(env, ksef_token=lambda nip: Secret(tokens[nip])) as client:
        for nip in (env.nip, other_nip):
            with nip_context(nip):
                async with client.online_session(FormCode.FA3) as session:
                    handle = await session.send(fa3_invoice(nip))
                    number = await handle.result()
            assert number.startswith(nip)

    assert env.sim.request_counts["auth_ksef_token"] == 2


async def test_missing_context_is_clear(env: SimulatorEnv) -> None:
    """A call without nip_context names the fix and sends nothing to KSeF."""
    async with async_client(env) as client:
        with pytest.raises(NipContextMissingError, match="nip_context"):
            await client.access_token()

    assert sum(env.sim.request_counts.values()) == 0


def test_unknown_session_is_bad_request(env: SimulatorEnv) -> None:
    """Asking for a session that does not exist raises with KSeF's code 21173."""
    with (
        sync_client(env) as client,
        nip_context(env.nip),
        pytest.raises(BadRequestError) as raised,
    ):
        client.session_status("20260101-SO-0000000000-0000000000-00")

    assert raised.value.code == 21173
    assert "21173" in str(raised.value)


async def test_invoice_downloaded_byte_for_byte(
    env: SimulatorEnv,
) -> None:
    """An invoice sent online comes back from KSeF exactly as sent."""
    invoice = fa3_invoice(env.nip, "FV/BYTES/1")
    async with async_client(env) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                handle = await session.send(invoice)
            downloaded = await client.download_invoice(await handle.result())

    assert downloaded == invoice


def test_invoice_downloaded_byte_for_byte_over_loopback(
    loopback_env: SimulatorEnv,
) -> None:
    """The blocking client does the same over a real 127.0.0.1 socket."""
    invoice = fa3_invoice(loopback_env.nip, "FV/LOOP/1")
    with sync_client(loopback_env) as client, nip_context(loopback_env.nip):
        with client.online_session(FormCode.FA3) as session:
            handle = session.send(invoice)
        number = handle.result()
        downloaded = client.download_invoice(number)

    assert loopback_env.base_url.startswith("http://127.0.0.1:")
    assert downloaded == invoice


async def test_upo_hash_verified(env: SimulatorEnv) -> None:
    """An invoice UPO whose x-ms-meta-hash matches is returned."""
    async with async_client(env) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                handle = await session.send(fa3_invoice(env.nip))
                number = await handle.result()
                upo = await client.session_invoice_upo_by_ksef_number(
                    session.reference_number, number
                )

    assert number.encode() in upo


async def test_upo_hash_mismatch_detected(
    env: SimulatorEnv,
) -> None:
    """A UPO that does not match its announced hash raises UpoHashMismatchError."""

    def corrupt_upo(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if not request.url.path.endswith("/upo"):
            return response
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=response.content.replace(b"Ministerstwo", b"Ministerstwa"),
        )

    transport = RewritingTransport(env.sim.async_transport(), corrupt_upo)
    async with async_client(env, transport=transport) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                handle = await session.send(fa3_invoice(env.nip))
                await handle.result()
                with pytest.raises(UpoHashMismatchError) as raised:
                    await handle.upo()

    assert raised.value.reference_number == handle.reference_number


async def test_invoice_hash_mismatch_detected(env: SimulatorEnv) -> None:
    """An invoice that does not match its announced hash raises a typed error."""

    def corrupt_invoice(
        request: httpx.Request, response: httpx.Response
    ) -> httpx.Response:
        if "/invoices/ksef/" not in request.url.path:
            return response
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=response.content.replace(b"FV/HASH/1", b"FV/HASH/2"),
        )

    transport = RewritingTransport(env.sim.async_transport(), corrupt_invoice)
    async with async_client(env, transport=transport) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                handle = await session.send(fa3_invoice(env.nip, "FV/HASH/1"))
            number = await handle.result()
            with pytest.raises(InvoiceHashMismatchError) as raised:
                await client.download_invoice(number)

    assert raised.value.reference_number == number
    assert raised.value.expected != raised.value.actual


async def test_problem_details_429_maps_to_rate_limit(
    env: SimulatorEnv,
) -> None:
    """A 429 answered as Problem Details becomes RateLimitError with retry_after."""
    env.sim.faults.rate_limited(count=5, retry_after=30, route="session_status")

    async with async_client(env, retry_policy=None) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                with pytest.raises(RateLimitError) as raised:
                    await session.status()

    assert raised.value.status_code == 429
    assert raised.value.retry_after == 30


async def test_connection_failure_is_transport_error(
    env: SimulatorEnv,
) -> None:
    """A dropped connection surfaces as KsefTransportError."""

    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with async_client(
        env, transport=httpx.MockTransport(fail), retry_policy=None
    ) as client:
        with nip_context(env.nip), pytest.raises(KsefTransportError, match="challenge"):
            await client.access_token()


async def test_auth_sessions_listed_and_revoked(
    env: SimulatorEnv,
) -> None:
    """The client lists its authentication sessions and revokes the current one."""
    async with async_client(env) as client:
        with nip_context(env.nip):
            await client.access_token()
            sessions = [item async for item in client.auth_sessions()]
            await client.revoke_current_auth_session()

    assert len(sessions) == 1
    assert sessions[0].is_current is True
    assert env.sim.request_counts["auth_session_revoke_current"] == 1


def test_client_repr_hides_secrets(env: SimulatorEnv) -> None:
    """The client's repr names the environment only."""
    with sync_client(env) as client:
        assert repr(client) == "KsefClient('custom')"


def test_ksef_token_and_provider_are_exclusive() -> None:
    """Passing both a KSeF token and a TokenProvider is refused."""
    from ksef_facade._sync.tokens import TokenProvider

    provider = TokenProvider(lambda: None, lambda refresh: None)  # type: ignore[arg-type, return-value]
    with pytest.raises(ValueError, match="either"):
        KsefClient(
            Environment.custom("http://127.0.0.1:9/v2"),
            ksef_token=Secret("x"),
            token_provider=provider,
        )


async def test_token_source_mistake_reaches_caller(env: SimulatorEnv) -> None:
    """A token source returning a plain str raises TypeError, not an API error."""
    async with async_client(env, ksef_token=lambda nip: "plain") as client:
        with nip_context(env.nip), pytest.raises(TypeError, match="no Secret"):
            await client.open_online_session(FormCode.FA3)


def test_threads_on_one_nip_authenticate_once(env: SimulatorEnv) -> None:
    """Twenty threads sharing a blocking client cause a single authentication."""
    with sync_client(env) as client, nip_context(env.nip):
        tokens = run_bounded([client.access_token] * 20, limit=20)

    assert len({token.reveal() for token in tokens}) == 1
    assert env.sim.request_counts["auth_ksef_token"] == 1


async def test_tasks_on_one_nip_authenticate_once(env: SimulatorEnv) -> None:
    """Twenty tasks sharing an async client cause a single authentication."""
    async with async_client(env) as client:
        with nip_context(env.nip):
            tokens = await asyncio.gather(*(client.access_token() for _ in range(20)))

    assert len({token.reveal() for token in tokens}) == 1
    assert env.sim.request_counts["auth_ksef_token"] == 1


def test_existing_token_provider_is_used(env: SimulatorEnv) -> None:
    """A client built with another client's TokenProvider reuses its tokens."""
    with sync_client(env) as first, nip_context(env.nip):
        first.access_token()
        with sync_client(env, ksef_token=None, token_provider=first.tokens) as second:
            status = second.session_status(
                first.open_online_session(FormCode.FA3).reference_number
            )

    assert second.tokens is first.tokens
    assert status.status.code == 100
    assert env.sim.request_counts["auth_ksef_token"] == 1


async def test_headers_per_operation(env: SimulatorEnv) -> None:
    """Every request asks for Problem Details; only secured ones carry a bearer."""
    seen: list[tuple[str, str | None, str | None]] = []

    def record(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        seen.append(
            (
                request.url.path,
                request.headers.get("X-Error-Format"),
                request.headers.get("Authorization"),
            )
        )
        return response

    transport = RewritingTransport(env.sim.async_transport(), record)
    async with async_client(env, transport=transport) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3):
                pass

    by_path = {path: bearer for path, _, bearer in seen}
    assert {fmt for _, fmt, _ in seen} == {"problem-details"}
    assert by_path["/v2/auth/challenge"] is None
    assert by_path["/v2/security/public-key-certificates"] is None
    assert by_path["/v2/auth/ksef-token"] is None
    assert by_path["/v2/auth/token/redeem"].startswith("Bearer ey")
    assert by_path["/v2/sessions/online"].startswith("Bearer ey")
    assert by_path["/v2/auth/token/redeem"] != by_path["/v2/sessions/online"]


async def test_server_error_retried_by_transport(env: SimulatorEnv) -> None:
    """A 503 on a status read is retried by the retrying transport and succeeds."""
    fault = env.sim.faults.server_errors(1, status=503, route="session_status")
    async with async_client(env) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                status = await session.status()

    assert fault.fired == 1
    assert status.status.code == 100


async def test_retries_can_be_switched_off(env: SimulatorEnv) -> None:
    """With retry_policy=None the same 503 reaches the caller as ServerError."""
    env.sim.faults.server_errors(1, status=503, route="session_status")
    async with async_client(env, retry_policy=None) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                with pytest.raises(ServerError) as raised:
                    await session.status()

    assert raised.value.status_code == 503
