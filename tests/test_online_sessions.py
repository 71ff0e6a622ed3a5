"""The online-session workflow against the simulator, in both flavours."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta

import httpx
import pytest
from test_client import RewritingTransport, async_client, fa3_invoice, sync_client

from ksef_facade import InvoiceRejectedError, KsefTimeoutError, Secret, nip_context
from ksef_facade._concurrency import run_bounded
from ksef_facade.crypto import sha256_b64
from ksef_facade.forms import FormCode
from ksef_facade.identifiers import is_valid_ksef_number
from ksef_facade.statuses import Outcome
from ksef_facade.testing.pytest_plugin import SimulatorEnv, simulator_env


@pytest.fixture
def env() -> Iterator[SimulatorEnv]:
    """A fresh in-process simulator with a KSeF token for its NIP."""
    yield from simulator_env(in_process=True)


async def test_async_workflow_numbers_and_session_upo(env: SimulatorEnv) -> None:
    """Invoices sent in an async block get KSeF numbers; the session UPO lists them."""
    async with async_client(env) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                handles = [
                    await session.send(fa3_invoice(env.nip, f"FV/A/{n}"))
                    for n in range(3)
                ]
                numbers = [await handle.result() for handle in handles]

            assert session.closed
            pages = await session.upo()

    assert all(is_valid_ksef_number(number) for number in numbers)
    [upo] = pages.values()
    assert all(number.encode() in upo for number in numbers)


def test_sync_workflow(env: SimulatorEnv) -> None:
    """The blocking session sends, closes on leaving and yields the session UPO."""
    with sync_client(env) as client, nip_context(env.nip):
        with client.online_session(FormCode.FA3) as session:
            handle = session.send(fa3_invoice(env.nip).decode("utf-8"))

        number = handle.result()
        status = session.wait_until_processed()

    assert env.sim.sessions[session.reference_number].closed is not None
    assert status.outcome is Outcome.SUCCEEDED
    assert status.successful_invoice_count == 1
    assert number.startswith(env.nip)


def test_rejected_invoice_raises_with_code(env: SimulatorEnv) -> None:
    """A malformed invoice's result is InvoiceRejectedError with KSeF's code."""
    with (
        sync_client(env) as client,
        nip_context(env.nip),
        client.online_session(FormCode.FA3) as session,
    ):
        handle = session.send(b"<Faktura>not an FA(3) invoice</Faktura>")
        with pytest.raises(InvoiceRejectedError) as raised:
            handle.result()
        failed = list(client.failed_session_invoices(session.reference_number))

    assert raised.value.status_code == 430
    assert raised.value.invoice_reference == handle.reference_number
    assert [f.reference_number for f in failed] == [handle.reference_number]


async def test_wait_returns_rejection_without_raising(env: SimulatorEnv) -> None:
    """handle.wait() reports a rejection as a final status instead of raising."""
    async with async_client(env) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA2) as session:
                handle = await session.send(fa3_invoice(env.nip))
                status = await handle.wait()

    assert status.outcome is Outcome.FAILED
    assert status.ksef_number is None


async def test_session_invoices_follow_continuation(env: SimulatorEnv) -> None:
    """Listing a session's invoices walks every page of the continuation token."""
    async with async_client(env) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                sent = [
                    (
                        await session.send(fa3_invoice(env.nip, f"FV/P/{n}"))
                    ).reference_number
                    for n in range(12)
                ]
            listed = [
                invoice.reference_number
                async for invoice in client.session_invoices(
                    session.reference_number, page_size=10
                )
            ]

    assert sorted(listed) == sorted(sent)
    assert env.sim.request_counts["session_invoices"] == 2


