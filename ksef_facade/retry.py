"""When to resend a request and how long to wait first: pure decisions.

One `RetryPolicy` bounds every retry by attempts and by total time. `decide` looks at
what the last attempt produced and answers RETRY (with a wait), or one of three ways to
stop. It does no I/O and reads no clock: `attempt`, `elapsed` and the random source come
in as arguments. The transports in `ksef_facade.transport` carry the decisions out.

The rules:

- 429: KSeF rejected the request before processing it (limity/limity-api.md), so any
  request may be resent after `Retry-After`. A `Retry-After` above the policy's cap is
  not slept on: the verdict is RATE_LIMITED with `retry_after`, for the caller to
  raise.
- 408, 5xx (but 501 and 505, which never change on a resend): the server may have
  acted on the request, so only safe requests (reads and idempotent calls) are resent,
  with exponential backoff and jitter, or after `Retry-After` when one is given. An
  unsafe request (an invoice send, a session open) is handed back for the caller to
  reconcile, e.g. by looking the invoice up in the session by its hash.
- Transport errors raised before the request left (connect errors, pool timeouts) are
  retried for every request; those after it may have left (read errors, read
  timeouts, a dropped connection) only for safe requests.

`set_testing(True)` or `with no_waits():` makes the transports skip every wait (they
still count it towards the time budget, so the bounds behave as in production).
"""

from __future__ import annotations

import enum
import math
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import attrs
import httpx

from ksef_facade import rate_limits

__all__ = [
    "DEFAULT_POLICY",
    "MAX_RETRY_AFTER",
    "Decision",
    "FailureStage",
    "Outcome",
    "RequestKind",
    "RetryPolicy",
    "StatusOutcome",
    "Verdict",
    "backoff",
    "classify_error",
    "decide",
    "is_testing",
    "is_transient_status",
    "no_waits",
    "parse_retry_after",
    "request_kind",
    "set_testing",
    "waits_enabled",
]

# A Retry-After above one day is treated as one day: it is already far over any sane
# cap, and keeping it finite keeps later date arithmetic safe.
MAX_RETRY_AFTER = 86_400.0

_testing = False


def set_testing(enabled: bool) -> None:
    """Switch every retry and throttle wait off (True) or back on (False)."""
    global _testing
    _testing = enabled


def is_testing() -> bool:
    """Return True while waits are switched off by `set_testing` or `no_waits`."""
    return _testing


@contextmanager
def no_waits() -> Iterator[None]:
    """Switch waits off inside the block, then restore the previous setting."""
    previous = _testing
    set_testing(True)
    try:
        yield
    finally:
        set_testing(previous)


def _non_negative(
    instance: object, attribute: attrs.Attribute[float], value: float
) -> None:
    if not value >= 0 or math.isinf(value):
        raise ValueError(f"{attribute.name} must be a finite number >= 0")


def _at_least_one(
    instance: object, attribute: attrs.Attribute[float], value: float
) -> None:
    if not 1 <= value < math.inf:
        raise ValueError(f"{attribute.name} must be a finite number >= 1")


