"""Batch sessions against the simulator (loopback and in-process, both flavours).

Also the pure decisions of :mod:`ksef_facade.batch_state`.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from test_client import async_client, fa3_invoice, sync_client

from ksef_facade import ServerError, crypto, nip_context
from ksef_facade._batch_manifest import InvoiceEntry
from ksef_facade.batch_package import (
    BatchLimits,
    BatchPackageError,
    CompressionType,
    DuplicateInvoiceNameError,
    InvalidInvoiceXmlError,
    TooManyInvoicesError,
    TooManyPartsError,
    build_batch_package,
)
from ksef_facade.batch_state import (
    BatchProgress,
    BatchUploadExpiredError,
    BatchUploadState,
    OutcomeKind,
    ReportedInvoice,
    map_outcomes,
    should_reupload,
)
from ksef_facade.context import peek_nip
from ksef_facade.forms import FormCode
from ksef_facade.identifiers import is_valid_ksef_number
from ksef_facade.retry import RetryPolicy
from ksef_facade.secrets import SecretBytes
from ksef_facade.statuses import SessionStatus, Status
from ksef_facade.testing.pytest_plugin import SimulatorEnv, simulator_env

# Small parts, so that a handful of invoices (about 2 kB each) needs several.
SMALL_PART = 300
SEND_ONCE = RetryPolicy(max_attempts=1).without_waits()


@pytest.fixture(params=["in-process", "loopback"])
def env(request: pytest.FixtureRequest) -> Iterator[SimulatorEnv]:
    """A fresh simulator, in-process and over a 127.0.0.1 socket."""
    yield from simulator_env(in_process=request.param == "in-process")


@pytest.fixture
def local_env() -> Iterator[SimulatorEnv]:
    """A fresh in-process simulator."""
    yield from simulator_env(in_process=True)


def named_invoices(nip: str, count: int) -> list[tuple[str, bytes]]:
    """``count`` FA(3) invoices for ``nip`` named ``fv-<n>.xml``."""
    return [(f"fv-{n}.xml", fa3_invoice(nip, f"FV/B/{n}")) for n in range(count)]


def leftovers(directory: Path) -> list[Path]:
    """The files and directories left in ``directory``."""
    return list(directory.iterdir())


class UploadRecorder(httpx.AsyncBaseTransport):
    """Passes requests through and keeps the headers of part uploads."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.upload_headers: list[httpx.Headers] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/upload/"):
            self.upload_headers.append(request.headers)
        return await self._inner.handle_async_request(request)


# -- sending ---------------------------------------------------------------------------


async def test_one_part_batch_async(env: SimulatorEnv) -> None:
    """A small batch goes in one part; every invoice gets a KSeF number in the UPO."""
    async with async_client(env) as client:
        with nip_context(env.nip):
            result = await client.send_batch(named_invoices(env.nip, 3), FormCode.FA3)

    assert env.sim.request_counts["upload_part"] == 1
    assert [o.kind for o in result.outcomes] == [OutcomeKind.ACCEPTED] * 3
    assert all(is_valid_ksef_number(o.ksef_number or "") for o in result.outcomes)
    [upo] = result.upo.values()
    assert all((o.ksef_number or "").encode() in upo for o in result.outcomes)


@pytest.mark.parametrize("compression", list(CompressionType))
def test_several_parts_sync(env: SimulatorEnv, compression: CompressionType) -> None:
    """With a small part size the package goes in several parts, ZIP or TarGz."""
    with sync_client(env) as client, nip_context(env.nip):
        result = client.send_batch(
            named_invoices(env.nip, 5),
            FormCode.FA3,
            compression_type=compression,
            part_size=SMALL_PART,
        )

    record = env.sim.sessions[result.session_reference_number]
    assert record.batch is not None
    assert record.batch.compression == compression.value
    assert env.sim.request_counts["upload_part"] == len(record.batch.parts) > 2
    assert [o.name for o in result.accepted] == [f"fv-{n}.xml" for n in range(5)]


