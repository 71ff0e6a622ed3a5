"""Polling until a final status, over a fake clock (both flavours)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from ksef_facade._async.polling import async_poll
from ksef_facade._sync.polling import poll
from ksef_facade.errors import KsefTimeoutError

START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(milliseconds=1)


def ticking_clock() -> Iterator[datetime]:
    """A clock that moves one STEP each time it is read."""
    moment = START
    while True:
        yield moment
        moment += STEP


def timed_out(last: int) -> KsefTimeoutError:
    return KsefTimeoutError(f"still {last}", last_status_code=last)


def test_returns_the_first_final_result() -> None:
    """Polling stops at the first result that is final and returns it."""
    results = iter([100, 150, 200, 100])
    clock = ticking_clock()

    final = poll(
        lambda: next(results),
        lambda code: code >= 200,
        clock=lambda: next(clock),
        interval=STEP,
        max_wait=timedelta(seconds=1),
        timed_out=timed_out,
    )

    assert final == 200
    assert next(results) == 100


async def test_times_out_with_the_last_result() -> None:
    """When time is up the error is built from the last, non-final result."""
    calls: list[int] = []
    clock = ticking_clock()

    async def fetch() -> int:
        calls.append(100)
        return 100

    with pytest.raises(KsefTimeoutError) as raised:
        await async_poll(
            fetch,
            lambda code: code >= 200,
            clock=lambda: next(clock),
            interval=STEP,
            max_wait=5 * STEP,
            timed_out=timed_out,
        )

    assert raised.value.last_status_code == 100
    assert 1 < len(calls) <= 5
