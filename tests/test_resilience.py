"""The client under faults: reconciled sends, retries, the throttle and warnings."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator

import httpx
import pytest
from test_client import RewritingTransport, async_client, fa3_invoice, sync_client

from ksef_facade import (
    InvoiceRejectedError,
    KsefTransportError,
    RateLimitError,
    ServerError,
    nip_context,
)
from ksef_facade._async.client import AsyncKsefClient
from ksef_facade.context import peek_nip
from ksef_facade.crypto import sha256_b64
from ksef_facade.forms import FormCode
from ksef_facade.rate_limits import RateLimit, find_route
from ksef_facade.reconcile import ReconcilePolicy
from ksef_facade.retry import RetryPolicy, no_waits
from ksef_facade.testing.pytest_plugin import SimulatorEnv, simulator_env
from ksef_facade.throttle import Throttle
from ksef_facade.transport import SystemWarning

# Waits on, short enough for tests that need real time to pass (the throttle).
WAITING = RetryPolicy(max_attempts=6, backoff_initial=0.05, max_retry_after=5)


@pytest.fixture
def env() -> Iterator[SimulatorEnv]:
    """A fresh in-process simulator with a KSeF token for its NIP."""
    yield from simulator_env(in_process=True)


def _received(env: SimulatorEnv, content: bytes) -> list[int]:
    """Return the status codes of every copy of ``content`` the simulator got."""
    return [r.status_code for r in env.sim.received_invoices() if r.content == content]


# -- reconciled sends ------------------------------------------------------------------


async def test_send_processed_then_dropped_is_adopted(env: SimulatorEnv) -> None:
    """A send KSeF processed before the connection dropped is adopted, not resent."""
    invoice = fa3_invoice(env.nip, "FV/R/1")
    env.sim.faults.drop_after(1, route="send_online_invoice")

    async with async_client(env) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                handle = await session.send(invoice)
                number = await handle.result()

    assert _received(env, invoice) == [200]
    assert env.sim.request_counts["send_online_invoice"] == 1
    assert number.startswith(env.nip)
    assert (client.stats.reconciled, client.stats.adopted) == (1, 1)
    assert client.stats.resent == 0


async def test_send_dropped_before_processing_is_resent(env: SimulatorEnv) -> None:
    """A send that never reached KSeF is looked up, not found, and sent once more."""
    invoice = fa3_invoice(env.nip, "FV/R/2")
    env.sim.faults.drop_before(1, route="send_online_invoice")

    async with async_client(env) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                handle = await session.send(invoice)
                await handle.result()

    assert _received(env, invoice) == [200]
    assert env.sim.request_counts["session_invoices"] == 3
    assert (client.stats.reconciled, client.stats.resent) == (1, 1)


async def test_server_error_on_send_is_reconciled(env: SimulatorEnv) -> None:
    """A 503 on the unsafe send is not resent blindly but after a lookup."""
    invoice = fa3_invoice(env.nip, "FV/R/3")
    env.sim.faults.server_errors(1, status=503, route="send_online_invoice")

    async with async_client(env) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                handle = await session.send(invoice)
                await handle.result()

    assert _received(env, invoice) == [200]
    assert client.stats.gave_up == 1
    assert client.stats.resent == 1


async def test_resends_are_bounded(env: SimulatorEnv) -> None:
    """When every send is lost the invoice is sent at most max_sends times."""
    env.sim.faults.drop_before(None, route="send_online_invoice")
    policy = ReconcilePolicy(lookup_delays=(0.0,), max_sends=2)

    async with async_client(env, reconcile_policy=policy) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                with pytest.raises(KsefTransportError):
                    await session.send(fa3_invoice(env.nip, "FV/R/4"))

    assert env.sim.request_counts["send_online_invoice"] == 0
    assert [kind for _, kind in env.sim.faults.history].count("drop_before") == 2
    assert (client.stats.reconciled, client.stats.resent) == (2, 1)


async def test_reconciliation_can_be_switched_off(env: SimulatorEnv) -> None:
    """With reconcile_policy=None a lost send raises without any lookup."""
    env.sim.faults.drop_after(1, route="send_online_invoice")

    async with async_client(env, reconcile_policy=None) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                with pytest.raises(KsefTransportError):
                    await session.send(fa3_invoice(env.nip, "FV/R/5"))

    assert env.sim.request_counts["session_invoices"] == 0
    assert client.stats.reconciled == 0


async def test_earlier_send_of_same_document_is_not_adopted(env: SimulatorEnv) -> None:
    """A lost resend of a document already sent is not mistaken for the first one."""
    invoice = fa3_invoice(env.nip, "FV/R/6")

    async with async_client(env) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                first = await session.send(invoice)
                env.sim.faults.drop_before(1, route="send_online_invoice")
                second = await session.send(invoice)

    assert second.reference_number != first.reference_number
    assert client.stats.resent == 1
    # KSeF itself rejects the second copy as a duplicate (weryfikacja-faktury.md).
    assert _received(env, invoice) == [200, 440]


async def test_invoice_listed_late_is_found_by_a_later_lookup(
    env: SimulatorEnv,
) -> None:
    """An invoice missing from the first listing is adopted from a later one."""
    env.sim.faults.drop_after(1, route="send_online_invoice")
    listings = []

    def hide_first_listing(
        request: httpx.Request, response: httpx.Response
    ) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith("/invoices"):
            listings.append(request.url.path)
            if len(listings) == 1:
                return httpx.Response(200, json={"invoices": []}, request=request)
        return response

    transport = RewritingTransport(env.sim.async_transport(), hide_first_listing)
    async with async_client(env, transport=transport) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                await session.send(fa3_invoice(env.nip, "FV/R/7"))

    assert len(listings) == 2
    assert (client.stats.adopted, client.stats.resent) == (1, 0)
    assert env.sim.request_counts["send_online_invoice"] == 1


@pytest.mark.parametrize("hidden_listings", [1, 2])
async def test_invoice_listed_on_a_later_lookup_is_adopted(
    env: SimulatorEnv, hidden_listings: int
) -> None:
    """A lost send listed only on lookup 2 or 3 is adopted once, with its number."""
    invoice = fa3_invoice(env.nip, f"FV/R/LAG{hidden_listings}")
    env.sim.faults.drop_after(1, route="send_online_invoice")
    lag = env.sim.faults.listing_lag(calls=hidden_listings)

    async with async_client(env) as client:
        with nip_context(env.nip), no_waits():
            started = time.monotonic()
            async with client.online_session(FormCode.FA3) as session:
                handle = await session.send(invoice)
                number = await handle.result()
            elapsed = time.monotonic() - started

    [received] = env.sim.received_invoices()
    assert _received(env, invoice) == [200]
    assert env.sim.request_counts["send_online_invoice"] == 1
    assert env.sim.request_counts["session_invoices"] == hidden_listings + 1
    assert lag.fired == 1
    assert handle.reference_number == received.reference_number
    assert number == received.ksef_number
    assert (client.stats.adopted, client.stats.resent) == (1, 0)
    # The lookups' 1 s and 3 s pauses were skipped.
    assert elapsed < 1.0


async def test_resend_of_an_invoice_kept_after_all_returns_the_first_copy(
    env: SimulatorEnv,
) -> None:
    """A resend that KSeF rejects as a duplicate of its first copy reports the first."""
    invoice = fa3_invoice(env.nip, "FV/R/DUP")
    env.sim.faults.drop_after(1, route="send_online_invoice")
    # Hidden from all three lookups, so the facade sends the invoice once more.
    env.sim.faults.listing_lag(calls=3, count=1)

    async with async_client(env) as client:
        with nip_context(env.nip), no_waits():
            async with client.online_session(FormCode.FA3) as session:
                handle = await session.send(invoice)
                number = await handle.result()

    first, second = env.sim.received_invoices()
    assert (first.status_code, second.status_code) == (200, 440)
    assert handle.resent
    assert handle.reference_number == second.reference_number
    assert number == first.ksef_number
    assert (client.stats.adopted, client.stats.resent) == (0, 1)


def test_sync_duplicate_of_another_invoice_is_still_a_rejection(
    env: SimulatorEnv,
) -> None:
    """A resend that duplicates a different invoice (same number) stays rejected."""
    first = fa3_invoice(env.nip, "FV/R/OTHER")
    second = first.replace(b"</Faktura>", b"<!-- changed --></Faktura>")
    env.sim.faults.drop_after(1, route="send_online_invoice", after=1)
    env.sim.faults.listing_lag(calls=3, count=1, after=1)

    with (
        sync_client(env) as client,
        nip_context(env.nip),
        no_waits(),
        client.online_session(FormCode.FA3) as session,
    ):
        session.send(first).result()
        handle = session.send(second)
        with pytest.raises(InvoiceRejectedError) as raised:
            handle.result()

    assert raised.value.status_code == 440
    assert handle.resent


async def test_failed_lookup_raises_the_send_error(env: SimulatorEnv) -> None:
    """When the session cannot be listed the send's error is raised, nothing resent."""
    env.sim.faults.drop_after(1, route="send_online_invoice")
    env.sim.faults.server_errors(None, status=503, route="session_invoices")

    async with async_client(env) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                with pytest.raises(KsefTransportError, match="No answer"):
                    await session.send(fa3_invoice(env.nip, "FV/R/8"))

    assert env.sim.request_counts["send_online_invoice"] == 1
    assert (client.stats.reconciled, client.stats.resent) == (1, 0)


