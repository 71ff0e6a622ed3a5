"""The batch session workflow: open, upload parts in parallel, close, map outcomes.

sesja-wsadowa.md: the session is opened with the package's metadata and the AES key
encrypted with KSeF's SymmetricKeyEncryption key (section 4); each encrypted part
is then sent to its own pre-signed URL with exactly the method and headers KSeF
gave, and without the access token (section 5); closing starts processing, after
which the session reports every invoice and its UPO (section 6). Decisions (what is
left to upload, whether a failed part goes again, which outcome each invoice gets)
live in :mod:`ksef_facade.batch_state`; this module performs the I/O.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from ksef_api.models import (
    BatchFileInfo,
    EncryptionInfo,
    OpenBatchSessionRequest,
    OpenBatchSessionResponse,
)
from ksef_facade import crypto
from ksef_facade._async.api import SESSION_INVOICES_MAX_PAGE, async_pages
from ksef_facade._async.encryption import async_send_with_session_key
from ksef_facade._concurrency import AsyncLock, async_offload, async_run_bounded
from ksef_facade._spool import remove_spooled_parts
from ksef_facade.batch_package import (
    BatchLimits,
    BatchPackage,
    CompressionType,
    InvoiceSource,
    build_batch_package,
)
from ksef_facade.batch_state import (
    BatchProgress,
    BatchResult,
    BatchUploadExpiredError,
    BatchUploadState,
    PartUpload,
    ReportedInvoice,
    check_upload_settings,
    initial_state,
    log_result,
    map_outcomes,
    reported_from_model,
    should_reupload,
)
from ksef_facade.context import current_nip, nip_context
from ksef_facade.errors import KsefApiError, KsefTransportError
from ksef_facade.forms import FormCode, check_batch_form_code
from ksef_facade.secrets import SecretBytes
from ksef_facade.statuses import SESSION_OPEN

if TYPE_CHECKING:
    from ksef_facade._async.client import AsyncKsefClient

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_PART_REUPLOADS",
    "AsyncBatchSession",
    "ProgressCallback",
    "StateCallback",
    "async_resume_batch",
    "async_send_batch",
]

_log = logging.getLogger("ksef_facade.batch")

DEFAULT_CONCURRENCY = 4
DEFAULT_PART_REUPLOADS = 2

ProgressCallback = Callable[[BatchProgress], None]
StateCallback = Callable[[BatchUploadState], None]


class AsyncBatchSession:
    """One batch session: its parts uploaded in parallel, then closed and read.

    Made by :meth:`open` from a built package and its key, or by :meth:`resume`
    from a saved :class:`BatchUploadState`. :attr:`state` always says what is done.
    """

    def __init__(
        self,
        client: AsyncKsefClient,
        state: BatchUploadState,
        *,
        package: BatchPackage | None = None,
    ) -> None:
        self._client = client
        self._state = state
        self._package = package
        self._lock = AsyncLock()
        self.closed = False

    def __repr__(self) -> str:
        done = "closed" if self.closed else "open"
        return f"{type(self).__name__}({self.reference_number!r}, {done})"

    @property
    def state(self) -> BatchUploadState:
        """What is uploaded so far; save ``state.to_dict()`` to resume after a crash."""
        return self._state

    @property
    def reference_number(self) -> str:
        """The session's reference number."""
        return self._state.session_reference_number

    @classmethod
    async def open(
        cls,
        client: AsyncKsefClient,
        package: BatchPackage,
        form_code: FormCode,
        *,
        key: SecretBytes,
        iv: bytes,
        offline_mode: bool = False,
    ) -> AsyncBatchSession:
        """Open a batch session for the current NIP, declaring ``package``.

        ``key`` and ``iv`` must be the ones the package was encrypted with.
        """
        check_batch_form_code(form_code)
        if package.closed:
            raise ValueError("The batch package is closed; its parts are gone.")
        nip = current_nip()

        # sesja-wsadowa.md, section 5: the upload window counts from opening.
        opened_at = client._clock()
        opened = await _open_session(client, package, form_code, key, iv, offline_mode)
        state = initial_state(opened, nip, opened_at, package)

        _log.info(
            "Batch session %s opened (%s, %d parts, %d invoices)",
            state.session_reference_number,
            form_code.system_code,
            len(state.parts),
            len(state.invoices),
        )
        return cls(client, state, package=package)

    @classmethod
    def resume(
        cls, client: AsyncKsefClient, state: BatchUploadState
    ) -> AsyncBatchSession:
        """Continue a session from a saved state; its parts left must be on disk."""
        if not isinstance(state, BatchUploadState):
            raise TypeError("state must be a BatchUploadState (see from_dict).")

        for ordinal in state.remaining:
            part = state.part(ordinal)
            if part.path is None or not os.path.isfile(part.path):
                raise ValueError(
                    f"Part {ordinal} of batch session {state.session_reference_number} "
                    "is not on disk; only packages built with parts_dir can resume."
                )
            if os.path.getsize(part.path) != part.size:
                raise ValueError(
                    f"Part {ordinal} of batch session "
                    f"{state.session_reference_number} has the wrong size on disk."
                )
        return cls(client, state)

    async def upload(
        self,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_part_reuploads: int = DEFAULT_PART_REUPLOADS,
        on_progress: ProgressCallback | None = None,
        on_state: StateCallback | None = None,
    ) -> None:
        """Upload the parts not done yet, at most ``concurrency`` at once.

        A part whose upload failed on a transient error after the transport's own
        retries is sent again, up to ``max_part_reuploads`` times. ``on_state``
        gets the new state and ``on_progress`` the counts after every part; both
        are called one at a time (from worker threads in the blocking form).
        """
        check_upload_settings(concurrency, max_part_reuploads)
        if self.closed:
            raise RuntimeError("The batch session is closed.")
        now = self._client._clock()
        if not self._state.window_open(now):
            raise BatchUploadExpiredError(
                f"The upload window of batch session {self.reference_number} closed "
                f"at {self._state.upload_deadline.isoformat()}."
            )
        if on_progress is not None:
            on_progress(self._state.progress())

        jobs = [
            partial(
                self._upload_part, ordinal, max_part_reuploads, on_progress, on_state
            )
            for ordinal in self._state.remaining
        ]
        with nip_context(self._state.nip):
            await async_run_bounded(jobs, concurrency)

    async def _upload_part(
        self,
        ordinal: int,
        max_reuploads: int,
        on_progress: ProgressCallback | None,
        on_state: StateCallback | None,
    ) -> None:
        upload = self._state.upload(ordinal)
        content = self._part_bytes(ordinal)
        await self._send(upload, content, max_reuploads)
        del content

        async with self._lock:
            self._state = self._state.with_part_done(ordinal)
            state = self._state
            _log.debug(
                "Batch session %s: part %d uploaded (%d of %d)",
                self.reference_number,
                ordinal,
                len(state.parts_done),
                len(state.parts),
            )
            if on_state is not None:
                on_state(state)
            if on_progress is not None:
                on_progress(state.progress())

    async def _send(
        self, upload: PartUpload, content: bytes, max_reuploads: int
    ) -> None:
        attempt = 1
        while True:
            try:
                await self._client.api.upload_batch_part(
                    upload.method, upload.url, upload.headers, content
                )
                return
            except (KsefApiError, KsefTransportError) as error:
                status = error.status_code if isinstance(error, KsefApiError) else None
                if not should_reupload(status, attempt, max_reuploads):
                    raise
                _log.warning(
                    "Batch session %s: part %d re-uploaded after %s "
                    "(re-upload %d of at most %d)",
                    self.reference_number,
                    upload.ordinal_number,
                    f"HTTP {status}" if status is not None else "no answer",
                    attempt,
                    max_reuploads,
                )
                attempt += 1

    def _part_bytes(self, ordinal: int) -> bytes:
        """Return one part's encrypted bytes (whole, so a retry can resend them)."""
        if self._package is not None:
            return self._package.parts[ordinal - 1].read()
        path = self._state.part(ordinal).path
        assert path is not None  # resume() checked every remaining part
        return Path(path).read_bytes()

    async def close(self) -> None:
        """Close the session once every part is up; KSeF then processes it."""
        if self.closed:
            return
        if self._state.remaining:
            missing = ", ".join(str(n) for n in self._state.remaining)
            raise RuntimeError(
                f"Parts {missing} of batch session {self.reference_number} are not "
                "uploaded yet; call upload() first."
            )

        with nip_context(self._state.nip):
            await self._client.api.close_batch_session(self.reference_number)
        self._mark_closed()

    def _mark_closed(self) -> None:
        self.closed = True
        _log.info("Batch session %s closed", self.reference_number)
        self.discard_parts()

    async def is_open(self) -> bool:
        """Ask KSeF whether the session still takes parts (status 100)."""
        with nip_context(self._state.nip):
            status = await self._client.session_status(self.reference_number)
        return status.status.code == SESSION_OPEN

    def discard_parts(self) -> None:
        """Remove the part files; the session can no longer be resumed."""
        if self._package is not None:
            self._package.close()
            return
        paths = [part.path for part in self._state.parts if part.path is not None]
        remove_spooled_parts(paths, self._state.parts_dir)

    async def result(
        self, *, interval: timedelta | None = None, max_wait: timedelta | None = None
    ) -> BatchResult:
        """Wait for processing; return every invoice's outcome and the session UPO."""
        if not self.closed:
            raise RuntimeError("A batch session has results only once it is closed.")

        reference = self.reference_number
        with nip_context(self._state.nip):
            status = await self._client.wait_for_session(
                reference, interval=interval, max_wait=max_wait
            )
            reported = await self._reported_invoices()
            upo = {
                page: await self._client.session_upo(reference, page)
                for page in status.upo_reference_numbers
            }

        outcomes, unmatched = map_outcomes(self._state.invoices, reported, status)
        result = BatchResult(reference, status, outcomes, upo, unmatched)
        log_result(result)
        return result

    async def _reported_invoices(self) -> list[ReportedInvoice]:
        fetch = partial(
            self._client.api.list_session_invoices,
            self.reference_number,
            page_size=SESSION_INVOICES_MAX_PAGE,
        )
        return [
            reported_from_model(model)
            async for page in async_pages(fetch)
            for model in page.invoices
        ]


