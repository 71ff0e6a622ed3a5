"""An httpx transport that resends requests as `ksef_facade.retry` decides.

`AsyncRetryTransport` wraps an inner transport and drives one
:class:`ksef_facade.attempts.Attempts` per request, which makes every decision
(throttle, retry, wait, counters, logs); this shell only sends, closes discarded
responses and sleeps. It never raises for an HTTP status: when retrying stops, the
last response is returned as it is (a 429 over the `Retry-After` cap included, for
the facade to raise its rate-limit error), and after a transport failure the last
httpx exception is raised again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import httpx

from ksef_facade import _concurrency, retry
from ksef_facade._clock import utc_now
from ksef_facade.attempts import Attempts, RetryStats, attempt_settings
from ksef_facade.system_warnings import SystemWarning
from ksef_facade.throttle import Throttle

__all__ = ["AsyncRetryTransport"]


class AsyncRetryTransport(httpx.AsyncBaseTransport):
    """Send through `inner`, resending as the retry policy decides."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport | None = None,
        *,
        policy: retry.RetryPolicy = retry.DEFAULT_POLICY,
        throttle: Throttle | None = None,
        on_warning: Callable[[SystemWarning], None] | None = None,
        api_base_path: str = "/v2",
        sleep: Callable[[float], Awaitable[None]] = _concurrency.async_sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
        stats: RetryStats | None = None,
    ) -> None:
        self._inner = inner if inner is not None else httpx.AsyncHTTPTransport()
        self._sleep = sleep
        self._settings = attempt_settings(
            policy, throttle, on_warning, api_base_path, clock, wall_clock, rng, stats
        )

    @property
    def stats(self) -> RetryStats:
        """Counters of attempts, retries, 429s and waits so far."""
        return self._settings.stats

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request`, resending it while the policy says so."""
        attempts = Attempts(self._settings, request)
        while True:
            step = attempts.before_attempt(request)
            if isinstance(step, httpx.Response):
                return step
            await self._pause(step)

            try:
                response = await self._inner.handle_async_request(request)
            except Exception as error:
                wait = attempts.after_error(error)
                if wait is None:
                    raise
                await self._pause(wait)
                continue

            try:
                wait = attempts.after_response(response)
            except BaseException:
                await response.aclose()
                raise
            if wait is None:
                return response

            await response.aclose()
            await self._pause(wait)

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            await self._sleep(seconds)

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self._inner.aclose()
