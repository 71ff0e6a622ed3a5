"""Fault suite: 1,000 invoices online and a batch of 1,000 while everything goes wrong.

One run against the simulator over loopback injects 429 storms, 5xx bursts,
connections dropped before and after the request was processed, failing part
uploads, an early expiry of every access token and an emergency key rotation.
Afterwards every invoice has exactly one outcome (a KSeF number or a rejection with
its code), the simulator received each document exactly once (so none was accepted
twice and none is missing), every request and response matched the pinned spec,
and the tally is printed and checked.

Waits are zeroed by default; ``KSEF_SLOW_FAULTS=1`` adds a variant that sleeps every
wait for real (Retry-After, backoff, reconciliation lookups).
"""

from __future__ import annotations

import asyncio
import os
import string
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from functools import partial

import attrs
import pytest
from test_client import BUYER_NIP, TEMPLATE

from ksef_facade import Environment, InvoiceRejectedError, Secret, nip_context
from ksef_facade._async.client import AsyncKsefClient
from ksef_facade._async.online import AsyncInvoiceHandle, AsyncOnlineSession
from ksef_facade._concurrency import async_run_bounded
from ksef_facade.batch_state import OutcomeKind
from ksef_facade.crypto import sha256_b64
from ksef_facade.forms import FormCode
from ksef_facade.retry import RetryPolicy
from ksef_facade.testing.pytest_plugin import SimulatorEnv, simulator_env

ONLINE_NIPS = 4
ONLINE_PER_NIP = 250
SESSION_SIZE = 50
SENDS_PER_SESSION = 5
BATCH_SIZE = 1000
# Every n-th invoice names another seller: KSeF rejects it with 410.
ONLINE_BAD_EVERY = 25
BATCH_BAD_EVERY = 50
# When the online sends pass these counts, every access token expires and the
# encryption keys are rotated with the old ones withdrawn at once.
EXPIRE_TOKENS_AT = 300
ROTATE_KEYS_AT = 600

SLOW = os.environ.get("KSEF_SLOW_FAULTS") == "1"
MODES = ["zero-waits", *(["real-waits"] if SLOW else [])]


def _nip(first_nine: str) -> str:
    """Return the NIP with these nine digits and a valid check digit."""
    weights = (6, 5, 7, 2, 3, 4, 5, 6, 7)
    check = sum(w * int(d) for w, d in zip(weights, first_nine, strict=True)) % 11
    if check == 10:
        raise ValueError(f"{first_nine} has no valid check digit")
    return first_nine + str(check)


def _invoice(seller_nip: str, number: str) -> bytes:
    """Render an FA(3) invoice of ``seller_nip`` numbered ``number``."""
    text = string.Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        seller_nip=seller_nip,
        buyer_nip=BUYER_NIP,
        issue_date="2026-01-10",
        invoice_number=number,
        created_at="2026-01-10T10:00:00Z",
    )
    return text.encode("utf-8")


@attrs.define
class Expected:
    """One invoice of the run and the outcome it must end with."""

    content: bytes
    nip: str
    seller_ok: bool
    outcome: str | None = None  # "KSeF number" or "rejected <code>"
    ksef_number: str | None = None


@attrs.define
class Run:
    """The shared state of one fault-suite run."""

    sim_env: SimulatorEnv
    client: AsyncKsefClient
    online: dict[str, list[Expected]]
    batch_nip: str
    batch: list[Expected]
    sent_online: int = 0
    chaos: list[str] = attrs.field(factory=list)


def _nips(prefix: str, count: int) -> list[str]:
    """Return ``count`` valid NIPs starting with the five digits ``prefix``."""
    found = []
    for n in range(10_000):
        try:
            found.append(_nip(f"{prefix}{n:04d}"))
        except ValueError:
            continue
        if len(found) == count:
            return found
    raise AssertionError("not enough NIPs")


# No session is opened for this seller: its invoices are rejected with 410.
[OTHER_SELLER] = _nips("77700", 1)


