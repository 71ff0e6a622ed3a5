"""Concurrency primitives in both flavours, named so unasync maps one to the other.

Async source under ``ksef_facade/_async`` uses the ``Async``/``async_`` names; the
generated sync code gets the plain names. Every worker started here runs in a copy of
the caller's ``contextvars`` context, so the NIP set with ``nip_context`` reaches
worker threads and tasks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Generic, TypeVar

__all__ = [
    "AsyncEvent",
    "AsyncKeyedLocks",
    "AsyncLock",
    "Event",
    "KeyedLocks",
    "Lock",
    "async_offload",
    "async_run_bounded",
    "async_sleep",
    "offload",
    "run_bounded",
    "sleep",
]

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

AsyncLock = asyncio.Lock
Lock = threading.Lock
AsyncEvent = asyncio.Event
Event = threading.Event
async_sleep = asyncio.sleep
sleep = time.sleep


class AsyncKeyedLocks(Generic[K]):
    """One asyncio lock per key, created on first use."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[K, asyncio.Lock] = {}

    def get(self, key: K) -> asyncio.Lock:
        """Return the lock of ``key``; the guard is held only to create it."""
        lock = self._locks.get(key)
        if lock is None:
            with self._guard:
                lock = self._locks.setdefault(key, asyncio.Lock())
        return lock


class KeyedLocks(Generic[K]):
    """One thread lock per key, created on first use."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[K, threading.Lock] = {}

    def get(self, key: K) -> threading.Lock:
        """Return the lock of ``key``; the guard is held only to create it."""
        lock = self._locks.get(key)
        if lock is None:
            with self._guard:
                lock = self._locks.setdefault(key, threading.Lock())
        return lock


async def async_offload(func: Callable[[], T]) -> T:
    """Run blocking work on a thread, in a copy of the caller's context."""
    return await asyncio.to_thread(func)


def offload(func: Callable[[], T]) -> T:
    """Run blocking work in place (the asyncio form runs it on a thread)."""
    return func()


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}.")


async def async_run_bounded(
    funcs: Iterable[Callable[[], Awaitable[T]]], limit: int
) -> list[T]:
    """Run coroutine functions, at most ``limit`` at once; return results in order.

    Each runs in its own task, which copies the caller's context. The first failure
    cancels the rest and is raised.
    """
    _check_limit(limit)
    semaphore = asyncio.Semaphore(limit)

    async def bounded(func: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await func()

    tasks = [asyncio.ensure_future(bounded(func)) for func in funcs]
    if not tasks:
        return []

    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    for task in tasks:
        if task in done and (error := task.exception()) is not None:
            for other in pending:
                other.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            raise error

    return [task.result() for task in tasks]


def run_bounded(funcs: Iterable[Callable[[], T]], limit: int) -> list[T]:
    """Run functions on at most ``limit`` threads; return results in order.

    Each runs in a copy of the caller's context. The first failure cancels the
    functions not yet started and is raised once the running ones finish.
    """
    _check_limit(limit)
    parent = contextvars.copy_context()

    with concurrent.futures.ThreadPoolExecutor(max_workers=limit) as executor:
        futures = [executor.submit(parent.copy().run, func) for func in funcs]
        done, pending = concurrent.futures.wait(
            futures, return_when=concurrent.futures.FIRST_EXCEPTION
        )
        for future in futures:
            if future in done and (error := future.exception()) is not None:
                for other in pending:
                    other.cancel()
                raise error

    return [future.result() for future in futures]