async def test_parts_go_without_bearer_with_given_headers(
    local_env: SimulatorEnv,
) -> None:
    """Part uploads carry KSeF's headers and no Authorization header."""
    recorder = UploadRecorder(local_env.sim.async_transport())
    async with async_client(local_env, transport=recorder) as client:
        with nip_context(local_env.nip):
            await client.send_batch(
                named_invoices(local_env.nip, 3), FormCode.FA3, part_size=SMALL_PART
            )

    assert len(recorder.upload_headers) > 1
    for headers in recorder.upload_headers:
        assert "authorization" not in headers
        assert headers["x-ms-blob-type"] == "BlockBlob"


def test_progress_reports_parts_and_bytes(local_env: SimulatorEnv) -> None:
    """Progress starts at zero and ends with every part and byte done."""
    seen: list[BatchProgress] = []
    with sync_client(local_env) as client, nip_context(local_env.nip):
        client.send_batch(
            named_invoices(local_env.nip, 4),
            FormCode.FA3,
            part_size=SMALL_PART,
            concurrency=1,
            on_progress=seen.append,
        )

    assert seen[0].parts_done == 0
    assert [p.parts_done for p in seen] == list(range(seen[0].parts_total + 1))
    assert seen[-1].bytes_done == seen[-1].bytes_total > 0


# -- failures and retries --------------------------------------------------------------


def test_symmetric_key_rotation_21470_retried(local_env: SimulatorEnv) -> None:
    """Opening a batch after an emergency key rotation refetches the keys, once."""
    with sync_client(local_env) as client, nip_context(local_env.nip):
        client.send_batch(named_invoices(local_env.nip, 1), FormCode.FA3)
        local_env.sim.rotate_keys("SymmetricKeyEncryption", withdraw_old=True)
        fresh = [
            (f"k-{n}.xml", fa3_invoice(local_env.nip, f"FV/K/{n}")) for n in (1, 2)
        ]
        result = client.send_batch(fresh, FormCode.FA3)

    assert [o.kind for o in result.outcomes] == [OutcomeKind.ACCEPTED] * 2
    assert local_env.sim.request_counts["open_batch_session"] == 3
    assert local_env.sim.request_counts["get_public_key_certificates"] == 2


def test_part_failing_once_is_retried(env: SimulatorEnv) -> None:
    """A part answered 503 once is sent again and the batch succeeds."""
    fault = env.sim.faults.fail_part_uploads(1)
    with sync_client(env) as client, nip_context(env.nip):
        result = client.send_batch(
            named_invoices(env.nip, 3), FormCode.FA3, part_size=SMALL_PART
        )

    assert fault.fired == 1
    assert len(result.accepted) == 3


