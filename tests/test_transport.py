"""Tests for the retrying httpx transports, over httpx.MockTransport.

Every behaviour runs through both the blocking and the asyncio transport.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ksef_facade import retry
from ksef_facade.rate_limits import RateLimit
from ksef_facade.retry import RetryPolicy
from ksef_facade.throttle import Throttle
from ksef_facade.transport import (
    THROTTLED,
    AsyncRetryTransport,
    RetryTransport,
    SystemWarning,
    parse_system_warnings,
)

BASE = "https://ksef.example/v2"
SEND_INVOICE = f"{BASE}/sessions/online/20250625-SO-2C3E6C8000-B675CF5D68-07/invoices"
SESSION_STATUS = f"{BASE}/sessions/20250625-SO-2C3E6C8000-B675CF5D68-07"
WALL_NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
CANARY = "CANARY-7f3c9e-secret"

# No jitter, so backoff waits are exactly 0.5, 1, 2, 4, ...
POLICY = RetryPolicy(
    max_attempts=5,
    max_total_time=120.0,
    backoff_initial=0.5,
    backoff_multiplier=2.0,
    backoff_max=30.0,
    jitter=0.0,
    max_retry_after=60.0,
)

MODES = ["sync", "async"]


class TrackedStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body that remembers whether it was closed."""

    def __init__(self) -> None:
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield b"{}"

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"{}"

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


Step = int | httpx.Response | type[Exception]