def test_sync_send_processed_then_dropped_is_adopted(env: SimulatorEnv) -> None:
    """The blocking session adopts a processed send whose answer was lost."""
    invoice = fa3_invoice(env.nip, "FV/R/9")
    env.sim.faults.drop_after(1, route="send_online_invoice")

    with sync_client(env) as client, nip_context(env.nip):
        with client.online_session(FormCode.FA3) as session:
            handle = session.send(invoice)
        number = handle.result()

    assert _received(env, invoice) == [200]
    assert number.startswith(env.nip)
    assert client.stats.adopted == 1


async def test_concurrent_lost_sends_each_adopt_their_own(env: SimulatorEnv) -> None:
    """Ten concurrent sends whose answers are lost each adopt a distinct invoice."""
    invoices = [fa3_invoice(env.nip, f"FV/R/C{n}") for n in range(10)]
    env.sim.faults.drop_after(10, route="send_online_invoice")

    async with async_client(env) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                handles = await asyncio.gather(*(session.send(i) for i in invoices))

    by_hash = {handle.invoice_hash: handle.reference_number for handle in handles}
    received = {
        sha256_b64(r.content or b""): r.reference_number
        for r in env.sim.received_invoices()
    }
    assert by_hash == received
    assert client.stats.adopted == 10