def _plan(
    sim_env: SimulatorEnv,
) -> tuple[dict[str, list[Expected]], str, list[Expected]]:
    """Return the online invoices by NIP, the batch NIP and the batch invoices."""
    online: dict[str, list[Expected]] = {}
    for nip in _nips("52600", ONLINE_NIPS):
        online[nip] = []
        for n in range(ONLINE_PER_NIP):
            ok = (n + 1) % ONLINE_BAD_EVERY != 0
            seller = nip if ok else OTHER_SELLER
            content = _invoice(seller, f"FV/O/{nip}/{n}")
            online[nip].append(Expected(content, nip, ok))

    batch_nip = sim_env.nip
    batch = []
    for n in range(BATCH_SIZE):
        ok = (n + 1) % BATCH_BAD_EVERY != 0
        seller = batch_nip if ok else OTHER_SELLER
        batch.append(Expected(_invoice(seller, f"FV/B/{n}"), batch_nip, ok))
    return online, batch_nip, batch


def _inject_faults(sim_env: SimulatorEnv) -> None:
    """Arm every fault of the run; ``after`` spreads them over its course."""
    faults = sim_env.sim.faults
    send = "send_online_invoice"

    # 429 storms: one on every route, one on the invoice send, one on batch open.
    faults.rate_limited(15, retry_after=1, after=200)
    faults.rate_limited(20, retry_after=1, route=send, after=400)
    faults.rate_limited(3, retry_after=1, route="open_batch_session")

    # 5xx bursts on the send (reconciled), status reads and listings (retried).
    faults.server_errors(10, status=503, route=send, after=100)
    faults.server_errors(8, status=502, route="session_invoice_status", after=300)
    faults.server_errors(5, status=500, route="session_status")
    faults.server_errors(4, status=503, route="session_invoices", after=2)

    # Dropped connections: before processing (nothing happened) and after it.
    faults.drop_before(10, route=send, after=150)
    faults.drop_after(10, route=send, after=250)
    faults.drop_after(5, route="session_invoice_status", after=500)
    faults.drop_before(3, route="upload_part", after=1)

    # Part uploads answered 503.
    faults.fail_part_uploads(4, status=503, after=2)


def _client(
    sim_env: SimulatorEnv, tokens: dict[str, str], *, real_waits: bool
) -> AsyncKsefClient:
    if real_waits:
        policy = RetryPolicy(
            max_attempts=10, backoff_initial=0.05, backoff_max=1.0, max_retry_after=5
        )
        interval = timedelta(milliseconds=100)
    else:
        policy = RetryPolicy(max_attempts=10).without_waits()
        interval = timedelta(milliseconds=5)
    return AsyncKsefClient(
        Environment.custom(sim_env.base_url),
        ksef_token=lambda nip: Secret(tokens[nip]),
        retry_policy=policy,
        poll_interval=interval,
        poll_timeout=timedelta(seconds=60),
    )


async def _outcome(handle: AsyncInvoiceHandle, expected: Expected) -> None:
    try:
        expected.ksef_number = await handle.result()
        expected.outcome = "KSeF number"
    except InvoiceRejectedError as error:
        expected.outcome = f"rejected {error.status_code}"


def _after_send(run: Run) -> None:
    """Count a send; expire tokens and rotate keys when the run gets there."""
    run.sent_online += 1
    sim = run.sim_env.sim
    if run.sent_online == EXPIRE_TOKENS_AT:
        run.chaos.append(f"expired {sim.expire_tokens('access')} access tokens")
    if run.sent_online == ROTATE_KEYS_AT:
        run.chaos.append(f"rotated keys {sim.rotate_keys(withdraw_old=True)}")


async def _send_one(
    run: Run, session: AsyncOnlineSession, expected: Expected
) -> tuple[AsyncInvoiceHandle, Expected]:
    handle = await session.send(expected.content)
    _after_send(run)
    return handle, expected


async def _online_nip(run: Run, nip: str) -> None:
    invoices = run.online[nip]
    with nip_context(nip):
        for start in range(0, len(invoices), SESSION_SIZE):
            chunk = invoices[start : start + SESSION_SIZE]
            async with run.client.online_session(FormCode.FA3) as session:
                sends = [partial(_send_one, run, session, e) for e in chunk]
                sent = await async_run_bounded(sends, SENDS_PER_SESSION)
                waits = [partial(_outcome, h, e) for h, e in sent]
                await async_run_bounded(waits, SENDS_PER_SESSION)


