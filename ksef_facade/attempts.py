"""The pure core of the retrying transports: one request's way through its attempts.

:class:`Attempts` makes every decision for the shells in
``ksef_facade._async.transport`` (and its generated blocking twin): whether to send
now or let the throttle hold the request back, whether a response or a transport
failure is retried and after how long (as :mod:`ksef_facade.retry` decides), what
is counted in :class:`RetryStats` and what is logged. It never sends and never
sleeps; the shells do.

With a `Throttle`, each attempt first waits for its slot under the documented rate
limits. A slot further away than the policy's `max_retry_after` is not waited for:
the request is not sent, and a 429 made here (marked with the `THROTTLED` response
extension) is returned instead, so the caller sees the same rate-limit error.

Request bodies given as bytes (also JSON and form data) can be resent as they are. A
body streamed from an iterator can be read only once, so such a request is resent
only after failures that happen before it leaves (connect errors, pool timeouts).

Each response's `X-System-Warning` header is logged at WARNING on
`ksef_facade.warnings` and passed to an optional callback.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Callable
from datetime import datetime

import attrs
import httpx

from ksef_facade import rate_limits, retry
from ksef_facade.system_warnings import SystemWarning, parse_system_warnings
from ksef_facade.throttle import Throttle

__all__ = ["THROTTLED", "AttemptSettings", "Attempts", "RetryStats", "attempt_settings"]

# Response extension set on the 429 the throttle makes when it holds a request back.
THROTTLED = "ksef_facade.throttled"

_log = logging.getLogger("ksef_facade.retry")
_warnings_log = logging.getLogger("ksef_facade.warnings")

_MAX_WARNING_CHARS = 300


class RetryStats:
    """Counters of a transport's attempts, retries and waits, safe across threads.

    `attempts`: requests sent. `retries`: resends scheduled. `rate_limited`: 429s
    received from the server. `gave_up`: requests handed back although their outcome
    was retryable in principle. `held_back`: requests the throttle refused to send.
    `total_wait`: seconds of retry waits scheduled (slept, or skipped under
    `retry.no_waits()`). The online session adds its reconciliations of failed
    invoice sends (`ksef_facade.reconcile`): `reconciled` sends looked up, of which
    `adopted` were found and `resent` were sent again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.attempts = 0
        self.retries = 0
        self.rate_limited = 0
        self.gave_up = 0
        self.held_back = 0
        self.total_wait = 0.0
        self.reconciled = 0
        self.adopted = 0
        self.resent = 0

    def __repr__(self) -> str:
        return (
            f"RetryStats(attempts={self.attempts}, retries={self.retries}, "
            f"rate_limited={self.rate_limited}, gave_up={self.gave_up}, "
            f"held_back={self.held_back}, total_wait={self.total_wait:.2f}, "
            f"reconciled={self.reconciled}, adopted={self.adopted}, "
            f"resent={self.resent})"
        )

    def note_reconciliation(self, *, adopted: bool, resent: bool) -> None:
        """Count one failed invoice send looked up, and what came of it."""
        self._add(reconciled=1, adopted=int(adopted), resent=int(resent))

    def _add(
        self,
        *,
        attempts: int = 0,
        retries: int = 0,
        rate_limited: int = 0,
        gave_up: int = 0,
        held_back: int = 0,
        wait: float = 0.0,
        reconciled: int = 0,
        adopted: int = 0,
        resent: int = 0,
    ) -> None:
        with self._lock:
            self.attempts += attempts
            self.retries += retries
            self.rate_limited += rate_limited
            self.gave_up += gave_up
            self.held_back += held_back
            self.total_wait += wait
            self.reconciled += reconciled
            self.adopted += adopted
            self.resent += resent


@attrs.frozen
class AttemptSettings:
    """What every request through one transport shares: policy, throttle, clocks."""

    policy: retry.RetryPolicy
    throttle: Throttle | None
    on_warning: Callable[[SystemWarning], None] | None
    api_base_path: str
    clock: Callable[[], float]
    wall_clock: Callable[[], datetime]
    rng: random.Random
    stats: RetryStats


def _describe(
    request: httpx.Request, relative: str | None, route: rate_limits.Route | None
) -> str:
    # Never the query string or a pre-signed URL's path: either may carry a key.
    if route is not None:
        return route.template
    if relative is not None:
        return relative
    return f"<URL outside the API on {request.url.host}>"


def _too_many_requests(request: httpx.Request, retry_after: int) -> httpx.Response:
    # Spec, TooManyRequestsResponse; the extension tells it apart from KSeF's own.
    detail = f"Client-side throttle: retry after {retry_after} seconds."
    body = {
        "status": {"code": 429, "description": "Too Many Requests", "details": [detail]}
    }
    return httpx.Response(
        429,
        headers={"Retry-After": str(retry_after)},
        json=body,
        request=request,
        extensions={THROTTLED: True},
    )