# -- one retry policy ------------------------------------------------------------------


async def test_rate_limit_over_cap_raises_at_once(env: SimulatorEnv) -> None:
    """A 429 whose Retry-After passes the cap is raised with retry_after, unslept."""
    policy = RetryPolicy(max_retry_after=10)

    async with async_client(env, retry_policy=policy) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                env.sim.faults.rate_limited(
                    None, retry_after=120, route="session_status"
                )
                started = time.monotonic()
                with pytest.raises(RateLimitError) as raised:
                    await session.status()
                elapsed = time.monotonic() - started

    assert raised.value.retry_after == 120
    assert env.sim.request_counts["session_status"] == 0
    assert [kind for _, kind in env.sim.faults.history].count("rate_limit") == 1
    assert elapsed < 1.0


async def test_rate_limit_under_cap_is_waited_out(env: SimulatorEnv) -> None:
    """429s under the cap are retried after Retry-After; stats count them and waits."""
    async with async_client(env, retry_policy=RetryPolicy(max_attempts=4)) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                env.sim.faults.rate_limited(3, retry_after=7, route="session_status")
                with no_waits():
                    status = await session.status()

    assert status.status.code == 100
    assert client.stats.rate_limited == 3
    assert client.stats.total_wait == pytest.approx(21.0)


async def test_retry_policy_reaches_every_request(env: SimulatorEnv) -> None:
    """The client's retry_policy bounds retries of reads and safe POSTs alike."""
    policy = RetryPolicy(max_attempts=2).without_waits()
    env.sim.faults.server_errors(2, status=502, route="session_status")

    async with async_client(env, retry_policy=policy) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                with pytest.raises(ServerError) as raised:
                    await session.status()

    assert raised.value.status_code == 502
    assert client.stats.retries == 1


