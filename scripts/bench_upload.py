"""Benchmark parallel batch part upload against uploading the parts one by one.

One package of 10 encrypted parts is built once; for every case a fresh batch
session is opened on the built-in simulator (served over loopback), the simulator
adds ``--latency`` seconds (default 0.2) to every part upload, and only the upload
of the 10 parts is timed. ``sequential`` uploads with concurrency 1; the other rows
use ``--concurrency`` (default 4, the client's default) and 10, in the blocking
(threads) and asyncio forms. ``ratio`` is wall time over the sequential time of the
same form, measured in the same run; the target is at most 35%.
Run: ``python scripts/bench_upload.py [--latency 0.2] [--repeat 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # running as `python scripts/bench_upload.py`
    sys.path.insert(0, str(REPO_ROOT))

from ksef_facade import (  # noqa: E402  # noqa: E402
    AsyncKsefClient,
    Environment,
    KsefClient,
    Secret,
    crypto,
    nip_context,
)
from ksef_facade.batch_package import BatchPackage, build_batch_package  # noqa: E402
from ksef_facade.forms import FormCode  # noqa: E402
from ksef_facade.secrets import SecretBytes  # noqa: E402
from ksef_facade.testing import Simulator  # noqa: E402
from ksef_facade.testing.server import run_simulator  # noqa: E402

TEMPLATE = REPO_ROOT / "scripts" / "data" / "invoice_fa3_template.xml"
NIP = "5265877635"
BUYER_NIP = "3896717236"
PARTS = 10
TARGET = 0.35


def invoices(count: int) -> list[tuple[str, bytes]]:
    """Return ``count`` FA(3) invoices rendered from the demo template."""
    template = string.Template(TEMPLATE.read_text(encoding="utf-8"))
    return [
        (
            f"fv-{n:04d}.xml",
            template.substitute(
                seller_nip=NIP,
                buyer_nip=BUYER_NIP,
                invoice_number=f"BENCH/{n}",
                issue_date="2026-01-10",
                created_at="2026-01-10T10:00:00Z",
            ).encode("utf-8"),
        )
        for n in range(count)
    ]


def ten_part_package(key: bytes, iv: bytes) -> BatchPackage:
    """Build a package cut into exactly :data:`PARTS` parts."""
    source = invoices(200)
    with build_batch_package(source, key=key, iv=iv) as whole:
        size = whole.file_size
    package = build_batch_package(
        source, key=key, iv=iv, part_size=math.ceil(size / PARTS)
    )
    if len(package.parts) != PARTS:
        raise SystemExit(f"bench: expected {PARTS} parts, got {len(package.parts)}")
    return package


def time_sync(
    client: KsefClient, package: BatchPackage, key: bytes, iv: bytes, concurrency: int
) -> float:
    """Open a session and return the seconds its blocking upload takes."""
    session = client.open_batch_session(
        package, FormCode.FA3, key=SecretBytes(key), iv=iv
    )
    started = time.perf_counter()
    session.upload(concurrency=concurrency)
    return time.perf_counter() - started


async def time_async(
    client: AsyncKsefClient,
    package: BatchPackage,
    key: bytes,
    iv: bytes,
    concurrency: int,
) -> float:
    """Open a session and return the seconds its asyncio upload takes."""
    session = await client.open_batch_session(
        package, FormCode.FA3, key=SecretBytes(key), iv=iv
    )
    started = time.perf_counter()
    await session.upload(concurrency=concurrency)
    return time.perf_counter() - started


def best(runs: int, measure: Callable[[], float]) -> float:
    """Return the fastest of ``runs`` measurements."""
    return min(measure() for _ in range(runs))


def main() -> None:
    """Print the benchmark table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    key, iv = crypto.random_aes_key(), crypto.random_iv()
    package = ten_part_package(key, iv)
    levels = [1, args.concurrency, PARTS]

    sim = Simulator()
    token = Secret(sim.add_ksef_token(NIP))
    sim.faults.latency(args.latency, route="upload_part")
    results: dict[tuple[str, int], float] = {}

    with run_simulator(sim) as base_url, nip_context(NIP):
        environment = Environment.custom(base_url, name="simulator")
        with KsefClient(environment, ksef_token=token) as client:
            for level in levels:
                results["blocking", level] = best(
                    args.repeat, lambda n=level: time_sync(client, package, key, iv, n)
                )

        async def run_async() -> None:
            async with AsyncKsefClient(environment, ksef_token=token) as client:
                for level in levels:
                    times = [
                        await time_async(client, package, key, iv, level)
                        for _ in range(args.repeat)
                    ]
                    results["asyncio", level] = min(times)

        asyncio.run(run_async())
    package.close()

    print(
        f"batch part upload: {PARTS} parts of ~{package.parts[0].size} bytes, "
        f"{args.latency * 1000:.0f} ms added per part upload, simulator on loopback, "
        f"best of {args.repeat}"
    )
    header = f"{'form':<9} {'concurrency':>11} {'wall s':>7} {'ratio':>6} {'target':>7}"
    print(header)
    print("-" * len(header))
    for (form, level), wall in results.items():
        ratio = wall / results[form, 1]
        verdict = "" if level == 1 else ("ok" if ratio <= TARGET else "MISSED")
        print(f"{form:<9} {level:>11} {wall:>7.3f} {ratio:>6.0%} {verdict:>7}")


if __name__ == "__main__":
    main()