async def test_part_reuploaded_after_transport_gives_up(
    local_env: SimulatorEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """When the transport gives up on a part, the session re-uploads it, warning."""
    fault = local_env.sim.faults.fail_part_uploads(1)
    async with async_client(local_env, retry_policy=SEND_ONCE) as client:
        with nip_context(local_env.nip), caplog.at_level(logging.WARNING):
            result = await client.send_batch(
                named_invoices(local_env.nip, 2), FormCode.FA3
            )

    assert fault.fired == 1
    assert len(result.accepted) == 2
    assert any("re-uploaded" in r.getMessage() for r in caplog.records)


def test_part_reuploads_are_bounded(local_env: SimulatorEnv) -> None:
    """A part that keeps failing is re-uploaded a bounded number of times."""
    fault = local_env.sim.faults.fail_part_uploads(None)
    with (
        sync_client(local_env, retry_policy=SEND_ONCE) as client,
        nip_context(local_env.nip),
        pytest.raises(ServerError),
    ):
        client.send_batch(
            named_invoices(local_env.nip, 1), FormCode.FA3, max_part_reuploads=2
        )

    assert fault.fired == 3


@pytest.mark.parametrize(
    ("status", "attempt", "again"),
    [
        (None, 1, True),
        (503, 2, True),
        (429, 1, True),
        (408, 1, True),
        (503, 3, False),
        (400, 1, False),
        (401, 1, False),
        (403, 1, False),
    ],
)
def test_should_reupload(status: int | None, attempt: int, again: bool) -> None:
    """Only transient failures go again, and at most max_reuploads times."""
    assert should_reupload(status, attempt, 2) is again


# -- crash and resume ------------------------------------------------------------------


class Crash(Exception):
    """Stands for the process dying in the middle of an upload."""


def _crash_after(parts: int) -> Callable[[BatchProgress], None]:
    def on_progress(progress: BatchProgress) -> None:
        if progress.parts_done == parts:
            raise Crash

    return on_progress


def test_crash_then_resume_sync(env: SimulatorEnv, tmp_path: Path) -> None:
    """After a crash mid-upload, a new client finishes from the saved state."""
    saved: list[str] = []
    invoices = named_invoices(env.nip, 5)
    with (
        sync_client(env) as client,
        nip_context(env.nip),
        pytest.raises(Crash),
    ):
        client.send_batch(
            invoices,
            FormCode.FA3,
            part_size=SMALL_PART,
            concurrency=1,
            parts_dir=tmp_path,
            on_state=lambda state: saved.append(json.dumps(state.to_dict())),
            on_progress=_crash_after(2),
        )
    state = BatchUploadState.from_dict(json.loads(saved[-1]))
    total = len(state.parts)

    with sync_client(env) as fresh:
        result = fresh.resume_batch(state)

    assert 2 <= len(state.parts_done) < total
    assert env.sim.request_counts["upload_part"] == total
    assert [o.name for o in result.accepted] == [name for name, _ in invoices]
    assert leftovers(tmp_path) == []


async def test_crash_then_resume_async(local_env: SimulatorEnv, tmp_path: Path) -> None:
    """The asyncio form resumes too, and with the NIP taken from the state."""
    saved: list[BatchUploadState] = []
    async with async_client(local_env) as client:
        with nip_context(local_env.nip), pytest.raises(Crash):
            await client.send_batch(
                named_invoices(local_env.nip, 4),
                FormCode.FA3,
                part_size=SMALL_PART,
                concurrency=1,
                parts_dir=tmp_path,
                on_state=saved.append,
                on_progress=_crash_after(1),
            )

    async with async_client(local_env) as fresh:
        result = await fresh.resume_batch(saved[-1])

    assert len(result.accepted) == 4
    assert leftovers(tmp_path) == []


def test_resume_after_window_closed_refused(
    local_env: SimulatorEnv, tmp_path: Path
) -> None:
    """A state whose upload window has passed is refused before any upload."""
    saved: list[BatchUploadState] = []
    with sync_client(local_env) as client, nip_context(local_env.nip):
        with pytest.raises(Crash):
            client.send_batch(
                named_invoices(local_env.nip, 3),
                FormCode.FA3,
                part_size=SMALL_PART,
                concurrency=1,
                parts_dir=tmp_path,
                on_state=saved.append,
                on_progress=_crash_after(1),
            )
        uploads = local_env.sim.request_counts["upload_part"]
        stale = json.loads(json.dumps(saved[-1].to_dict()))
        stale["openedAt"] = (datetime.now(UTC) - timedelta(days=1)).isoformat()

        with pytest.raises(BatchUploadExpiredError):
            client.resume_batch(BatchUploadState.from_dict(stale))

    assert local_env.sim.request_counts["upload_part"] == uploads


def test_resume_needs_parts_on_disk(local_env: SimulatorEnv) -> None:
    """Without parts_dir the parts vanish with the crash, so resume says so."""
    saved: list[BatchUploadState] = []
    with sync_client(local_env) as client, nip_context(local_env.nip):
        with pytest.raises(Crash):
            client.send_batch(
                named_invoices(local_env.nip, 3),
                FormCode.FA3,
                part_size=SMALL_PART,
                concurrency=1,
                on_state=saved.append,
                on_progress=_crash_after(1),
            )

        with pytest.raises(ValueError, match="parts_dir"):
            client.resume_batch(saved[-1])


# -- outcomes --------------------------------------------------------------------------


def test_rejected_invoice_reported_by_name(env: SimulatorEnv) -> None:
    """An invoice KSeF rejects comes back with its own name and KSeF's code."""
    invoices = [*named_invoices(env.nip, 2), ("broken.xml", b"<Faktura>x</Faktura>")]
    with sync_client(env) as client, nip_context(env.nip):
        result = client.send_batch(invoices, FormCode.FA3)

    [failed] = result.failed
    assert failed.name == "broken.xml"
    assert failed.status is not None
    assert failed.status.code == 430
    assert [o.name for o in result.accepted] == ["fv-0.xml", "fv-1.xml"]


async def test_bare_invoices_named_by_position(local_env: SimulatorEnv) -> None:
    """Invoices passed as bytes are named by their generated archive names."""
    async with async_client(local_env) as client:
        with nip_context(local_env.nip):
            result = await client.send_batch(
                [fa3_invoice(local_env.nip, "FV/1"), b"<Faktura>x</Faktura>"],
                FormCode.FA3,
            )

    assert [o.name for o in result.accepted] == ["invoice-000001.xml"]
    assert [o.name for o in result.failed] == ["invoice-000002.xml"]


# -- bad input -------------------------------------------------------------------------

BAD_BATCHES: dict[str, tuple[list[Any], dict[str, Any]]] = {
    "too many invoices": ([b"<a/>"] * 3, {"limits": BatchLimits(max_invoices=2)}),
    "malformed XML": ([("x.xml", b"<a><b></a>")], {}),
    "empty invoice": ([("x.xml", b"")], {}),
    "duplicate names": ([("x.xml", b"<a/>"), ("x.xml", b"<b/>")], {}),
    "too many parts": (
        [(f"{n}.xml", bytes(4000)) for n in range(3)],
        {"limits": BatchLimits(max_parts=2), "part_size": 100, "check_xml": False},
    ),
}
EXPECTED = {
    "too many invoices": TooManyInvoicesError,
    "malformed XML": InvalidInvoiceXmlError,
    "empty invoice": InvalidInvoiceXmlError,
    "duplicate names": DuplicateInvoiceNameError,
    "too many parts": TooManyPartsError,
}


@pytest.mark.parametrize("case", sorted(BAD_BATCHES))
def test_bad_input_rejected_before_open(
    local_env: SimulatorEnv, case: str, tmp_path: Path
) -> None:
    """Limits and bad invoices raise before a session is opened; nothing stays."""
    invoices, options = BAD_BATCHES[case]
    with (
        sync_client(local_env) as client,
        nip_context(local_env.nip),
        pytest.raises(BatchPackageError) as raised,
    ):
        client.send_batch(invoices, FormCode.FA3, temp_dir=tmp_path, **options)

    assert isinstance(raised.value, EXPECTED[case])
    assert local_env.sim.request_counts.get("open_batch_session", 0) == 0
    assert leftovers(tmp_path) == []


def test_bad_settings_rejected_before_any_request(local_env: SimulatorEnv) -> None:
    """A concurrency below 1 is a ValueError before anything is sent."""
    with (
        sync_client(local_env) as client,
        nip_context(local_env.nip),
        pytest.raises(ValueError, match="concurrency"),
    ):
        client.send_batch([b"<a/>"], FormCode.FA3, concurrency=0)

    assert sum(local_env.sim.request_counts.values()) == 0


# -- resources and context -------------------------------------------------------------


def test_temporary_files_removed_after_success(
    local_env: SimulatorEnv, tmp_path: Path
) -> None:
    """Parts spooled to temporary files are deleted once the session is closed."""
    spooled: list[bool] = []
    with sync_client(local_env) as client, nip_context(local_env.nip):
        client.send_batch(
            named_invoices(local_env.nip, 3),
            FormCode.FA3,
            part_size=SMALL_PART,
            temp_dir=tmp_path,
            memory_threshold=0,
            on_progress=lambda _: spooled.append(any(tmp_path.iterdir())),
        )

    assert all(spooled)
    assert leftovers(tmp_path) == []


def test_temporary_files_removed_after_failure(
    local_env: SimulatorEnv, tmp_path: Path
) -> None:
    """A failed upload without parts_dir leaves no temporary files behind."""
    local_env.sim.faults.fail_part_uploads(None)
    with (
        sync_client(local_env, retry_policy=SEND_ONCE) as client,
        nip_context(local_env.nip),
        pytest.raises(ServerError),
    ):
        client.send_batch(
            named_invoices(local_env.nip, 3),
            FormCode.FA3,
            part_size=SMALL_PART,
            temp_dir=tmp_path,
            memory_threshold=0,
            max_part_reuploads=0,
        )

    assert leftovers(tmp_path) == []


def test_nip_context_reaches_worker_threads(local_env: SimulatorEnv) -> None:
    """Blocking uploads run on worker threads that see the caller's NIP."""
    seen: list[tuple[int, str]] = []
    with sync_client(local_env) as client, nip_context(local_env.nip):
        client.send_batch(
            named_invoices(local_env.nip, 4),
            FormCode.FA3,
            part_size=SMALL_PART,
            concurrency=3,
            on_progress=lambda p: seen.append((threading.get_ident(), peek_nip())),
        )

    workers = seen[1:]  # the first report comes from the caller, before uploading
    assert workers
    assert all(nip == local_env.nip for _, nip in workers)
    assert threading.get_ident() not in {ident for ident, _ in workers}


# -- the saved state -------------------------------------------------------------------


def test_state_round_trips_and_hides_urls(local_env: SimulatorEnv) -> None:
    """The state survives JSON; its repr shows no pre-signed URL."""
    saved: list[BatchUploadState] = []
    with sync_client(local_env) as client, nip_context(local_env.nip):
        client.send_batch(
            named_invoices(local_env.nip, 2), FormCode.FA3, on_state=saved.append
        )

    state = saved[-1]
    url = state.uploads[0].url.reveal()
    restored = BatchUploadState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored.to_dict() == state.to_dict()
    assert "sig=" in url
    assert url not in repr(state)
    assert url not in repr(state.uploads) + str(state)


def test_damaged_state_is_a_value_error() -> None:
    """A saved state with a missing field raises ValueError naming no secret."""
    with pytest.raises(ValueError, match="not a saved batch upload state"):
        BatchUploadState.from_dict({"version": 1})


def test_state_of_another_version_says_so() -> None:
    """A saved state of another format version is refused with that reason."""
    with pytest.raises(ValueError, match="its version is not 1"):
        BatchUploadState.from_dict({"version": 2})


# -- outcome mapping (pure) ------------------------------------------------------------


def _entry(ordinal: int, name: str, digest: str) -> InvoiceEntry:
    return InvoiceEntry(ordinal, name, name, 10, digest)


def _report(name: str | None, digest: str, code: int) -> ReportedInvoice:
    number = "5265877635-20260110-0123456789AB-CD" if code == 200 else None
    return ReportedInvoice("ref-" + digest, 1, digest, Status(code, "x"), name, number)


PROCESSED = SessionStatus("s", Status(200, "ok"))


def test_every_invoice_gets_one_outcome_even_unreported() -> None:
    """An invoice KSeF does not list gets an UNKNOWN outcome with a reason."""
    invoices = [_entry(1, "a.xml", "h1"), _entry(2, "b.xml", "h2")]
    outcomes, unmatched = map_outcomes(
        invoices, [_report("a.xml", "h1", 200)], PROCESSED
    )

    assert [o.kind for o in outcomes] == [OutcomeKind.ACCEPTED, OutcomeKind.UNKNOWN]
    assert outcomes[1].reason is not None
    assert unmatched == ()


def test_reports_without_file_name_match_by_hash() -> None:
    """Without invoiceFileName, reports match invoices by hash, one each."""
    invoices = [_entry(1, "a.xml", "same"), _entry(2, "b.xml", "same")]
    reports = [_report(None, "same", 200), _report(None, "same", 450)]

    outcomes, _ = map_outcomes(invoices, reports, PROCESSED)

    assert [o.kind for o in outcomes] == [OutcomeKind.ACCEPTED, OutcomeKind.REJECTED]


def test_still_processing_is_unknown_and_failed_session_explained() -> None:
    """A pending report is UNKNOWN; a silent failed session names its code."""
    invoices = [_entry(1, "a.xml", "h1"), _entry(2, "b.xml", "h2")]
    failed = SessionStatus("s", Status(405, "bad package"))

    outcomes, _ = map_outcomes(invoices, [_report("a.xml", "h1", 150)], failed)

    assert [o.kind for o in outcomes] == [OutcomeKind.UNKNOWN] * 2
    assert "150" in (outcomes[0].reason or "")
    assert "405" in (outcomes[1].reason or "")


def test_stray_report_is_returned_as_unmatched() -> None:
    """A report matching no invoice is kept aside, not forced onto one."""
    invoices = [_entry(1, "a.xml", "h1")]
    stray = _report("z.xml", "zz", 200)

    outcomes, unmatched = map_outcomes(
        invoices, [_report("a.xml", "h1", 200), stray], PROCESSED
    )

    assert len(outcomes) == 1
    assert unmatched == (stray,)


def test_presigned_urls_stay_out_of_logs_and_errors(
    local_env: SimulatorEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """No facade log line or error message carries a part URL's signature."""
    saved: list[BatchUploadState] = []
    local_env.sim.faults.fail_part_uploads(None, after=1)
    with (
        sync_client(local_env, retry_policy=SEND_ONCE) as client,
        nip_context(local_env.nip),
        caplog.at_level(logging.DEBUG, logger="ksef_facade"),
        pytest.raises(ServerError) as raised,
    ):
        client.send_batch(
            named_invoices(local_env.nip, 3),
            FormCode.FA3,
            part_size=SMALL_PART,
            concurrency=1,
            on_state=saved.append,
        )

    signatures = [u.url.reveal().split("sig=")[1] for u in saved[-1].uploads]
    facade_lines = [
        r.getMessage() for r in caplog.records if r.name.startswith("ksef_facade")
    ]
    assert any("re-uploaded" in line for line in facade_lines)
    for signature in signatures:
        assert all(signature not in line for line in facade_lines)
        assert signature not in str(raised.value)


def test_resume_after_close_only_collects_results(
    local_env: SimulatorEnv, tmp_path: Path
) -> None:
    """Resuming a session closed before the crash only collects its results."""
    key, iv = crypto.random_aes_key(), crypto.random_iv()
    package = build_batch_package(
        named_invoices(local_env.nip, 3), key=key, iv=iv, parts_dir=tmp_path
    )
    with sync_client(local_env) as client, nip_context(local_env.nip):
        session = client.open_batch_session(
            package, FormCode.FA3, key=SecretBytes(key), iv=iv
        )
        session.upload()
        state = session.state
        client.api.close_batch_session(session.reference_number)

    with sync_client(local_env) as fresh:
        result = fresh.resume_batch(state)

    assert local_env.sim.request_counts["close_batch_session"] == 1
    assert len(result.accepted) == 3
    assert leftovers(tmp_path) == []


def test_demo_batch_prints_bar_and_outcomes(local_env: SimulatorEnv) -> None:
    """The demo's batch step draws a progress bar and prints every invoice's fate."""
    demo = _load_demo()
    out, bar = io.StringIO(), io.StringIO()
    with sync_client(local_env) as client, nip_context(local_env.nip):
        demo.send_batch(client, local_env.nip, "3896717236", 4, out, bar)

    lines = bar.getvalue().splitlines()
    assert lines[0].startswith("[---")
    assert lines[-1].endswith(" parts")
    assert re.fullmatch(r"\[#+\] (\d+)/\1 parts", lines[-1])
    assert (
        len(re.findall(r"Batch invoice demo-\d\.xml: accepted as", out.getvalue())) == 4
    )


def _load_demo() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "scripts" / "demo.py"
    spec = importlib.util.spec_from_file_location("ksef_demo_batch", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pef_batch_refused_before_any_request(env: SimulatorEnv) -> None:
    """send_batch with an online-only form code fails before KSeF is asked."""
    with sync_client(env) as client, nip_context(env.nip):
        with pytest.raises(ValueError, match="online sessions only"):
            client.send_batch(named_invoices(env.nip, 1), FormCode.PEF3)

        assert client.stats.attempts == 0