async def test_block_error_still_closes_session(env: SimulatorEnv) -> None:
    """Leaving the block with an exception closes the session and keeps the error."""
    opened = []

    async def send_then_fail() -> None:
        async with client.online_session(FormCode.FA3) as session:
            opened.append(session)
            await session.send(fa3_invoice(env.nip))
            raise LookupError("boom")

    async with async_client(env) as client:
        with nip_context(env.nip), pytest.raises(LookupError, match="boom"):
            await send_then_fail()

    assert opened[0].closed
    assert env.sim.request_counts["close_online_session"] == 1


async def test_symmetric_key_rotation_21470_retried(env: SimulatorEnv) -> None:
    """Opening after an emergency key rotation refreshes the key and retries once."""
    async with async_client(env) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3):
                pass
            env.sim.rotate_keys("SymmetricKeyEncryption", withdraw_old=True)
            async with client.online_session(FormCode.FA3) as session:
                handle = await session.send(fa3_invoice(env.nip))
                number = await handle.result()

    assert is_valid_ksef_number(number)
    assert env.sim.request_counts["open_online_session"] == 3
    assert env.sim.request_counts["get_public_key_certificates"] == 2


async def test_offline_mode_is_declared(env: SimulatorEnv) -> None:
    """offline_mode=True marks the invoice as issued offline."""
    async with async_client(env) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                handle = await session.send(fa3_invoice(env.nip), offline_mode=True)
                status = await handle.wait()

    assert status.invoicing_mode == "Offline"
    [record] = env.sim.sessions[session.reference_number].invoices
    assert record.offline


