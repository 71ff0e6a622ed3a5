"""Polling an operation until it reaches a final status, or time runs out.

KSeF processes authentication, invoices and sessions asynchronously; their status
is read again until it is final (uwierzytelnianie.md, sesja-interaktywna.md,
sesja-sprawdzenie-stanu-i-pobranie-upo.md). The pauses come from
:func:`ksef_facade.statuses.next_poll_delay`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from ksef_facade import statuses
from ksef_facade._concurrency import async_sleep
from ksef_facade.errors import KsefTimeoutError

__all__ = ["async_poll"]

S = TypeVar("S")


async def async_poll(
    fetch: Callable[[], Awaitable[S]],
    is_final: Callable[[S], bool],
    *,
    clock: Callable[[], datetime],
    interval: timedelta,
    max_wait: timedelta,
    timed_out: Callable[[S], KsefTimeoutError],
) -> S:
    """Call ``fetch`` until ``is_final`` holds for its result; return that result.

    Calls are ``interval`` apart, the last one ``max_wait`` after the start; if its
    result is not final either, ``timed_out(result)`` is raised.
    """
    started = clock()
    while True:
        status = await fetch()
        if is_final(status):
            return status

        delay = statuses.next_poll_delay(
            started=started, now=clock(), interval=interval, timeout=max_wait
        )
        if delay is None:
            raise timed_out(status)
        await async_sleep(delay)
