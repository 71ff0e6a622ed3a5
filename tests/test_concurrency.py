"""Tests for ksef_facade._concurrency: keyed locks and bounded parallel maps."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ksef_facade._concurrency import (
    AsyncKeyedLocks,
    KeyedLocks,
    async_run_bounded,
    run_bounded,
)
from ksef_facade.context import current_nip, nip_context

NIP = "5260001246"


def test_keyed_locks_same_key_same_lock() -> None:
    """One key always gets the same lock; different keys get different ones."""
    locks: KeyedLocks[str] = KeyedLocks()

    assert locks.get("a") is locks.get("a")
    assert locks.get("a") is not locks.get("b")


def test_keyed_locks_concurrent_creation_yields_one_lock() -> None:
    """Threads racing to create a key's lock all receive the same one."""
    locks: KeyedLocks[str] = KeyedLocks()
    barrier = threading.Barrier(20)
    seen: list[object] = []

    def grab() -> None:
        barrier.wait()
        seen.append(locks.get("k"))

    threads = [threading.Thread(target=grab) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({id(lock) for lock in seen}) == 1


def test_keyed_locks_do_not_block_other_keys() -> None:
    """Holding one key's lock leaves another key's lock free."""
    locks: KeyedLocks[str] = KeyedLocks()

    with locks.get("a"):
        assert locks.get("b").acquire(blocking=False)
        locks.get("b").release()


async def test_async_keyed_locks_do_not_block_other_keys() -> None:
    """Holding one key's asyncio lock leaves another key's lock free."""
    locks: AsyncKeyedLocks[str] = AsyncKeyedLocks()

    async with locks.get("a"):
        assert locks.get("a").locked()
        assert not locks.get("b").locked()


def test_run_bounded_returns_results_in_order() -> None:
    """Results come back in the order of the functions."""
    funcs = [lambda i=i: (time.sleep(0.001 * (5 - i)), i)[1] for i in range(5)]

    assert run_bounded(funcs, limit=3) == [0, 1, 2, 3, 4]


def test_run_bounded_respects_limit() -> None:
    """No more than ``limit`` functions run at the same time."""
    running = 0
    peak = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal running, peak
        with guard:
            running += 1
            peak = max(peak, running)
        time.sleep(0.01)
        with guard:
            running -= 1

    run_bounded([work] * 12, limit=3)

    assert peak == 3


def test_run_bounded_carries_nip_into_threads() -> None:
    """Worker threads see the caller's NIP context."""
    with nip_context(NIP):
        seen = run_bounded([current_nip] * 8, limit=4)

    assert seen == [NIP] * 8


def test_run_bounded_raises_first_failure() -> None:
    """A failing function's exception reaches the caller."""

    def boom() -> int:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_bounded([lambda: 1, boom, lambda: 3], limit=2)


def test_run_bounded_rejects_zero_limit() -> None:
    """A limit below 1 is a ValueError."""
    with pytest.raises(ValueError, match="at least 1"):
        run_bounded([], limit=0)


async def test_async_run_bounded_returns_results_in_order() -> None:
    """Results come back in the order of the coroutine functions."""

    async def value(i: int) -> int:
        await asyncio.sleep(0.001 * (5 - i))
        return i

    funcs = [lambda i=i: value(i) for i in range(5)]

    assert await async_run_bounded(funcs, limit=2) == [0, 1, 2, 3, 4]


async def test_async_run_bounded_respects_limit() -> None:
    """No more than ``limit`` coroutines run at the same time."""
    running = 0
    peak = 0

    async def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.005)
        running -= 1

    await async_run_bounded([work] * 10, limit=4)

    assert peak == 4


async def test_async_run_bounded_carries_nip_into_tasks() -> None:
    """Worker tasks see the caller's NIP context."""

    async def read() -> str:
        await asyncio.sleep(0)
        return current_nip()

    with nip_context(NIP):
        seen = await async_run_bounded([read] * 6, limit=3)

    assert seen == [NIP] * 6


async def test_async_run_bounded_cancels_rest_on_failure() -> None:
    """The first failure is raised and the slow remaining tasks are cancelled."""
    cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def boom() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await async_run_bounded([slow, boom], limit=2)

    assert cancelled.is_set()


async def test_async_run_bounded_empty() -> None:
    """No functions, no results."""
    assert await async_run_bounded([], limit=1) == []
