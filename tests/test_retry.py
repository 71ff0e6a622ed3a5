"""Tests for the pure retry decisions in ksef_facade.retry."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from ksef_facade import rate_limits, retry
from ksef_facade.retry import (
    Decision,
    FailureStage,
    RequestKind,
    RetryPolicy,
    StatusOutcome,
    Verdict,
)

NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
SAFE = RequestKind.SAFE
UNSAFE = RequestKind.UNSAFE

# No jitter, so waits in the table are exact: 1, 2, 4, 8, then 10 (the cap).
POLICY = RetryPolicy(
    max_attempts=5,
    max_total_time=100.0,
    backoff_initial=1.0,
    backoff_multiplier=2.0,
    backoff_max=10.0,
    jitter=0.0,
    max_retry_after=60.0,
)


@pytest.fixture(autouse=True)
def waits_on() -> Iterator[None]:
    """Start each test with waits switched on, and restore the suite's setting."""
    previous = retry.is_testing()
    retry.set_testing(False)
    yield
    retry.set_testing(previous)


def _http_date(moment: datetime) -> str:
    return moment.strftime("%a, %d %b %Y %H:%M:%S GMT")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("   ", None, id="blank"),
        pytest.param("30", 30.0, id="seconds"),
        pytest.param(" 30 ", 30.0, id="seconds-padded"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("1.5", 1.5, id="decimal-tolerated"),
        pytest.param("-5", None, id="negative"),
        pytest.param("+5", None, id="signed"),
        pytest.param("abc", None, id="garbage"),
        pytest.param("30 seconds", None, id="seconds-with-unit"),
        pytest.param("NaN", None, id="nan"),
        pytest.param("inf", None, id="infinity"),
        pytest.param("1e3", None, id="exponent"),
        pytest.param("9" * 40, retry.MAX_RETRY_AFTER, id="huge-clamped"),
        pytest.param("86401", retry.MAX_RETRY_AFTER, id="over-a-day-clamped"),
        pytest.param(_http_date(NOW + timedelta(seconds=90)), 90.0, id="imf-fixdate"),
        pytest.param("Monday, 02-Mar-26 12:00:45 GMT", 45.0, id="rfc850-date"),
        pytest.param("Mon Mar  2 12:00:20 2026", 20.0, id="asctime-date"),
        pytest.param(_http_date(NOW - timedelta(hours=1)), 0.0, id="date-in-past"),
        pytest.param(
            "Fri, 31 Dec 9999 23:59:59 GMT", retry.MAX_RETRY_AFTER, id="far-date"
        ),
        pytest.param("Mon, 99 Foo 2026 12:00:00 GMT", None, id="broken-date"),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Retry-After values parse to seconds, clamp, or give None as documented."""
    assert retry.parse_retry_after(value, NOW) == expected


def test_parse_retry_after_uses_the_zone_of_now() -> None:
    """An HTTP-date is compared in absolute time, whatever zone `now` is in."""
    warsaw = NOW.astimezone(timezone(timedelta(hours=1)))
    value = _http_date(NOW + timedelta(seconds=10))

    assert retry.parse_retry_after(value, warsaw) == 10.0


def test_parse_retry_after_rejects_naive_now() -> None:
    """A naive `now` is a programming error."""
    with pytest.raises(ValueError, match="timezone-aware"):
        retry.parse_retry_after("5", NOW.replace(tzinfo=None))


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        pytest.param("GET", "/sessions", SAFE, id="get"),
        pytest.param("HEAD", "/sessions", SAFE, id="head"),
        pytest.param("DELETE", "/tokens/20250101-XX", SAFE, id="delete"),
        pytest.param("PUT", "/testdata/certificates/1A", SAFE, id="put"),
        pytest.param("PUT", None, SAFE, id="part-upload-outside-api"),
        pytest.param("GET", None, SAFE, id="upo-download-outside-api"),
        pytest.param("POST", None, UNSAFE, id="post-outside-api"),
        pytest.param("PATCH", "/sessions", UNSAFE, id="patch"),
        pytest.param("POST", "/sessions/online", UNSAFE, id="open-online-session"),
        pytest.param("POST", "/sessions/batch", UNSAFE, id="open-batch-session"),
        pytest.param(
            "POST", "/sessions/online/20250625-SO-1/invoices", UNSAFE, id="send-invoice"
        ),
        pytest.param(
            "POST",
            "/sessions/online/{referenceNumber}/invoices",
            UNSAFE,
            id="send-invoice-template",
        ),
        pytest.param("post", "/sessions/online", UNSAFE, id="lowercase-method"),
        pytest.param("POST", "/sessions/online/R/close", SAFE, id="close-online"),
        pytest.param("POST", "/sessions/batch/R/close", SAFE, id="close-batch"),
        pytest.param("POST", "/auth/challenge", SAFE, id="challenge"),
        pytest.param("POST", "/auth/ksef-token", SAFE, id="ksef-token-auth"),
        pytest.param("POST", "/auth/token/refresh", SAFE, id="refresh"),
        pytest.param("POST", "/auth/token/redeem", UNSAFE, id="redeem-once"),
        pytest.param("POST", "/invoices/query/metadata", SAFE, id="metadata-query"),
        pytest.param("POST", "/invoices/exports", UNSAFE, id="start-export"),
        pytest.param("POST", "/tokens", UNSAFE, id="generate-token"),
        pytest.param("POST", "/permissions/persons/grants", UNSAFE, id="grant"),
        pytest.param(
            "POST", "/permissions/query/persons/grants", SAFE, id="grant-query"
        ),
        pytest.param("POST", "/no/such/operation", UNSAFE, id="unknown-post"),
    ],
)
def test_request_kind(method: str, path: str | None, expected: RequestKind) -> None:
    """Requests are classified safe or unsafe to resend by method and operation."""
    assert retry.request_kind(method, path) is expected


def test_safe_posts_name_spec_operations() -> None:
    """Every POST listed as safe is a real operation (no typo hides an unsafe one)."""
    templates = {
        route.template for route in rate_limits.ROUTES if route.method == "POST"
    }

    assert set(retry._SAFE_POSTS) - templates == set()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx.ConnectError("x"), FailureStage.NOT_SENT),
        (httpx.ConnectTimeout("x"), FailureStage.NOT_SENT),
        (httpx.PoolTimeout("x"), FailureStage.NOT_SENT),
        (httpx.ProxyError("x"), FailureStage.NOT_SENT),
        (httpx.ReadError("x"), FailureStage.MAYBE_SENT),
        (httpx.ReadTimeout("x"), FailureStage.MAYBE_SENT),
        (httpx.WriteError("x"), FailureStage.MAYBE_SENT),
        (httpx.WriteTimeout("x"), FailureStage.MAYBE_SENT),
        (httpx.RemoteProtocolError("x"), FailureStage.MAYBE_SENT),
        (httpx.CloseError("x"), FailureStage.MAYBE_SENT),
        (httpx.LocalProtocolError("x"), None),
        (httpx.UnsupportedProtocol("x"), None),
        (httpx.StreamConsumed(), None),
        (ValueError("x"), None),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else "",
)
def test_classify_error(error: BaseException, expected: FailureStage | None) -> None:
    """Transport errors are classified by whether the request may have been sent."""
    assert retry.classify_error(error) is expected


def _retry(wait: float, retry_after: float | None = None) -> Decision:
    return Decision(Verdict.RETRY, "", wait=wait, retry_after=retry_after)


def _stop(verdict: Verdict, retry_after: float | None = None) -> Decision:
    return Decision(verdict, "", retry_after=retry_after)


def _status(code: int, retry_after: float | None = None) -> StatusOutcome:
    return StatusOutcome(code, retry_after)


DONE = _stop(Verdict.DONE)
GIVE_UP = _stop(Verdict.GIVE_UP)
NOT_SENT = FailureStage.NOT_SENT
MAYBE_SENT = FailureStage.MAYBE_SENT


@pytest.mark.parametrize(
    ("attempt", "elapsed", "outcome", "kind", "expected"),
    [
        # Final outcomes.
        pytest.param(1, 0, _status(200), SAFE, DONE, id="200"),
        pytest.param(1, 0, _status(202), UNSAFE, DONE, id="202-unsafe"),
        pytest.param(1, 0, _status(400), SAFE, DONE, id="400"),
        pytest.param(1, 0, _status(401), SAFE, DONE, id="401"),
        pytest.param(1, 0, _status(404), SAFE, DONE, id="404"),
        pytest.param(1, 0, _status(501), SAFE, DONE, id="501"),
        pytest.param(1, 0, _status(505), SAFE, DONE, id="505"),
        # 429: never processed, so retried for any request after Retry-After.
        pytest.param(1, 0, _status(429, 30), UNSAFE, _retry(30, 30), id="429-unsafe"),
        pytest.param(1, 0, _status(429, 30), SAFE, _retry(30, 30), id="429-safe"),
        pytest.param(1, 0, _status(429, 0), SAFE, _retry(0, 0), id="429-zero"),
        pytest.param(1, 0, _status(429, 60), SAFE, _retry(60, 60), id="429-at-cap"),
        pytest.param(
            1,
            0,
            _status(429, 61),
            SAFE,
            _stop(Verdict.RATE_LIMITED, 61),
            id="429-over-cap",
        ),
        pytest.param(3, 0, _status(429), SAFE, _retry(4), id="429-no-header-backoff"),
        pytest.param(
            5,
            0,
            _status(429, 1),
            SAFE,
            _stop(Verdict.RATE_LIMITED, 1),
            id="429-attempts",
        ),
        pytest.param(
            1,
            80,
            _status(429, 30),
            SAFE,
            _stop(Verdict.RATE_LIMITED, 30),
            id="429-time",
        ),
        pytest.param(
            5,
            0,
            _status(429),
            SAFE,
            _stop(Verdict.RATE_LIMITED),
            id="429-no-header-attempts",
        ),
        # 5xx and 408: backoff for safe requests only.
        pytest.param(1, 0, _status(503), SAFE, _retry(1), id="503-first"),
        pytest.param(2, 0, _status(500), SAFE, _retry(2), id="500-second"),
        pytest.param(3, 0, _status(502), SAFE, _retry(4), id="502-third"),
        pytest.param(4, 0, _status(504), SAFE, _retry(8), id="504-fourth"),
        pytest.param(1, 0, _status(408), SAFE, _retry(1), id="408"),
        pytest.param(1, 0, _status(599), SAFE, _retry(1), id="599"),
        pytest.param(1, 0, _status(503), UNSAFE, GIVE_UP, id="503-unsafe"),
        pytest.param(1, 0, _status(500), UNSAFE, GIVE_UP, id="500-unsafe"),
        pytest.param(1, 0, _status(408), UNSAFE, GIVE_UP, id="408-unsafe"),
        pytest.param(1, 0, _status(503, 5), SAFE, _retry(5, 5), id="503-retry-after"),
        pytest.param(
            1, 0, _status(503, 5), UNSAFE, GIVE_UP, id="503-retry-after-unsafe"
        ),
        pytest.param(
            1,
            0,
            _status(503, 120),
            SAFE,
            _stop(Verdict.GIVE_UP, 120),
            id="503-over-cap",
        ),
        pytest.param(5, 0, _status(503), SAFE, GIVE_UP, id="503-attempts"),
        pytest.param(
            1, 99, _status(503), SAFE, _retry(1), id="503-fits-budget-exactly"
        ),
        pytest.param(1, 99.5, _status(503), SAFE, GIVE_UP, id="503-over-budget"),
        # Transport failures.
        pytest.param(1, 0, NOT_SENT, UNSAFE, _retry(1), id="not-sent-unsafe"),
        pytest.param(2, 0, NOT_SENT, SAFE, _retry(2), id="not-sent-safe"),
        pytest.param(1, 0, MAYBE_SENT, SAFE, _retry(1), id="maybe-sent-safe"),
        pytest.param(1, 0, MAYBE_SENT, UNSAFE, GIVE_UP, id="maybe-sent-unsafe"),
        pytest.param(5, 0, NOT_SENT, UNSAFE, GIVE_UP, id="not-sent-attempts"),
        pytest.param(1, 100, NOT_SENT, SAFE, GIVE_UP, id="not-sent-time"),
    ],
)
def test_decide(
    attempt: int,
    elapsed: float,
    outcome: retry.Outcome,
    kind: RequestKind,
    expected: Decision,
) -> None:
    """Each outcome leads to the documented verdict, wait and retry_after."""
    decision = retry.decide(attempt, elapsed, outcome, kind, POLICY, random.Random(0))

    assert (decision.verdict, decision.wait, decision.retry_after) == (
        expected.verdict,
        expected.wait,
        expected.retry_after,
    )


def test_decide_caps_backoff() -> None:
    """Backoff stops growing at backoff_max."""
    policy = RetryPolicy(backoff_initial=1, backoff_max=10, jitter=0, max_attempts=20)

    decision = retry.decide(9, 0, _status(503), SAFE, policy, random.Random(0))

    assert decision.wait == 10.0


def test_decide_gives_reasons() -> None:
    """A decision says why, in words a log reader understands."""
    decision = retry.decide(1, 0, _status(429, 61), SAFE, POLICY, random.Random(0))

    assert decision.reason == "HTTP 429 asks for 61 s, over the 60 s cap"


def test_decide_rejects_attempt_zero() -> None:
    """Attempts count from 1."""
    with pytest.raises(ValueError, match="attempt"):
        retry.decide(0, 0, _status(503), SAFE, POLICY, random.Random(0))


def test_backoff_jitter_stays_in_range() -> None:
    """Jittered waits spread over [base * (1 - jitter), base]."""
    policy = RetryPolicy(backoff_initial=1, backoff_multiplier=2, jitter=0.5)
    rng = random.Random(42)

    waits = [retry.backoff(3, policy, rng) for _ in range(2000)]

    assert all(2.0 <= wait <= 4.0 for wait in waits)
    assert min(waits) < 2.1
    assert max(waits) > 3.9


def test_backoff_is_reproducible_with_a_seed() -> None:
    """The same seed gives the same waits."""
    policy = RetryPolicy(jitter=1.0)

    first = [retry.backoff(2, policy, random.Random(7)) for _ in range(3)]
    second = [retry.backoff(2, policy, random.Random(7)) for _ in range(3)]

    assert first == second


def test_backoff_survives_huge_attempt_numbers() -> None:
    """A very late attempt waits backoff_max instead of overflowing."""
    policy = RetryPolicy(backoff_max=30, jitter=0, backoff_multiplier=10)

    assert retry.backoff(10_000, policy, random.Random(0)) == 30.0


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_attempts": 0},
        {"max_attempts": 1.5},
        {"max_total_time": -1.0},
        {"max_total_time": math.inf},
        {"backoff_initial": math.nan},
        {"backoff_multiplier": 0.5},
        {"jitter": 1.5},
        {"jitter": -0.1},
        {"max_retry_after": -1.0},
    ],
    ids=str,
)
def test_policy_rejects_bad_values(overrides: dict[str, float]) -> None:
    """A policy with an impossible bound fails at construction."""
    with pytest.raises(ValueError, match=next(iter(overrides))):
        RetryPolicy(**overrides)  # type: ignore[arg-type]


def test_set_testing_switches_waits_off_and_on() -> None:
    """set_testing(True) disables waits for every policy until set back."""
    try:
        retry.set_testing(True)
        assert retry.is_testing()
        assert not retry.waits_enabled(RetryPolicy())
    finally:
        retry.set_testing(False)

    assert retry.waits_enabled(RetryPolicy())


def test_no_waits_restores_previous_setting() -> None:
    """no_waits() disables waits inside the block only, also when nested."""
    with retry.no_waits():
        with retry.no_waits():
            assert retry.is_testing()
        assert retry.is_testing()

    assert not retry.is_testing()


def test_policy_without_waits() -> None:
    """A policy copy made by without_waits() sleeps no more; the original still does."""
    policy = RetryPolicy(max_attempts=3)

    quiet = policy.without_waits()

    assert not retry.waits_enabled(quiet)
    assert retry.waits_enabled(policy)
    assert quiet.max_attempts == 3