async def test_no_waits_switch_skips_default_policy_waits(env: SimulatorEnv) -> None:
    """Under no_waits() the default policy's waits and lookup pauses are skipped."""
    env.sim.faults.rate_limited(2, retry_after=30, route="send_online_invoice")
    # Faults are tried in order: this one fires once the 429s are used up.
    env.sim.faults.drop_before(1, route="send_online_invoice")

    async with async_client(env, retry_policy=RetryPolicy()) as client:
        with nip_context(env.nip), no_waits():
            started = time.monotonic()
            async with client.online_session(FormCode.FA3) as session:
                await session.send(fa3_invoice(env.nip, "FV/W/1"))
            elapsed = time.monotonic() - started

    assert client.stats.total_wait >= 60
    assert client.stats.resent == 1
    assert elapsed < 2.0


async def test_retries_logged_at_info_without_secrets(
    env: SimulatorEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """Retries and reconciliations log attempt and wait; no token, body or XML."""
    invoice = fa3_invoice(env.nip, "FV/L/1")
    env.sim.faults.server_errors(1, status=503, route="session_invoice_status")
    env.sim.faults.drop_after(1, route="send_online_invoice")

    caplog.set_level(logging.DEBUG, logger="ksef_facade")
    async with async_client(env) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                handle = await session.send(invoice)
                await handle.result()
            token = (await client.access_token()).reveal()

    retries = [r for r in caplog.records if r.getMessage().startswith("Retrying")]
    assert retries
    assert all(r.levelno == logging.INFO for r in retries)
    assert re.search(
        r"attempt 1 of 2 failed, waiting \d+\.\d\d s", retries[0].getMessage()
    )
    assert any("reconciled" in r.getMessage() for r in caplog.records)
    secrets = (env.ksef_token, token, "Bearer", "<Faktura", "encryptedInvoiceContent")
    for record in caplog.records:
        text = record.getMessage()
        assert not any(secret in text for secret in secrets), text


# -- throttle --------------------------------------------------------------------------


@pytest.fixture
def limited_env() -> Iterator[SimulatorEnv]:
    """An in-process simulator enforcing the documented rate limits."""
    yield from simulator_env(in_process=True, enforce_rate_limits=True)


async def _send_burst(client: AsyncKsefClient, env: SimulatorEnv, count: int) -> None:
    with nip_context(env.nip):
        async with client.online_session(FormCode.FA3) as session:
            handles = await asyncio.gather(
                *(session.send(fa3_invoice(env.nip, f"FV/T/{n}")) for n in range(count))
            )
            await asyncio.gather(*(handle.result() for handle in handles))


async def test_throttle_keeps_a_burst_under_the_limits(
    limited_env: SimulatorEnv,
) -> None:
    """With throttle=True a burst over 10 sends/s meets no 429 from KSeF."""
    async with async_client(limited_env, retry_policy=WAITING, throttle=True) as client:
        await _send_burst(client, limited_env, 25)

    assert client.stats.rate_limited == 0
    assert limited_env.sim.request_counts["send_online_invoice"] == 25


async def test_burst_without_throttle_meets_429(limited_env: SimulatorEnv) -> None:
    """The same burst without the throttle is answered 429 and waited out."""
    async with async_client(limited_env, retry_policy=WAITING) as client:
        await _send_burst(client, limited_env, 25)

    assert client.stats.rate_limited > 0


async def test_throttle_slot_past_the_cap_raises_rate_limit(
    env: SimulatorEnv,
) -> None:
    """A request the throttle would hold past the cap is not sent: RateLimitError."""
    throttle = Throttle({"sessionMisc": RateLimit(per_minute=1)}, context_key=peek_nip)

    async with async_client(env, retry_policy=WAITING, throttle=throttle) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                await session.status()
                with pytest.raises(RateLimitError) as raised:
                    await session.status()

    assert raised.value.retry_after is not None
    assert raised.value.retry_after > WAITING.max_retry_after
    assert env.sim.request_counts["session_status"] == 1
    assert client.stats.held_back == 1


def test_throttle_argument_checked(env: SimulatorEnv) -> None:
    """throttle takes True, False or a Throttle; a given Throttle is used as is."""
    mine = Throttle()
    with pytest.raises(TypeError, match="throttle"):
        async_client(env, throttle="yes")

    assert async_client(env, throttle=mine).throttle is mine
    assert isinstance(async_client(env, throttle=True).throttle, Throttle)
    assert async_client(env).throttle is None


def test_throttle_counts_each_nip_apart(env: SimulatorEnv) -> None:
    """throttle=True keys its counters by the NIP of the current nip_context."""
    client = async_client(env, throttle=True)
    route = find_route("POST", "/sessions/online/{referenceNumber}/invoices")
    assert client.throttle is not None
    assert route is not None

    with nip_context(env.nip):
        first_nip = [client.throttle.reserve(route) for _ in range(11)]
    with nip_context("3896717236"):
        other_nip = client.throttle.reserve(route)

    # limity-api.md: 10 invoice sends per second and context.
    assert first_nip[:10] == [0.0] * 10
    assert first_nip[10] > 0.9
    assert other_nip == 0.0


async def test_rate_limits_read_into_the_throttle(env: SimulatorEnv) -> None:
    """GET /rate-limits replaces the throttle's limits for the groups it lists."""
    # As POST /testdata/rate-limits would: this context's own invoiceSend limits.
    env.sim.rate_limiter.set_context_limits(env.nip, {"invoiceSend": (1, 5, 9)})

    async with async_client(env, throttle=True) as client:
        with nip_context(env.nip):
            limits = await client.refresh_rate_limits()

    assert client.throttle is not None
    route = find_route("POST", "/sessions/online/{referenceNumber}/invoices")
    assert route is not None
    waits = [client.throttle.reserve(route) for _ in range(2)]
    assert env.sim.request_counts["get_rate_limits"] == 1
    assert limits["invoiceSend"] == RateLimit(1, 5, 9)
    # Spec: -1 marks a window without a limit; the client reads it as None.
    assert limits["anonymous"] == RateLimit(per_second=60)
    assert waits[0] == 0
    assert waits[1] > 0.9


# -- X-System-Warning ------------------------------------------------------------------


class _AskForWarning(httpx.AsyncBaseTransport):
    """Asks the simulator to echo a system warning on chosen requests."""

    def __init__(self, inner: httpx.AsyncBaseTransport, warning: str) -> None:
        self._inner = inner
        self._warning = warning

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/sessions/online"):
            request.headers["X-Test-System-Warning"] = self._warning
        return await self._inner.handle_async_request(request)


async def test_system_warning_reaches_callback_and_log(
    env: SimulatorEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """An X-System-Warning header goes to on_warning and the warnings logger."""
    seen: list[SystemWarning] = []
    warning = "[W-100]: Planowana przerwa techniczna"
    transport = _AskForWarning(env.sim.async_transport(), warning)

    caplog.set_level(logging.WARNING, logger="ksef_facade.warnings")
    async with async_client(env, transport=transport, on_warning=seen.append) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3):
                pass

    assert seen == [
        SystemWarning(
            "W-100", "Planowana przerwa techniczna", "POST", "/sessions/online"
        )
    ]
    [record] = [r for r in caplog.records if r.name == "ksef_facade.warnings"]
    assert "W-100" in record.getMessage()


class _AskForWarningSync(httpx.BaseTransport):
    """The blocking twin of _AskForWarning."""

    def __init__(self, inner: httpx.BaseTransport, warning: str) -> None:
        self._inner = inner
        self._warning = warning

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/sessions/online"):
            request.headers["X-Test-System-Warning"] = self._warning
        return self._inner.handle_request(request)


def test_sync_client_reports_system_warning(env: SimulatorEnv) -> None:
    """The blocking client passes X-System-Warning to on_warning too."""
    seen: list[SystemWarning] = []
    transport = _AskForWarningSync(env.sim.sync_transport(), "[W-7]: Uwaga")

    with (
        sync_client(env, transport=transport, on_warning=seen.append) as client,
        nip_context(env.nip),
        client.online_session(FormCode.FA3),
    ):
        pass

    assert [(w.code, w.message) for w in seen] == [("W-7", "Uwaga")]