async def _open_session(
    client: AsyncKsefClient,
    package: BatchPackage,
    form_code: FormCode,
    key: SecretBytes,
    iv: bytes,
    offline_mode: bool,
) -> OpenBatchSessionResponse:
    """Send the open request declaring ``package`` (new keys on a 21470, once)."""

    def body(encryption: EncryptionInfo) -> OpenBatchSessionRequest:
        return OpenBatchSessionRequest(
            form_code=form_code.to_model(),
            batch_file=BatchFileInfo.from_dict(package.to_open_request_fields()),
            encryption=encryption,
            offline_mode=offline_mode,
        )

    return await async_send_with_session_key(
        client.encryption,
        key,
        iv,
        lambda encryption: client.api.open_batch_session(body(encryption)),
    )


async def async_send_batch(
    client: AsyncKsefClient,
    invoices: Iterable[InvoiceSource],
    form_code: FormCode,
    *,
    compression_type: CompressionType = CompressionType.ZIP,
    part_size: int | None = None,
    limits: BatchLimits | None = None,
    check_xml: bool = True,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_part_reuploads: int = DEFAULT_PART_REUPLOADS,
    on_progress: ProgressCallback | None = None,
    on_state: StateCallback | None = None,
    parts_dir: str | os.PathLike[str] | None = None,
    temp_dir: str | os.PathLike[str] | None = None,
    memory_threshold: int | None = None,
    offline_mode: bool = False,
    interval: timedelta | None = None,
    max_wait: timedelta | None = None,
) -> BatchResult:
    """Build, open, upload, close and wait: see ``AsyncKsefClient.send_batch``."""
    check_batch_form_code(form_code)
    check_upload_settings(concurrency, max_part_reuploads)
    current_nip()  # no work at all without a taxpayer

    key = SecretBytes(crypto.random_aes_key())
    iv = crypto.random_iv()
    build = partial(
        build_batch_package,
        invoices,
        key=key.reveal(),
        iv=iv,
        compression_type=compression_type,
        part_size=part_size,
        limits=limits,
        temp_dir=temp_dir,
        parts_dir=parts_dir,
        memory_threshold=memory_threshold,
        check_xml=check_xml,
    )
    package = await async_offload(build)

    session: AsyncBatchSession | None = None
    try:
        session = await AsyncBatchSession.open(
            client, package, form_code, key=key, iv=iv, offline_mode=offline_mode
        )
        if on_state is not None:
            on_state(session.state)
        await _upload_and_close(
            session, concurrency, max_part_reuploads, on_progress, on_state
        )
    except BaseException:
        if parts_dir is None or session is None:
            package.close()
        else:
            _log.info("Batch parts kept in %s for a resume", package.parts_dir)
        raise

    return await session.result(interval=interval, max_wait=max_wait)


async def _upload_and_close(
    session: AsyncBatchSession,
    concurrency: int,
    max_part_reuploads: int,
    on_progress: ProgressCallback | None,
    on_state: StateCallback | None,
) -> None:
    """Upload the parts still missing, then close the session."""
    await session.upload(
        concurrency=concurrency,
        max_part_reuploads=max_part_reuploads,
        on_progress=on_progress,
        on_state=on_state,
    )
    await session.close()


async def async_resume_batch(
    client: AsyncKsefClient,
    state: BatchUploadState,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_part_reuploads: int = DEFAULT_PART_REUPLOADS,
    on_progress: ProgressCallback | None = None,
    on_state: StateCallback | None = None,
    interval: timedelta | None = None,
    max_wait: timedelta | None = None,
) -> BatchResult:
    """Finish a saved batch upload: see ``AsyncKsefClient.resume_batch``."""
    check_upload_settings(concurrency, max_part_reuploads)
    session = AsyncBatchSession.resume(client, state)

    if await session.is_open():
        await _upload_and_close(
            session, concurrency, max_part_reuploads, on_progress, on_state
        )
    else:
        # Closed before the crash: KSeF has every part; only the results remain.
        session._mark_closed()
    return await session.result(interval=interval, max_wait=max_wait)
