"""Benchmark the TokenProvider twins against the floor of any token cache.

    python scripts/bench_tokens.py [--quick]

Scenarios (the reference design's four, each with threads and with asyncio):
sequential warm cache; parallel, one NIP, warm; parallel, 100 NIPs, cold, with
authentication simulated at 5 ms; parallel, 40 NIPs, warm. Each worker sets its NIP
once with ``nip_context`` and then asks for tokens, as a request handler would.

The floor is what any cache must do per call: a dict lookup and an expiry comparison
against the clock, as a plain function call (and inlined in the loop, for reference).
Also measured: the p99 latency of one NIP's warm calls while another NIP's
authentication is held for one second.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ksef_facade.context import current_nip, nip_context
from ksef_facade.secrets import Secret
from ksef_facade.tokens import AsyncTokenProvider, TokenProvider, TokenSet

AUTH_DELAY = 0.005
THREADS = 8
_WEIGHTS = (6, 5, 7, 2, 3, 4, 5, 6, 7)


def make_nip(seed: int) -> str:
    """Return a valid NIP derived from ``seed``."""
    base = 100_000_000 + seed * 7
    while True:
        digits = str(base)
        check = sum(w * int(d) for w, d in zip(_WEIGHTS, digits, strict=True)) % 11
        if check != 10:
            return digits + str(check)
        base += 1


def token_set(nip: str) -> TokenSet:
    """A token set valid for an hour."""
    later = datetime.now(UTC) + timedelta(hours=1)
    return TokenSet(
        access_token=Secret(f"access-{nip}"),
        access_valid_until=later,
        refresh_token=Secret(f"refresh-{nip}"),
        refresh_valid_until=later + timedelta(days=1),
    )


def sync_provider(gates: dict[str, threading.Event] | None = None) -> TokenProvider:
    """A provider whose authentication sleeps AUTH_DELAY (or waits on a gate)."""

    def authenticate() -> TokenSet:
        nip = current_nip()
        if gates and nip in gates:
            gates[nip].wait()
        time.sleep(AUTH_DELAY)
        return token_set(nip)

    def refresh(refresh_token: Secret) -> TokenSet:
        return token_set(current_nip())

    return TokenProvider(authenticate, refresh)


def async_provider(gates: dict[str, asyncio.Event] | None = None) -> AsyncTokenProvider:
    """The asyncio twin of ``sync_provider``."""

    async def authenticate() -> TokenSet:
        nip = current_nip()
        if gates and nip in gates:
            await gates[nip].wait()
        await asyncio.sleep(AUTH_DELAY)
        return token_set(nip)

    async def refresh(refresh_token: Secret) -> TokenSet:
        return token_set(current_nip())

    return AsyncTokenProvider(authenticate, refresh)


def warm(provider: TokenProvider | AsyncTokenProvider, nips: list[str]) -> None:
    for nip in nips:
        with nip_context(nip):
            provider.seed_tokens(token_set(nip))


SyncBind = Callable[[str], Callable[[], object]]
AsyncBind = Callable[[str], Callable[[], Awaitable[object]]]


def floor_bind(nips: list[str]) -> SyncBind:
    """Per NIP, a function doing a bare dict lookup and expiry check."""
    cache = {nip: (Secret("t"), time.time() + 3600) for nip in nips}
    clock = time.time

    def bind(nip: str) -> Callable[[], object]:
        def lookup() -> Secret | None:
            entry = cache.get(nip)
            if entry is not None and entry[1] > clock():
                return entry[0]
            return None

        return lookup

    return bind


def async_floor_bind(nips: list[str]) -> AsyncBind:
    """Per NIP, a coroutine function doing the same lookup and check."""
    cache = {nip: (Secret("t"), time.time() + 3600) for nip in nips}
    clock = time.time

    def bind(nip: str) -> Callable[[], Awaitable[object]]:
        async def lookup() -> Secret | None:
            entry = cache.get(nip)
            if entry is not None and entry[1] > clock():
                return entry[0]
            return None

        return lookup

    return bind


def provider_bind(nips: list[str], cold: bool) -> SyncBind:
    """The TokenProvider's access_token (it reads the NIP from the context)."""
    provider = sync_provider()
    if not cold:
        warm(provider, nips)
    return lambda nip: provider.access_token


def async_provider_bind(nips: list[str], cold: bool) -> AsyncBind:
    """The AsyncTokenProvider's access_token."""
    provider = async_provider()
    if not cold:
        warm(provider, nips)
    return lambda nip: provider.access_token


def run_sequential(bind: SyncBind, nip: str, ops: int) -> float:
    """ns/op of ``ops`` calls in the calling thread."""
    get = bind(nip)
    with nip_context(nip):
        start = time.perf_counter_ns()
        for _ in range(ops):
            get()
        return (time.perf_counter_ns() - start) / ops