class Attempts:
    """One request's way through its attempts: decides, counts and logs, never waits."""

    def __init__(self, settings: AttemptSettings, request: httpx.Request) -> None:
        self._settings = settings
        self._method = request.method
        relative = rate_limits.api_path(request.url.path, settings.api_base_path)
        self._route = (
            None
            if relative is None
            else rate_limits.find_route(request.method, relative)
        )
        self._kind = retry.request_kind(request.method, relative)
        self._target = _describe(request, relative, self._route)
        self._replayable = isinstance(request.stream, httpx.ByteStream)
        self._started = settings.clock()
        self._skipped = 0.0
        self._attempt = 0

    def before_attempt(self, request: httpx.Request) -> float | httpx.Response:
        """Return the throttle's wait before the next attempt, or a 429 to return.

        A throttle wait above the policy's `max_retry_after` is not slept on: the
        request is not sent and a 429 in KSeF's format, made here, says when to
        come back, just as KSeF's own would. With waits switched off the throttle is
        not consulted: its clock would never move, so its slots would only recede.
        """
        throttle = self._settings.throttle
        wait = 0.0
        if (
            throttle is not None
            and self._route is not None
            and retry.waits_enabled(self._settings.policy)
        ):
            cap = self._settings.policy.max_retry_after
            wait = throttle.reserve(self._route, max_wait=cap)
            if wait > cap:
                return self._held_back(request, wait)

        self._attempt += 1
        self._settings.stats._add(attempts=1)
        return self._to_sleep(wait)

    def _held_back(self, request: httpx.Request, wait: float) -> httpx.Response:
        _log.info(
            "Not sending %s %s: the client-side throttle holds it back %.0f s, "
            "over the %.0f s cap",
            self._method,
            self._target,
            wait,
            self._settings.policy.max_retry_after,
        )
        self._settings.stats._add(held_back=1)
        return _too_many_requests(request, math.ceil(wait))

    def after_response(self, response: httpx.Response) -> float | None:
        """Return the wait before resending, or None to hand `response` back."""
        self._report_warnings(response)

        now = self._settings.wall_clock()
        retry_after = retry.parse_retry_after(response.headers.get("Retry-After"), now)
        if response.status_code == 429:
            self._settings.stats._add(rate_limited=1)
            if self._settings.throttle and self._route and retry_after is not None:
                self._settings.throttle.block(self._route, retry_after)

        outcome = retry.StatusOutcome(response.status_code, retry_after)
        return self._follow(outcome, f"HTTP {response.status_code}")

    def after_error(self, error: Exception) -> float | None:
        """Return the wait before resending, or None to raise `error` again."""
        stage = retry.classify_error(error)
        if stage is None:
            return None
        return self._follow(stage, type(error).__name__)

    def _decide(self, outcome: retry.Outcome) -> retry.Decision:
        elapsed = self._settings.clock() - self._started + self._skipped
        decision = retry.decide(
            self._attempt,
            elapsed,
            outcome,
            self._kind,
            self._settings.policy,
            self._settings.rng,
        )

        # A streamed body is gone once sent; only a request that never left can go.
        sent = outcome is not retry.FailureStage.NOT_SENT
        if decision.retry and sent and not self._replayable:
            reason = f"{decision.reason}; its streamed body cannot be sent twice"
            return retry.Decision(retry.Verdict.GIVE_UP, reason)
        return decision

    def _follow(self, outcome: retry.Outcome, what: str) -> float | None:
        decision = self._decide(outcome)
        if decision.verdict is retry.Verdict.DONE:
            return None

        if not decision.retry:
            _log.info(
                "Giving up on %s %s after attempt %d: %s",
                self._method,
                self._target,
                self._attempt,
                decision.reason,
            )
            self._settings.stats._add(gave_up=1)
            return None

        _log.info(
            "Retrying %s %s after %s: attempt %d of %d failed, waiting %.2f s",
            self._method,
            self._target,
            what,
            self._attempt,
            self._settings.policy.max_attempts,
            decision.wait,
        )
        self._settings.stats._add(retries=1, wait=decision.wait)
        return self._to_sleep(decision.wait)

    def _to_sleep(self, wait: float) -> float:
        if retry.waits_enabled(self._settings.policy):
            return wait

        # Waits are off (tests): skip the sleep but count it, so bounds still hold.
        self._skipped += wait
        return 0.0

    def _report_warnings(self, response: httpx.Response) -> None:
        for value in response.headers.get_list("X-System-Warning"):
            for warning in parse_system_warnings(value):
                message = warning.message[:_MAX_WARNING_CHARS]
                _warnings_log.warning(
                    "KSeF warning %s on %s %s: %s",
                    warning.code or "(no code)",
                    self._method,
                    self._target,
                    message,
                )
                if self._settings.on_warning is not None:
                    self._settings.on_warning(
                        attrs.evolve(warning, method=self._method, target=self._target)
                    )


def attempt_settings(
    policy: retry.RetryPolicy,
    throttle: Throttle | None,
    on_warning: Callable[[SystemWarning], None] | None,
    api_base_path: str,
    clock: Callable[[], float],
    wall_clock: Callable[[], datetime],
    rng: random.Random | None,
    stats: RetryStats | None,
) -> AttemptSettings:
    """Return the settings of a transport; a fresh RNG and counters when not given."""
    return AttemptSettings(
        policy=policy,
        throttle=throttle,
        on_warning=on_warning,
        api_base_path=api_base_path,
        clock=clock,
        wall_clock=wall_clock,
        rng=rng if rng is not None else random.Random(),
        stats=stats if stats is not None else RetryStats(),
    )