class Harness:
    """A retry transport in one mode over a scripted MockTransport, fake clocks."""

    def __init__(
        self,
        mode: str,
        script: list[Step],
        throttle_limits: dict[str, RateLimit] | None = None,
        **options: Any,
    ) -> None:
        self.mode = mode
        self.script = list(script)
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []
        self.raised: list[Exception] = []
        self.sleeps: list[float] = []
        self.now = 0.0

        inner = httpx.MockTransport(self._handle)
        options.setdefault("policy", POLICY)
        if throttle_limits is not None:
            options["throttle"] = Throttle(throttle_limits, clock=self._clock, margin=0)
        common: dict[str, Any] = {
            "clock": self._clock,
            "wall_clock": lambda: WALL_NOW + timedelta(seconds=self.now),
            "rng": random.Random(0),
            **options,
        }
        self.transport: RetryTransport | AsyncRetryTransport
        if mode == "sync":
            self.transport = RetryTransport(inner, sleep=self._sleep, **common)
        else:
            self.transport = AsyncRetryTransport(
                inner, sleep=self._async_sleep, **common
            )

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.now += 0.01
        step = self.script.pop(0)
        if isinstance(step, type):
            if issubclass(step, httpx.RequestError):
                error: Exception = step("simulated failure", request=request)
            else:
                error = step("simulated failure")
            self.raised.append(error)
            raise error
        response = step if isinstance(step, httpx.Response) else _response(step)
        self.responses.append(response)
        return response

    def _clock(self) -> float:
        return self.now

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def _async_sleep(self, seconds: float) -> None:
        self._sleep(seconds)

    def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request through a client using the transport."""
        if isinstance(self.transport, RetryTransport):
            with httpx.Client(transport=self.transport) as client:
                return client.request(method, url, **kwargs)

        async def go(transport: AsyncRetryTransport) -> httpx.Response:
            async with httpx.AsyncClient(transport=transport) as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(go(self.transport))


def _response(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, stream=TrackedStream())


@pytest.fixture(autouse=True)
def waits_on() -> Iterator[None]:
    """Switch waits on (the fake sleeper records them); restore the setting after."""
    previous = retry.is_testing()
    retry.set_testing(False)
    yield
    retry.set_testing(previous)


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """Run the test with the blocking and the asyncio transport."""
    return str(request.param)


def test_429_then_success_waits_retry_after(mode: str) -> None:
    """A 429 is retried once after exactly its Retry-After."""
    harness = Harness(mode, [_response(429, **{"Retry-After": "7"}), 200])

    response = harness.send("POST", SEND_INVOICE, content=b"{}")

    assert response.status_code == 200
    assert harness.sleeps == [7.0]
    assert len(harness.requests) == 2


def test_429_with_http_date_waits_until_then(mode: str) -> None:
    """A Retry-After HTTP-date is turned into seconds from the wall clock."""
    when = (WALL_NOW + timedelta(seconds=5)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    harness = Harness(mode, [_response(429, **{"Retry-After": when}), 200])

    harness.send("GET", SESSION_STATUS)

    assert harness.sleeps == [pytest.approx(5.0, abs=0.02)]


def test_429_over_cap_is_returned_without_sleeping(mode: str) -> None:
    """A 429 asking for more than the cap comes back at once, unslept."""
    harness = Harness(mode, [_response(429, **{"Retry-After": "600"})])

    response = harness.send("GET", SESSION_STATUS)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "600"
    assert harness.sleeps == []
    assert len(harness.requests) == 1


def test_5xx_burst_on_get_is_retried(mode: str) -> None:
    """A burst of 5xx on a read is retried with growing backoff."""
    harness = Harness(mode, [503, 502, 500, 200])

    response = harness.send("GET", SESSION_STATUS)

    assert response.status_code == 200
    assert harness.sleeps == [0.5, 1.0, 2.0]


def test_5xx_on_unsafe_post_is_not_retried(mode: str) -> None:
    """A 5xx on an invoice send is handed back: the server may have taken it."""
    harness = Harness(mode, [503, 200])

    response = harness.send("POST", SEND_INVOICE, content=b"{}")

    assert response.status_code == 503
    assert len(harness.requests) == 1
    assert harness.sleeps == []


def test_connect_error_is_retried_for_unsafe_post(mode: str) -> None:
    """A connect error means nothing was sent, so even an invoice send is retried."""
    harness = Harness(mode, [httpx.ConnectError, 202])

    response = harness.send("POST", SEND_INVOICE, content=b"{}")

    assert response.status_code == 202
    assert len(harness.requests) == 2
    assert harness.requests[1].content == b"{}"


def test_read_error_is_not_retried_for_unsafe_post(mode: str) -> None:
    """A read error on an invoice send is raised: it may have reached KSeF."""
    harness = Harness(mode, [httpx.ReadError, 202])

    with pytest.raises(httpx.ReadError):
        harness.send("POST", SEND_INVOICE, content=b"{}")

    assert len(harness.requests) == 1


def test_read_error_is_retried_for_get(mode: str) -> None:
    """A read error on a read is retried."""
    harness = Harness(mode, [httpx.ReadError, httpx.RemoteProtocolError, 200])

    response = harness.send("GET", SESSION_STATUS)

    assert response.status_code == 200
    assert harness.sleeps == [0.5, 1.0]


def test_last_transport_error_is_raised_when_attempts_run_out(mode: str) -> None:
    """After the last attempt, the last httpx exception itself is raised."""
    policy = RetryPolicy(max_attempts=3, jitter=0)
    harness = Harness(mode, [httpx.ConnectError] * 3, policy=policy)

    with pytest.raises(httpx.ConnectError) as caught:
        harness.send("GET", SESSION_STATUS)

    assert caught.value is harness.raised[-1]
    assert len(harness.requests) == 3


def test_attempts_bound_is_honoured(mode: str) -> None:
    """At most max_attempts requests are sent; the last response is returned."""
    harness = Harness(mode, [503] * 10, policy=RetryPolicy(max_attempts=3, jitter=0))

    response = harness.send("GET", SESSION_STATUS)

    assert response.status_code == 503
    assert len(harness.requests) == 3


def test_total_time_bound_is_honoured(mode: str) -> None:
    """No wait is started that would end past max_total_time."""
    policy = RetryPolicy(
        max_attempts=100, max_total_time=10, backoff_initial=1, jitter=0
    )
    harness = Harness(mode, [503] * 100, policy=policy)

    response = harness.send("GET", SESSION_STATUS)

    assert response.status_code == 503
    assert harness.sleeps == [1.0, 2.0, 4.0]
    assert harness.now <= 10


def test_failed_attempt_responses_are_closed(mode: str) -> None:
    """Responses of attempts that are retried are closed."""
    harness = Harness(mode, [503, _response(429, **{"Retry-After": "1"}), 200])

    harness.send("GET", SESSION_STATUS)

    failed = harness.responses[:2]
    assert all(isinstance(r.stream, TrackedStream) and r.stream.closed for r in failed)


def test_other_exceptions_are_not_retried(mode: str) -> None:
    """An exception that is no transport failure propagates at once."""
    harness = Harness(mode, [RuntimeError, 200])

    with pytest.raises(RuntimeError):
        harness.send("GET", SESSION_STATUS)

    assert len(harness.requests) == 1


def test_part_upload_outside_api_is_retried(mode: str) -> None:
    """A PUT to a pre-signed URL resends the same bytes after a read error."""
    url = "https://storage.example/part/1?sig=abc"
    harness = Harness(mode, [httpx.ReadError, 201])

    response = harness.send("PUT", url, content=b"part-bytes")

    assert response.status_code == 201
    assert [r.content for r in harness.requests] == [b"part-bytes", b"part-bytes"]


def test_streamed_body_is_not_resent_after_it_left(mode: str) -> None:
    """A body streamed from an iterator cannot be sent twice, so it is not."""
    harness = Harness(mode, [503, 201])

    def chunks() -> Iterator[bytes]:
        yield b"part"

    async def async_chunks() -> AsyncIterator[bytes]:
        yield b"part"

    body = chunks() if mode == "sync" else async_chunks()
    response = harness.send("PUT", "https://storage.example/part/1", content=body)

    assert response.status_code == 503
    assert len(harness.requests) == 1


def test_streamed_body_is_resent_after_connect_error(mode: str) -> None:
    """A streamed body that never left can still be sent on a new connection."""
    harness = Harness(mode, [httpx.ConnectError, 201])

    def chunks() -> Iterator[bytes]:
        yield b"part"

    async def async_chunks() -> AsyncIterator[bytes]:
        yield b"part"

    body = chunks() if mode == "sync" else async_chunks()
    response = harness.send("PUT", "https://storage.example/part/1", content=body)

    assert response.status_code == 201
    assert len(harness.requests) == 2


def test_no_waits_skips_sleeps_but_counts_them(mode: str) -> None:
    """With waits switched off nothing sleeps; the waits are still counted."""
    harness = Harness(mode, [_response(429, **{"Retry-After": "7"}), 200])

    with retry.no_waits():
        response = harness.send("GET", SESSION_STATUS)

    assert response.status_code == 200
    assert harness.sleeps == []
    assert harness.transport.stats.total_wait == 7.0


def test_no_waits_keeps_the_time_bound(mode: str) -> None:
    """Skipped waits count towards max_total_time, as real ones would."""
    policy = RetryPolicy(max_attempts=100, max_total_time=100)
    script: list[Step] = [_response(429, **{"Retry-After": "30"}) for _ in range(9)]
    harness = Harness(mode, script, policy=policy)

    with retry.no_waits():
        response = harness.send("GET", SESSION_STATUS)

    assert response.status_code == 429
    assert len(harness.requests) == 4
    assert harness.sleeps == []


def test_policy_without_waits_skips_sleeps(mode: str) -> None:
    """A policy made by without_waits() sleeps no more."""
    harness = Harness(mode, [503, 200], policy=POLICY.without_waits())

    response = harness.send("GET", SESSION_STATUS)

    assert response.status_code == 200
    assert harness.sleeps == []


def test_stats_count_attempts_retries_and_429s(mode: str) -> None:
    """The transport's counters add up what happened."""
    script: list[Step] = [_response(429, **{"Retry-After": "2"}), 503, 200, 503]
    harness = Harness(mode, script, policy=RetryPolicy(max_attempts=3, jitter=0))

    harness.send("GET", SESSION_STATUS)
    harness.send("POST", SEND_INVOICE, content=b"{}")

    stats = harness.transport.stats
    assert (stats.attempts, stats.retries, stats.rate_limited, stats.gave_up) == (
        4,
        2,
        1,
        1,
    )
    # 2 s asked by the 429, then 1 s of backoff after the second attempt.
    assert stats.total_wait == 3.0