def positive_int(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    """An attrs validator: ``value`` is a whole number of at least 1 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an integer >= 1")


def _fraction(
    instance: object, attribute: attrs.Attribute[float], value: float
) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"{attribute.name} must be between 0 and 1")


@attrs.frozen
class RetryPolicy:
    """Bounds and timing of retries; one policy serves every facade request.

    The n-th backoff (n from 1) is `min(backoff_max, backoff_initial *
    backoff_multiplier ** (n - 1))`, of which a random fraction of up to `jitter` is
    taken off, so waits spread over `[base * (1 - jitter), base]`.
    """

    max_attempts: int = attrs.field(default=5, validator=positive_int)
    max_total_time: float = attrs.field(
        default=120.0, converter=float, validator=_non_negative
    )
    backoff_initial: float = attrs.field(
        default=0.5, converter=float, validator=_non_negative
    )
    backoff_multiplier: float = attrs.field(
        default=2.0, converter=float, validator=_at_least_one
    )
    backoff_max: float = attrs.field(
        default=30.0, converter=float, validator=_non_negative
    )
    jitter: float = attrs.field(default=0.5, converter=float, validator=_fraction)
    max_retry_after: float = attrs.field(
        default=60.0, converter=float, validator=_non_negative
    )
    waits: bool = True

    def without_waits(self) -> RetryPolicy:
        """Return a copy whose waits are skipped (counted, never slept)."""
        return attrs.evolve(self, waits=False)


DEFAULT_POLICY = RetryPolicy()


def waits_enabled(policy: RetryPolicy) -> bool:
    """Return True when waits under this policy should really be slept."""
    return policy.waits and not _testing


class RequestKind(enum.Enum):
    """Whether a request may be sent again after it may have reached the server."""

    SAFE = "safe"
    """A read, or a call whose repetition has the effect of one call."""

    UNSAFE = "unsafe"
    """A call that may create something twice; the caller must reconcile."""


# RFC 9110 9.2: these methods are idempotent.
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

# POST operations that are safe to repeat. Every POST not listed is unsafe.
_SAFE_POSTS = frozenset(
    {
        # uwierzytelnianie.md 1: a challenge lives 10 minutes; a spare one is harmless.
        "/auth/challenge",
        # uwierzytelnianie.md 2-3: starting authentication twice leaves one spare
        # operation that is never redeemed; nothing is created on the taxpayer's side.
        "/auth/xades-signature",
        "/auth/ksef-token",
        # uwierzytelnianie.md: the refresh token "may be used many times".
        # (/auth/token/redeem is NOT here: a second redeem answers 400.)
        "/auth/token/refresh",
        # Closing a closed session changes nothing; batch processing starts once.
        "/sessions/online/{referenceNumber}/close",
        "/sessions/batch/{referenceNumber}/close",
        # Revoking twice leaves the certificate revoked.
        "/certificates/{certificateSerialNumber}/revoke",
        # Queries sent as POST because they carry a filter body.
        "/invoices/query/metadata",
        "/certificates/retrieve",
        "/certificates/query",
        "/collective-identifiers/query",
        "/collective-identifiers/invoices",
        "/permissions/query/personal/grants",
        "/permissions/query/persons/grants",
        "/permissions/query/subunits/grants",
        "/permissions/query/entities/grants",
        "/permissions/query/subordinate-entities/roles",
        "/permissions/query/authorizations/grants",
        "/permissions/query/eu-entities/grants",
        # Test-environment settings: each call sets a value, repeating sets it again.
        "/testdata/context/block",
        "/testdata/context/unblock",
        "/testdata/limits/context/session",
        "/testdata/limits/subject/certificate",
        "/testdata/rate-limits",
        "/testdata/rate-limits/production",
    }
)


def request_kind(method: str, path: str | None) -> RequestKind:
    """Classify a request by method and API path or template (None: outside the API).

    Requests outside the API, such as batch part uploads to pre-signed URLs, are
    judged by method alone: a PUT of the same bytes to the same URL is idempotent.
    """
    method = method.upper()
    if method in _IDEMPOTENT_METHODS:
        return RequestKind.SAFE
    if method != "POST" or path is None:
        return RequestKind.UNSAFE

    route = rate_limits.find_route(method, path)
    if route is not None and route.template in _SAFE_POSTS:
        return RequestKind.SAFE
    return RequestKind.UNSAFE


class FailureStage(enum.Enum):
    """How far a request got before its transport failed."""

    NOT_SENT = "not sent"
    """No byte reached the server: connecting failed or no connection was free."""

    MAYBE_SENT = "maybe sent"
    """The server may have received and processed the request."""


def classify_error(error: BaseException) -> FailureStage | None:
    """Return how far a request got before `error`, or None if it is not retryable.

    Errors from our own side (an invalid URL, a local protocol error, a stream that
    cannot be read twice) are not transport failures and are never retried.
    """
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return FailureStage.NOT_SENT
    if isinstance(error, httpx.ProxyError):
        return FailureStage.NOT_SENT
    if isinstance(error, httpx.LocalProtocolError | httpx.UnsupportedProtocol):
        return None
    if isinstance(error, httpx.TransportError):
        # Read, write and close errors and timeouts, a dropped connection: the
        # request may already be on the server.
        return FailureStage.MAYBE_SENT
    return None


@attrs.frozen
class StatusOutcome:
    """An HTTP response as far as retrying cares: status and parsed Retry-After."""

    status: int
    retry_after: float | None = None


Outcome = StatusOutcome | FailureStage


class Verdict(enum.Enum):
    """What to do after an attempt."""

    DONE = "done"
    """The outcome is final: a success, or an error a resend cannot change."""

    RETRY = "retry"
    """Wait `Decision.wait` seconds, then send again."""

    GIVE_UP = "give up"
    """Retryable in principle, but unsafe to resend or out of attempts or time."""

    RATE_LIMITED = "rate limited"
    """A 429 that will not be retried; `Decision.retry_after` says when to come back."""


@attrs.frozen
class Decision:
    """The verdict on an attempt, the wait before the next one, and why."""

    verdict: Verdict
    reason: str
    wait: float = 0.0
    retry_after: float | None = None

    @property
    def retry(self) -> bool:
        """True when the request should be sent again after `wait`."""
        return self.verdict is Verdict.RETRY


_DELAY_SECONDS = re.compile(r"\d+(\.\d+)?")


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Return the seconds a Retry-After header asks for, or None if it says nothing.

    Accepts delay-seconds (RFC 9110 10.2.3; a decimal fraction is tolerated) and an
    HTTP-date, compared with the timezone-aware `now`. A date in the past gives 0.
    Missing, empty, negative, non-numeric, NaN or unparsable values give None. Values
    over MAX_RETRY_AFTER are clamped to it.
    """
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    if value is None or not value.strip():
        return None

    text = value.strip()
    if _DELAY_SECONDS.fullmatch(text):
        return min(float(text), MAX_RETRY_AFTER)

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # HTTP-dates are always GMT (RFC 9110 5.6.7); asctime form carries no zone.
        when = when.replace(tzinfo=UTC)

    seconds = (when - now) / timedelta(seconds=1)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def backoff(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Return the jittered exponential wait after failed attempt number `attempt`."""
    try:
        growth = policy.backoff_multiplier ** (attempt - 1)
    except OverflowError:
        growth = math.inf
    base = policy.backoff_initial * growth if policy.backoff_initial else 0.0
    base = min(policy.backoff_max, base)

    return base * (1.0 - policy.jitter * rng.random())


def _over_cap(label: str, retry_after: float, policy: RetryPolicy) -> str:
    cap = policy.max_retry_after
    return f"{label} asks for {retry_after:.0f} s, over the {cap:.0f} s cap"


def is_transient_status(status: int) -> bool:
    """Tell whether a status may change on a resend: 408, or a 5xx but 501 and 505.

    The server may have acted on such a request. 501 and 505 say it will never
    support the request: nothing was done, and resending is futile.
    """
    return status == 408 or (500 <= status <= 599 and status not in (501, 505))


def _bounded(
    attempt: int,
    elapsed: float,
    wait: float,
    policy: RetryPolicy,
    reason: str,
    stop: Verdict,
    retry_after: float | None = None,
) -> Decision:
    if attempt >= policy.max_attempts:
        why = f"{reason}; all {policy.max_attempts} attempts used"
        return Decision(stop, why, retry_after=retry_after)
    if elapsed + wait > policy.max_total_time:
        budget = policy.max_total_time
        why = f"{reason}; waiting {wait:.1f} s would pass the {budget:.0f} s budget"
        return Decision(stop, why, retry_after=retry_after)

    return Decision(Verdict.RETRY, reason, wait=wait, retry_after=retry_after)


def _after_rate_limit(
    attempt: int,
    elapsed: float,
    outcome: StatusOutcome,
    policy: RetryPolicy,
    rng: random.Random,
) -> Decision:
    retry_after = outcome.retry_after
    if retry_after is None:
        wait = backoff(attempt, policy, rng)
        return _bounded(
            attempt,
            elapsed,
            wait,
            policy,
            "HTTP 429 without Retry-After",
            Verdict.RATE_LIMITED,
        )

    if retry_after > policy.max_retry_after:
        reason = _over_cap("HTTP 429", retry_after, policy)
        return Decision(Verdict.RATE_LIMITED, reason, retry_after=retry_after)

    return _bounded(
        attempt,
        elapsed,
        retry_after,
        policy,
        "HTTP 429",
        Verdict.RATE_LIMITED,
        retry_after=retry_after,
    )


def _after_status(
    attempt: int,
    elapsed: float,
    outcome: StatusOutcome,
    kind: RequestKind,
    policy: RetryPolicy,
    rng: random.Random,
) -> Decision:
    reason = f"HTTP {outcome.status}"
    if not is_transient_status(outcome.status):
        return Decision(Verdict.DONE, reason)
    if kind is RequestKind.UNSAFE:
        return Decision(
            Verdict.GIVE_UP,
            f"{reason}; the server may have processed an unsafe request",
        )

    retry_after = outcome.retry_after
    if retry_after is not None and retry_after > policy.max_retry_after:
        why = _over_cap(reason, retry_after, policy)
        return Decision(Verdict.GIVE_UP, why, retry_after=retry_after)

    wait = backoff(attempt, policy, rng) if retry_after is None else retry_after
    return _bounded(
        attempt, elapsed, wait, policy, reason, Verdict.GIVE_UP, retry_after
    )


def decide(
    attempt: int,
    elapsed: float,
    outcome: Outcome,
    kind: RequestKind,
    policy: RetryPolicy,
    rng: random.Random,
) -> Decision:
    """Decide whether to resend a request, and after how long a wait.

    `attempt` is the number of the attempt that just ended (from 1); `elapsed` the
    seconds since the first attempt began, waits included.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")

    if isinstance(outcome, FailureStage):
        reason = f"transport failure ({outcome.value})"
        if outcome is FailureStage.MAYBE_SENT and kind is RequestKind.UNSAFE:
            return Decision(
                Verdict.GIVE_UP,
                f"{reason}; resending an unsafe request could duplicate it",
            )
        wait = backoff(attempt, policy, rng)
        return _bounded(attempt, elapsed, wait, policy, reason, Verdict.GIVE_UP)

    if outcome.status == 429:
        return _after_rate_limit(attempt, elapsed, outcome, policy, rng)
    return _after_status(attempt, elapsed, outcome, kind, policy, rng)