async def _batch(run: Run) -> None:
    named = [(f"FV-B-{n}.xml", e.content) for n, e in enumerate(run.batch)]
    with nip_context(run.batch_nip):
        result = await run.client.send_batch(
            named,
            FormCode.FA3,
            part_size=40_000,
            concurrency=4,
            max_part_reuploads=3,
            max_wait=timedelta(seconds=60),
        )

    assert not result.unknown
    assert not result.unmatched
    by_name = {outcome.name: outcome for outcome in result.outcomes}
    for n, expected in enumerate(run.batch):
        outcome = by_name[f"FV-B-{n}.xml"]
        if outcome.kind is OutcomeKind.ACCEPTED:
            expected.outcome = "KSeF number"
            expected.ksef_number = outcome.ksef_number
        else:
            assert outcome.status is not None
            expected.outcome = f"rejected {outcome.status.code}"


@pytest.fixture
def sim_env() -> Iterator[SimulatorEnv]:
    """A fresh loopback simulator that checks every exchange against the spec."""
    yield from simulator_env(in_process=False)


def _check_against_simulator(run: Run, everything: list[Expected]) -> None:
    """Each document reached the simulator once, with the outcome we recorded."""
    received: dict[bytes, list[tuple[int, str | None]]] = {}
    for record in run.sim_env.sim.received_invoices():
        received.setdefault(record.content or b"", []).append(
            (record.status_code, record.ksef_number)
        )

    for expected in everything:
        copies = received.get(expected.content, [])
        assert len(copies) == 1, f"{expected.nip}: received {len(copies)} times"
        [(code, ksef_number)] = copies
        if expected.outcome == "KSeF number":
            assert (code, ksef_number) == (200, expected.ksef_number)
        else:
            assert expected.outcome == f"rejected {code}"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("mode", MODES)
async def test_nothing_lost_nothing_doubled(
    sim_env: SimulatorEnv, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under every fault at once each invoice ends once: numbered or rejected."""
    online, batch_nip, batch = _plan(sim_env)
    tokens = {nip: sim_env.sim.add_ksef_token(nip) for nip in online}
    tokens[batch_nip] = sim_env.ksef_token
    _inject_faults(sim_env)

    started = time.monotonic()
    async with _client(sim_env, tokens, real_waits=mode == "real-waits") as client:
        run = Run(sim_env, client, online, batch_nip, batch)
        await asyncio.gather(*(_online_nip(run, nip) for nip in online), _batch(run))
    elapsed = time.monotonic() - started

    everything = [e for invoices in online.values() for e in invoices] + batch
    outcomes = Counter(e.outcome for e in everything)
    fired: Counter[str] = Counter()
    for fault in sim_env.sim.faults.rules:
        fired[f"{fault.kind} {fault.route or 'any'}"] += fault.fired
    stats = client.stats
    with capsys.disabled():
        print(
            f"\nfault suite ({mode}): sent {len(everything)} "
            f"(online {sum(map(len, online.values()))}, batch {len(batch)}), "
            f"accepted {outcomes['KSeF number']}, "
            f"rejected {len(everything) - outcomes['KSeF number']} "
            f"{dict((k, v) for k, v in outcomes.items() if k != 'KSeF number')}, "
            f"retried {stats.retries}, reconciled {stats.reconciled} "
            f"(adopted {stats.adopted}, resent {stats.resent}), "
            f"429s seen {stats.rate_limited}, total wait {stats.total_wait:.1f} s, "
            f"elapsed {elapsed:.1f} s\n"
            f"  faults fired: {dict(fired)}\n  chaos: {run.chaos}"
        )

    # Every invoice has exactly one outcome, the one its content calls for.
    assert all(e.outcome is not None for e in everything)
    for expected in everything:
        wanted = "KSeF number" if expected.seller_ok else "rejected 410"
        assert expected.outcome == wanted
    _check_against_simulator(run, everything)

    # Every fault fired, and the client saw and handled each of them.
    assert all(fault.exhausted for fault in sim_env.sim.faults.rules)
    assert len(run.chaos) == 2
    assert stats.rate_limited == sum(
        f.fired for f in sim_env.sim.faults.rules if f.kind == "rate_limit"
    )
    assert stats.adopted >= fired["drop_after send_online_invoice"]
    assert stats.resent >= (
        fired["drop_before send_online_invoice"]
        + fired["server_error send_online_invoice"]
    )
    assert stats.retries > 0
    assert stats.total_wait >= stats.rate_limited
    assert sim_env.sim.request_counts["auth_refresh"] >= 1
    assert sim_env.sim.request_counts["get_public_key_certificates"] >= 2
    assert len({sha256_b64(e.content) for e in everything}) == len(everything)