def run_threads(bind: SyncBind, nips: list[str], workers: int, ops: int) -> float:
    """ns/op over all threads; thread i serves nips[i % len(nips)]."""
    barrier = threading.Barrier(workers + 1)

    def worker(nip: str) -> None:
        get = bind(nip)
        with nip_context(nip):
            barrier.wait()
            for _ in range(ops):
                get()

    threads = [
        threading.Thread(target=worker, args=(nips[i % len(nips)],))
        for i in range(workers)
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter_ns()
    for thread in threads:
        thread.join()
    return (time.perf_counter_ns() - start) / (workers * ops)


def run_async_sequential(bind: AsyncBind, nip: str, ops: int) -> float:
    """ns/op of ``ops`` awaited calls in one task."""

    async def loop() -> float:
        get = bind(nip)
        with nip_context(nip):
            start = time.perf_counter_ns()
            for _ in range(ops):
                await get()
            return (time.perf_counter_ns() - start) / ops

    return asyncio.run(loop())


def run_tasks(bind: AsyncBind, nips: list[str], workers: int, ops: int) -> float:
    """ns/op over all tasks; task i serves nips[i % len(nips)]."""

    async def scenario() -> float:
        go = asyncio.Event()

        async def worker(nip: str) -> None:
            get = bind(nip)
            with nip_context(nip):
                await go.wait()
                for index in range(ops):
                    await get()
                    if index % 64 == 0:
                        # Let the other tasks interleave, as real I/O would.
                        await asyncio.sleep(0)

        tasks = [
            asyncio.ensure_future(worker(nips[i % len(nips)])) for i in range(workers)
        ]
        await asyncio.sleep(0)
        start = time.perf_counter_ns()
        go.set()
        await asyncio.gather(*tasks)
        return (time.perf_counter_ns() - start) / (workers * ops)

    return asyncio.run(scenario())


def measure(
    flavour: str, nip_count: int, workers: int, cold: bool, ops: int, floor: bool
) -> float:
    """ns/op of one scenario run, with the provider or with the floor lookup."""
    nips = [make_nip(i) for i in range(nip_count)]
    per_worker = max(ops // max(workers, 1), 1)

    if flavour == "threads":
        bind = floor_bind(nips) if floor else provider_bind(nips, cold)
        if workers == 0:
            return run_sequential(bind, nips[0], ops)
        return run_threads(bind, nips, workers, per_worker)

    abind = async_floor_bind(nips) if floor else async_provider_bind(nips, cold)
    if workers == 0:
        return run_async_sequential(abind, nips[0], ops)
    return run_tasks(abind, nips, workers, per_worker)


def cold_start_ms(flavour: str) -> float:
    """Wall time, in ms, for 100 cold NIPs to get their first tokens."""
    nips = [make_nip(i) for i in range(100)]
    if flavour == "threads":
        return run_threads(provider_bind(nips, cold=True), nips, 100, 1) * 100 / 1e6
    return run_tasks(async_provider_bind(nips, cold=True), nips, 100, 1) * 100 / 1e6


# Bare floors, without any harness.


def floor_call(ops: int) -> float:
    """ns/op of a function doing a dict lookup and an expiry check."""
    return run_sequential(floor_bind([make_nip(0)]), make_nip(0), ops)


def floor_inline(ops: int) -> float:
    """ns/op of the same lookup and check written inline in the loop."""
    nip = make_nip(0)
    cache = {nip: (Secret("t"), time.time() + 3600)}
    clock = time.time

    start = time.perf_counter_ns()
    for _ in range(ops):
        entry = cache.get(nip)
        if entry is not None and entry[1] > clock():
            pass
    return (time.perf_counter_ns() - start) / ops


def floor_async(ops: int) -> float:
    """ns/op of awaiting a coroutine that does the lookup: asyncio's own floor."""
    return run_async_sequential(async_floor_bind([make_nip(0)]), make_nip(0), ops)


# Latency while another NIP's authentication is held.


def percentile(samples: list[int], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e6


def threads_latency_while_stuck(hold: float) -> tuple[float, float, int]:
    """p50 and p99 (ms) of warm calls for one NIP while another's auth hangs."""
    stuck, other = make_nip(0), make_nip(1)
    gates = {stuck: threading.Event()}
    provider = sync_provider(gates)
    warm(provider, [other])

    def blocked() -> None:
        with nip_context(stuck):
            provider.access_token()

    holder = threading.Thread(target=blocked)
    holder.start()
    samples: list[int] = []
    with nip_context(other):
        deadline = time.monotonic() + hold
        while time.monotonic() < deadline:
            start = time.perf_counter_ns()
            provider.access_token()
            samples.append(time.perf_counter_ns() - start)
    gates[stuck].set()
    holder.join()
    return percentile(samples, 0.5), percentile(samples, 0.99), len(samples)


def tasks_latency_while_stuck(hold: float) -> tuple[float, float, int]:
    """The asyncio twin of ``threads_latency_while_stuck``."""

    async def scenario() -> tuple[float, float, int]:
        stuck, other = make_nip(0), make_nip(1)
        gates = {stuck: asyncio.Event()}
        provider = async_provider(gates)
        warm(provider, [other])

        async def blocked() -> None:
            with nip_context(stuck):
                await provider.access_token()

        holder = asyncio.ensure_future(blocked())
        await asyncio.sleep(0)
        samples: list[int] = []
        with nip_context(other):
            deadline = time.monotonic() + hold
            while time.monotonic() < deadline:
                start = time.perf_counter_ns()
                await provider.access_token()
                samples.append(time.perf_counter_ns() - start)
                if len(samples) % 64 == 0:
                    await asyncio.sleep(0)
        gates[stuck].set()
        await holder
        return percentile(samples, 0.5), percentile(samples, 0.99), len(samples)

    return asyncio.run(scenario())


def paired(repeats: int, *runs: Callable[[], float]) -> list[float]:
    """Run each measurement ``repeats`` times, interleaved; return each one's best.

    Interleaving keeps a scenario and its floor under the same machine conditions.
    """
    samples: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for index, run in enumerate(runs):
            samples[index].append(run())
    return [min(values) for values in samples]


# label, NIPs, workers (0: the calling thread or task), cold cache
SCENARIOS: list[tuple[str, int, int, bool]] = [
    ("sequential, warm", 1, 0, False),
    (f"parallel, 1 NIP, warm ({THREADS} workers)", 1, THREADS, False),
    ("parallel, 100 NIPs, cold, auth 5 ms", 100, 100, True),
    ("parallel, 40 NIPs, warm", 40, 40, False),
]


def main(argv: list[str] | None = None) -> int:
    """Run every scenario and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args(argv)
    ops = 100_000 if args.quick else 1_000_000
    repeats = 3 if args.quick else 5
    hold = 0.25 if args.quick else 1.0

    floor_call(ops)  # warm-up: let the CPU clock settle before measuring

    call, inline, awaited = paired(
        repeats,
        lambda: floor_call(ops),
        lambda: floor_inline(ops),
        lambda: floor_async(ops),
    )
    print(
        f"Python {sys.version.split()[0]}, {ops:,} ops per scenario, best of {repeats}"
    )
    print()
    print("Floor (what any token cache must do per call):")
    print(f"  dict lookup + expiry check, as a call      {call:7.1f} ns/op")
    print(f"  the same, inlined in the loop              {inline:7.1f} ns/op")
    print(f"  the same, awaited as a coroutine           {awaited:7.1f} ns/op")
    print()
    header = f"{'scenario':40} {'flavour':8} {'ns/op':>7} {'floor':>7} {'x floor':>8}"
    print(header)
    print("-" * len(header))
    for label, nip_count, workers, cold in SCENARIOS:
        for flavour in ("threads", "asyncio"):
            scenario = partial(measure, flavour, nip_count, workers, cold, ops)
            floor, provider = paired(
                repeats, partial(scenario, True), partial(scenario, False)
            )
            print(
                f"{label:40} {flavour:8} {provider:7.1f} {floor:7.1f} "
                f"{provider / floor:8.2f}"
            )
    print()
    print("floor: the same scenario (threads or tasks, NIP context, loop) with the")
    print("provider replaced by the bare lookup: a function for threads, a coroutine")
    print("for asyncio. The cold scenario's floor is warm, so its ratio includes the")
    print("100 simulated authentications.")

    print()
    print(f"Cold start, 100 NIPs, auth {AUTH_DELAY * 1e3:.0f} ms each (wall time):")
    for flavour in ("threads", "asyncio"):
        print(f"  {flavour} {cold_start_ms(flavour):7.1f} ms")
    print()
    print(f"Warm calls of one NIP while another NIP's auth is held for {hold:g} s:")
    for flavour, latency in [
        ("threads", threads_latency_while_stuck),
        ("asyncio", tasks_latency_while_stuck),
    ]:
        p50, p99, count = latency(hold)
        verdict = "ok" if p99 < 1.0 else "OVER 1 ms"
        print(
            f"  {flavour}: p50 {p50 * 1e3:.1f} us, p99 {p99 * 1e3:.1f} us "
            f"over {count:,} calls ({verdict}: target p99 < 1 ms)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