async def test_send_carries_hashes_and_sizes(env: SimulatorEnv) -> None:
    """The request names the plain and encrypted hashes and sizes."""
    bodies: list[dict[str, object]] = []

    def record(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path.endswith("/invoices") and request.method == "POST":
            bodies.append(json.loads(request.content))
        return response

    invoice = fa3_invoice(env.nip, "FV/H/1")
    transport = RewritingTransport(env.sim.async_transport(), record)
    async with async_client(env, transport=transport) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                await session.send(invoice)

    [body] = bodies
    assert body["invoiceHash"] == sha256_b64(invoice)
    assert body["invoiceSize"] == len(invoice)
    assert body["encryptedInvoiceSize"] == (len(invoice) // 16 + 1) * 16
    assert body["offlineMode"] is False
    assert "hashOfCorrectedInvoice" not in body


async def test_technical_correction_of_rejected_offline_invoice(
    env: SimulatorEnv,
) -> None:
    """A rejected offline invoice is corrected by naming its hash; KSeF accepts it."""
    rejected = b"<Faktura>broken offline invoice</Faktura>"
    async with async_client(env) as client:
        with nip_context(env.nip):
            async with client.online_session(FormCode.FA3) as session:
                first = await session.send(rejected, offline_mode=True)
                assert (await first.wait()).outcome is Outcome.FAILED
                second = await session.send(
                    fa3_invoice(env.nip, "FV/OFF/1"),
                    offline_mode=True,
                    hash_of_corrected_invoice=sha256_b64(rejected),
                )
                number = await second.result()

    assert is_valid_ksef_number(number)


@pytest.mark.parametrize(
    ("offline_mode", "corrected_hash", "message"),
    [(False, sha256_b64(b"x"), "offline_mode"), (True, "abc", "SHA-256")],
    ids=["online", "bad-hash"],
)
def test_malformed_correction_refused(
    env: SimulatorEnv, offline_mode: bool, corrected_hash: str, message: str
) -> None:
    """A correction sent online or with a malformed hash is refused locally."""
    with (
        sync_client(env) as client,
        nip_context(env.nip),
        client.online_session(FormCode.FA3) as session,
        pytest.raises(ValueError, match=message),
    ):
        session.send(
            fa3_invoice(env.nip),
            offline_mode=offline_mode,
            hash_of_corrected_invoice=corrected_hash,
        )

    assert env.sim.request_counts["send_online_invoice"] == 0


async def test_session_keeps_its_nip(env: SimulatorEnv) -> None:
    """A session opened for a NIP keeps working after the context is left."""
    async with async_client(env) as client:
        with nip_context(env.nip):
            session = await client.open_online_session(FormCode.FA3)
        handle = await session.send(fa3_invoice(env.nip))
        number = await handle.result()
        await session.close()

    assert session.nip == env.nip
    assert number.startswith(env.nip)


def test_send_after_close_is_refused(env: SimulatorEnv) -> None:
    """A closed session refuses further invoices without calling KSeF."""
    with sync_client(env) as client, nip_context(env.nip):
        with client.online_session(FormCode.FA3) as session:
            pass
        with pytest.raises(RuntimeError, match="closed"):
            session.send(fa3_invoice(env.nip))

    assert env.sim.request_counts["send_online_invoice"] == 0


def test_invoice_upo_by_handle(env: SimulatorEnv) -> None:
    """An accepted invoice's own UPO names its KSeF number."""
    with (
        sync_client(env) as client,
        nip_context(env.nip),
        client.online_session(FormCode.FA3) as session,
    ):
        handle = session.send(fa3_invoice(env.nip))
        number = handle.result()
        upo = handle.upo()

    assert number.encode() in upo


def test_upo_of_open_session_is_refused(env: SimulatorEnv) -> None:
    """Asking an open session for its UPO fails at once instead of polling."""
    with sync_client(env) as client, nip_context(env.nip):
        session = client.open_online_session(FormCode.FA3)
        with pytest.raises(RuntimeError, match="closed"):
            session.upo()
        session.close()

    assert env.sim.request_counts["session_status"] == 0


async def test_async_workflow_over_loopback() -> None:
    """The asyncio client runs the whole workflow over a real 127.0.0.1 socket."""
    for env in simulator_env(in_process=False):
        async with async_client(env) as client:
            with nip_context(env.nip):
                async with client.online_session(FormCode.FA3) as session:
                    handle = await session.send(fa3_invoice(env.nip, "FV/LOOP/A"))
                    number = await handle.result()
                pages = await session.upo()

        assert env.base_url.startswith("http://127.0.0.1:")
        assert number.encode() in next(iter(pages.values()))


def test_invoice_wait_times_out() -> None:
    """An invoice still processing after max_wait raises KsefTimeoutError.

    The simulator finishes work 0.5 s after it arrives, authentication included.
    """
    for env in simulator_env(in_process=True, processing_delay=0.5):
        with sync_client(env) as client, nip_context(env.nip):
            session = client.open_online_session(FormCode.FA3)
            handle = session.send(fa3_invoice(env.nip))
            with pytest.raises(KsefTimeoutError) as raised:
                handle.result(max_wait=timedelta(milliseconds=50))

        assert raised.value.reference_number == handle.reference_number
        assert env.sim.request_counts["session_invoice_status"] >= 2


def test_threads_for_many_nips_keep_their_contexts(env: SimulatorEnv) -> None:
    """Threads each in their own nip_context send as their own taxpayer."""
    nips = ["5265877635", "5213017228", "3896717236", "1111111111"]
    tokens = {nip: env.sim.add_ksef_token(nip) for nip in nips[1:]}
    tokens[env.nip] = env.ksef_token

    def send_as(nip: str, index: int) -> Callable[[], str]:
        def work() -> str:
            with nip_context(nip), client.online_session(FormCode.FA3) as session:
                return session.send(fa3_invoice(nip, f"FV/{index}")).result()

        return work

    with sync_client(env, ksef_token=lambda nip: Secret(tokens[nip])) as client:
        numbers = run_bounded(
            [send_as(nip, index) for index, nip in enumerate(nips * 2)], limit=8
        )

    assert [number[:10] for number in numbers] == nips * 2
    received = env.sim.received_invoices()
    assert all(invoice.context_nip == invoice.ksef_number[:10] for invoice in received)
    assert env.sim.request_counts["auth_ksef_token"] == len(nips)
