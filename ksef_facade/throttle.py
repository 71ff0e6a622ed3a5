"""A client-side rate limiter that keeps requests inside KSeF's documented limits.

KSeF counts requests per context and IP in sliding windows of one second, one minute
and one hour, all at once (limity/limity-api.md, "Model naliczania limitów"). The pure
core, `next_allowed`, says how long a request must wait to fit every window, given the
times of the earlier ones. `Throttle` keeps those times per (context, endpoint group)
and is thread-safe; the retry transports consult it before each attempt when given
one. It is off unless a transport is handed a `Throttle`, and the transports skip it
while waits are switched off (`retry.no_waits()`), since its clock would not move.
Part uploads to pre-signed URLs are outside the API and are not limited
(limity-api.md, "Wysyłka części paczki").
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from ksef_facade.rate_limits import (
    ANONYMOUS,
    GLOBAL,
    GROUP_LIMITS,
    OTHER,
    RateLimit,
    Route,
)

__all__ = ["Throttle", "bucket_names", "next_allowed"]

_HOUR = 3600.0


def next_allowed(
    now: float,
    history: Sequence[float],
    limits: RateLimit,
    *,
    blocked_until: float | None = None,
    margin: float = 0.0,
) -> float:
    """Return the seconds from `now` until one more request fits every window.

    `history` holds the send times of earlier requests in ascending order (it may
    include times reserved in the future). A request at time t stops counting in a
    window of length w at t + w. `margin` is added to any non-zero wait, to absorb
    jitter between our clock and the server's.
    """
    wait = 0.0
    if blocked_until is not None:
        wait = max(wait, blocked_until - now)

    for window, cap in limits.windows():
        in_window = len(history) - bisect.bisect_right(history, now - window)
        if in_window >= cap:
            # Of the last `cap` requests, the oldest must leave the window first.
            wait = max(wait, history[-cap] + window - now)

    return wait + margin if wait > 0 else 0.0


def bucket_names(route: Route) -> tuple[str, ...]:
    """Return the names of the counters a request to `route` counts against."""
    if route.group == ANONYMOUS:
        return (ANONYMOUS,)
    if route.group == OTHER:
        # limity-api.md, "Pozostałe": each such endpoint has its own counter.
        return (f"{OTHER} {route.method} {route.template}", GLOBAL)
    return (route.group, GLOBAL)


def _limit_name(bucket: str) -> str:
    return bucket.split(" ", 1)[0]


def _no_context() -> str:
    return ""


class Throttle:
    """Spaces requests per (context, endpoint group) to stay under the rate limits.

    `context_key` names the current context (the taxpayer NIP); anonymous endpoints
    are counted per client, since KSeF counts them per IP address. Limits default to
    the documented ones and can be replaced by the values of GET /rate-limits.
    """

    def __init__(
        self,
        limits: Mapping[str, RateLimit] | None = None,
        *,
        context_key: Callable[[], str] = _no_context,
        clock: Callable[[], float] = time.monotonic,
        margin: float = 0.05,
    ) -> None:
        self._limits = dict(GROUP_LIMITS)
        self._limits.update(limits or {})
        self._context_key = context_key
        self._clock = clock
        self._margin = margin
        self._lock = threading.Lock()
        self._history: dict[tuple[str, str], list[float]] = {}
        self._blocked: dict[tuple[str, str], float] = {}

    def update_limits(self, limits: Mapping[str, RateLimit]) -> None:
        """Replace the limits of the groups named in `limits`."""
        with self._lock:
            self._limits.update(limits)

    def _keys(self, route: Route) -> list[tuple[str, str]]:
        context = "" if route.group == ANONYMOUS else self._context_key()
        return [(context, name) for name in bucket_names(route)]

    def reserve(self, route: Route, max_wait: float | None = None) -> float:
        """Book a slot for one request to `route`; return the seconds to wait first.

        When the wait would exceed `max_wait`, nothing is booked and the wait is
        returned all the same, for the caller to give up on the request.
        """
        keys = self._keys(route)
        with self._lock:
            now = self._clock()
            wait = max(self._wait_for(key, now) for key in keys)
            if max_wait is not None and wait > max_wait:
                return wait

            for key in keys:
                history = self._history.setdefault(key, [])
                del history[: bisect.bisect_right(history, now - _HOUR)]
                bisect.insort(history, now + wait)

        return wait

    def _wait_for(self, key: tuple[str, str], now: float) -> float:
        limits = self._limits.get(_limit_name(key[1]))
        if limits is None:
            return 0.0

        return next_allowed(
            now,
            self._history.get(key, []),
            limits,
            blocked_until=self._blocked.get(key),
            margin=self._margin,
        )

    def block(self, route: Route, seconds: float) -> None:
        """Hold back requests to `route`'s group for `seconds` (after a 429)."""
        # Only the group's own counter: the global one is not what KSeF blocked.
        key = self._keys(route)[0]
        with self._lock:
            until = self._clock() + seconds
            self._blocked[key] = max(until, self._blocked.get(key, until))