def test_retry_log_names_method_template_attempt_and_wait(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A retry is logged at INFO with method, path template, attempt and wait."""
    caplog.set_level(logging.INFO, logger="ksef_facade")
    harness = Harness(mode, [503, 200])

    harness.send("GET", SESSION_STATUS)

    [record] = [r for r in caplog.records if r.name == "ksef_facade.retry"]
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        "Retrying GET /sessions/{referenceNumber} after HTTP 503: "
        "attempt 1 of 5 failed, waiting 0.50 s"
    )


def test_give_up_is_logged(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    """Not resending an unsafe request is logged with the reason."""
    caplog.set_level(logging.INFO, logger="ksef_facade")
    harness = Harness(mode, [httpx.ReadError])

    with pytest.raises(httpx.ReadError):
        harness.send("POST", SEND_INVOICE, content=b"{}")

    [record] = [r for r in caplog.records if r.name == "ksef_facade.retry"]
    assert "Giving up on POST /sessions/online/{referenceNumber}/invoices" in (
        record.getMessage()
    )
    assert "unsafe" in record.getMessage()


def test_logs_carry_no_secrets(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    """A canary in the header, query, body and pre-signed path reaches no record."""
    caplog.set_level(logging.DEBUG)
    script: list[Step] = [
        503,
        _response(429, **{"Retry-After": "1", "X-System-Warning": "[W1]: slow down"}),
        200,
        httpx.ReadError,
        httpx.ReadError,
        201,
    ]
    harness = Harness(mode, script)
    secret_headers = {"Authorization": f"Bearer {CANARY}"}

    harness.send(
        "POST",
        f"{BASE}/invoices/query/metadata?token={CANARY}",
        headers=secret_headers,
        json={"note": CANARY},
    )
    with pytest.raises(httpx.ReadError):
        harness.send(
            "POST", SEND_INVOICE, headers=secret_headers, content=CANARY.encode()
        )
    harness.send("PUT", f"https://storage.example/{CANARY}?sig={CANARY}")

    # httpx's own logger prints full URLs; only our records are under test here.
    ours = [r for r in caplog.records if r.name.startswith("ksef_facade")]
    assert len(ours) == 5
    for record in ours:
        assert CANARY not in record.getMessage()
        assert CANARY not in repr(record.args)


def test_system_warnings_reach_log_and_callback(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Each X-System-Warning goes to the warnings logger and the callback."""
    caplog.set_level(logging.WARNING, logger="ksef_facade")
    received: list[SystemWarning] = []
    header = "[W100]: Deprecated field | [W200]: Slow down"
    harness = Harness(
        mode,
        [_response(200, **{"X-System-Warning": header})],
        on_warning=received.append,
    )

    harness.send("GET", SESSION_STATUS)

    template = "/sessions/{referenceNumber}"
    assert received == [
        SystemWarning("W100", "Deprecated field", "GET", template),
        SystemWarning("W200", "Slow down", "GET", template),
    ]
    records = [r for r in caplog.records if r.name == "ksef_facade.warnings"]
    assert [r.levelno for r in records] == [logging.WARNING] * 2
    assert records[0].getMessage() == (
        "KSeF warning W100 on GET /sessions/{referenceNumber}: Deprecated field"
    )


def test_failing_warning_callback_closes_response(mode: str) -> None:
    """If the warning callback raises, the error propagates and the body is closed."""

    def explode(warning: SystemWarning) -> None:
        raise LookupError(warning.code)

    harness = Harness(
        mode, [_response(200, **{"X-System-Warning": "[W1]: x"})], on_warning=explode
    )

    with pytest.raises(LookupError):
        harness.send("GET", SESSION_STATUS)

    stream = harness.responses[0].stream
    assert isinstance(stream, TrackedStream)
    assert stream.closed


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[A1]: one", [SystemWarning("A1", "one")]),
        (
            "[A1]: one | [B2]: two",
            [SystemWarning("A1", "one"), SystemWarning("B2", "two")],
        ),
        ("no format at all", [SystemWarning("", "no format at all")]),
        ("  ", []),
    ],
)
def test_parse_system_warnings(value: str, expected: list[SystemWarning]) -> None:
    """Warning headers split into (code, message) pairs per the spec's format."""
    assert parse_system_warnings(value) == expected


def test_throttle_spaces_requests(mode: str) -> None:
    """With a throttle, requests beyond a group's limit wait for their slot."""
    limits = {"sessionList": RateLimit(per_second=2)}
    harness = Harness(mode, [200, 200, 200], throttle_limits=limits)

    for _ in range(3):
        harness.send("GET", f"{BASE}/sessions")

    # Sent at 0.00 and 0.01 (each send takes 0.01 s); the third waits for 1.00.
    assert harness.sleeps == [pytest.approx(0.98)]


def test_throttle_over_cap_returns_429_without_sending(mode: str) -> None:
    """A throttle slot beyond max_retry_after yields a local 429, nothing is sent."""
    limits = {"sessionList": RateLimit(per_hour=1)}
    harness = Harness(mode, [200], throttle_limits=limits)
    harness.send("GET", f"{BASE}/sessions")

    response = harness.send("GET", f"{BASE}/sessions")

    assert response.status_code == 429
    assert response.extensions[THROTTLED] is True
    assert int(response.headers["Retry-After"]) == pytest.approx(3600, abs=1)
    assert response.json()["status"]["code"] == 429
    assert len(harness.requests) == 1
    assert harness.sleeps == []
    assert harness.transport.stats.held_back == 1


def test_throttle_is_skipped_when_waits_are_off(mode: str) -> None:
    """With waits off, the throttle neither delays nor refuses requests."""
    limits = {"sessionList": RateLimit(per_hour=1)}
    harness = Harness(mode, [200, 200, 200], throttle_limits=limits)

    with retry.no_waits():
        statuses = [harness.send("GET", f"{BASE}/sessions").status_code for _ in "abc"]

    assert statuses == [200, 200, 200]


def test_throttle_ignores_urls_outside_the_api(mode: str) -> None:
    """Part uploads are not rate limited (limity-api.md) and are never throttled."""
    limits = {"global": RateLimit(per_second=1), "anonymous": RateLimit(per_second=1)}
    harness = Harness(mode, [201] * 3, throttle_limits=limits)

    for _ in range(3):
        harness.send("PUT", "https://storage.example/part", content=b"x")

    assert harness.sleeps == []


def test_sync_and_async_twins_match() -> None:
    """Both transports take the same options and expose the same public surface."""
    sync_params = inspect.signature(RetryTransport.__init__).parameters
    async_params = inspect.signature(AsyncRetryTransport.__init__).parameters

    def public(cls: type) -> set[str]:
        names = {name for name in dir(cls) if not name.startswith("_")}
        return names - {"handle_request", "handle_async_request", "close", "aclose"}

    assert list(sync_params) == list(async_params)
    assert public(RetryTransport) == public(AsyncRetryTransport)
