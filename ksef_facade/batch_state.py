"""Where a batch upload stands and what became of each invoice: pure decisions.

sesja-wsadowa.md, section 5: every declared part is sent to its own pre-signed URL
from ``partUploadRequests`` with the method and headers given there, and the upload
window is 20 minutes per declared part, counted from opening. :class:`BatchUploadState`
records what a crashed process needs to finish within that window; it serialises to
JSON with :meth:`BatchUploadState.to_dict`. The pre-signed URLs carry their own
access key: they are kept as :class:`~ksef_facade.secrets.Secret` and shown in no
repr, yet ``to_dict`` writes them out, so store the saved state like a password.

:func:`map_outcomes` gives every invoice of the package exactly one
:class:`InvoiceOutcome`, matching what KSeF reports by ``invoiceFileName`` (the
archive entry name) and then by ``invoiceHash``; an invoice KSeF says nothing about
gets an explicit ``UNKNOWN`` outcome with the reason.
"""

from __future__ import annotations

import enum
import logging
import os
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from ksef_api.models import SessionInvoiceStatusResponse
from ksef_facade._batch_manifest import InvoiceEntry
from ksef_facade.errors import KsefApiError, KsefError
from ksef_facade.secrets import Secret
from ksef_facade.statuses import SessionStatus, Status, status_from_model

if TYPE_CHECKING:
    from ksef_api.models import OpenBatchSessionResponse
    from ksef_facade.batch_package import BatchPackage

__all__ = [
    "UPLOAD_TIME_PER_PART",
    "BatchProgress",
    "BatchResult",
    "BatchUploadExpiredError",
    "BatchUploadState",
    "InvoiceOutcome",
    "OutcomeKind",
    "PartUpload",
    "ReportedInvoice",
    "StoredPart",
    "check_upload_settings",
    "initial_state",
    "log_result",
    "map_outcomes",
    "reported_from_model",
    "should_reupload",
    "upload_deadline",
]

# sesja-wsadowa.md, "Limit czasu na przesłanie partów": 20 minutes per declared part.
UPLOAD_TIME_PER_PART = timedelta(minutes=20)

_STATE_VERSION = 1

# The batch workflow's own logger: its outcome lines belong to the batch session.
_batch_log = logging.getLogger("ksef_facade.batch")


class BatchUploadExpiredError(KsefError):
    """The batch session's upload window has closed; its parts cannot be sent."""


def upload_deadline(opened_at: datetime, part_count: int) -> datetime:
    """Return when uploads to a session opened at ``opened_at`` stop being accepted."""
    return opened_at + UPLOAD_TIME_PER_PART * part_count


def should_reupload(status_code: int | None, attempt: int, max_reuploads: int) -> bool:
    """Tell whether a part upload that failed on attempt ``attempt`` goes again.

    ``status_code`` is None when no HTTP answer came. Only transient failures are
    repeated: no answer, 408, 429 and 5xx. sesja-wsadowa.md lists 400 (bad data),
    401 (bad key) and 403 (no write access, e.g. the window closed) as final.
    """
    if attempt > max_reuploads:
        return False
    if status_code is None:
        return True
    return status_code in (408, 429) or 500 <= status_code <= 599


@attrs.frozen
class PartUpload:
    """Where and how one part goes: an entry of KSeF's ``partUploadRequests``."""

    ordinal_number: int
    method: str
    url: Secret = attrs.field(repr=False)
    headers: Mapping[str, str] = attrs.field(repr=False, factory=dict)


@attrs.frozen
class StoredPart:
    """One encrypted part as declared, and the file holding it (None: in memory)."""

    ordinal_number: int
    size: int
    sha256: str
    path: str | None = None


@attrs.frozen
class BatchProgress:
    """How much of a batch upload is done, in parts and encrypted bytes."""

    parts_done: int
    parts_total: int
    bytes_done: int
    bytes_total: int


@attrs.frozen(repr=False)
class BatchUploadState:
    """What is needed to finish a batch upload, possibly in another process.

    Holds no AES key: the parts are encrypted already. ``parts_done`` lists the
    ordinal numbers KSeF has confirmed.
    """

    session_reference_number: str
    nip: str
    opened_at: datetime
    parts: tuple[StoredPart, ...]
    uploads: tuple[PartUpload, ...]
    invoices: Sequence[InvoiceEntry]
    parts_done: frozenset[int] = frozenset()

    def __attrs_post_init__(self) -> None:
        declared = sorted(part.ordinal_number for part in self.parts)
        if declared != list(range(1, len(self.parts) + 1)):
            raise ValueError("batch parts must be numbered 1, 2, ... without gaps.")
        if sorted(upload.ordinal_number for upload in self.uploads) != declared:
            raise ValueError("every batch part needs exactly one upload request.")
        if not self.parts_done <= set(declared):
            raise ValueError("parts_done names a part the package does not have.")

    def __repr__(self) -> str:
        return (
            f"BatchUploadState({self.session_reference_number!r}, nip={self.nip!r}, "
            f"{len(self.parts_done)}/{len(self.parts)} parts done)"
        )

    @property
    def upload_deadline(self) -> datetime:
        """When KSeF stops accepting this session's parts."""
        return upload_deadline(self.opened_at, len(self.parts))

    @property
    def remaining(self) -> tuple[int, ...]:
        """The ordinal numbers of the parts still to upload, in order."""
        return tuple(
            part.ordinal_number
            for part in self.parts
            if part.ordinal_number not in self.parts_done
        )

    @property
    def parts_dir(self) -> str | None:
        """The directory holding the part files, if every part is in a file."""
        paths = [part.path for part in self.parts]
        if not paths or any(path is None for path in paths):
            return None
        parents = {os.path.dirname(str(path)) for path in paths}
        return parents.pop() if len(parents) == 1 else None

    def part(self, ordinal_number: int) -> StoredPart:
        """Return the declared part with this ordinal number."""
        return self.parts[ordinal_number - 1]

    def upload(self, ordinal_number: int) -> PartUpload:
        """Return the upload request of the part with this ordinal number."""
        return next(u for u in self.uploads if u.ordinal_number == ordinal_number)

    def with_part_done(self, ordinal_number: int) -> BatchUploadState:
        """Return the state with one more part confirmed."""
        return attrs.evolve(self, parts_done=self.parts_done | {ordinal_number})

    def progress(self) -> BatchProgress:
        """Return the parts and bytes done so far."""
        done = [p for p in self.parts if p.ordinal_number in self.parts_done]
        return BatchProgress(
            parts_done=len(done),
            parts_total=len(self.parts),
            bytes_done=sum(p.size for p in done),
            bytes_total=sum(p.size for p in self.parts),
        )

    def window_open(self, now: datetime) -> bool:
        """Tell whether parts may still be uploaded at ``now``."""
        return now < self.upload_deadline

    def to_dict(self) -> dict[str, Any]:
        """Return the state as JSON-ready data, pre-signed URLs included."""
        return {
            "version": _STATE_VERSION,
            "sessionReferenceNumber": self.session_reference_number,
            "nip": self.nip,
            "openedAt": self.opened_at.isoformat(),
            "parts": [[p.ordinal_number, p.size, p.sha256, p.path] for p in self.parts],
            "uploads": [
                {
                    "ordinalNumber": u.ordinal_number,
                    "method": u.method,
                    "url": u.url.reveal(),
                    "headers": dict(u.headers),
                }
                for u in self.uploads
            ],
            "partsDone": sorted(self.parts_done),
            "invoices": [
                [i.entry_name, i.original_name, i.size, i.sha256] for i in self.invoices
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchUploadState:
        """Rebuild a state saved with :meth:`to_dict`; ValueError if it is damaged."""
        try:
            return _state_from_dict(data)
        except _UnreadableState as error:
            raise ValueError(
                f"This is not a saved batch upload state: {error}."
            ) from None
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise ValueError(
                f"This is not a saved batch upload state ({type(error).__name__})."
            ) from None


class _UnreadableState(ValueError):
    """A saved state this module cannot read, for a reason safe to show."""


def _state_from_dict(data: Mapping[str, Any]) -> BatchUploadState:
    if data["version"] != _STATE_VERSION:
        raise _UnreadableState(f"its version is not {_STATE_VERSION}")

    opened_at = datetime.fromisoformat(data["openedAt"])
    if opened_at.tzinfo is None:
        raise _UnreadableState("its openedAt has no time zone")
    parts = tuple(
        StoredPart(int(n), int(size), str(digest), None if path is None else str(path))
        for n, size, digest, path in data["parts"]
    )
    uploads = tuple(
        PartUpload(
            ordinal_number=int(u["ordinalNumber"]),
            method=str(u["method"]),
            url=Secret(str(u["url"])),
            headers={str(k): str(v) for k, v in u["headers"].items()},
        )
        for u in data["uploads"]
    )
    invoices = tuple(
        InvoiceEntry(
            ordinal=index,
            entry_name=str(name),
            original_name=None if original is None else str(original),
            size=int(size),
            sha256=str(digest),
        )
        for index, (name, original, size, digest) in enumerate(data["invoices"], 1)
    )
    return BatchUploadState(
        session_reference_number=str(data["sessionReferenceNumber"]),
        nip=str(data["nip"]),
        opened_at=opened_at,
        parts=parts,
        uploads=uploads,
        invoices=invoices,
        parts_done=frozenset(int(n) for n in data["partsDone"]),
    )


class OutcomeKind(enum.Enum):
    """What became of one invoice of a batch."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


@attrs.frozen
class ReportedInvoice:
    """One invoice as KSeF lists it (``SessionInvoiceStatusResponse``)."""

    reference_number: str
    ordinal_number: int
    invoice_hash: str
    status: Status
    file_name: str | None = None
    ksef_number: str | None = None


def _given(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def reported_from_model(model: SessionInvoiceStatusResponse) -> ReportedInvoice:
    """Return a :class:`ReportedInvoice` from the generated model."""
    return ReportedInvoice(
        reference_number=model.reference_number,
        ordinal_number=model.ordinal_number,
        invoice_hash=model.invoice_hash,
        status=status_from_model(model.status),
        file_name=_given(model.invoice_file_name),
        ksef_number=_given(model.ksef_number),
    )


@attrs.frozen
class InvoiceOutcome:
    """What became of one invoice: its KSeF number, its rejection, or why unknown."""

    invoice: InvoiceEntry
    kind: OutcomeKind
    ksef_number: str | None = None
    status: Status | None = None
    reference_number: str | None = None
    reason: str | None = None

    @property
    def name(self) -> str:
        """The name the caller gave the invoice, else its archive file name."""
        return self.invoice.original_name or self.invoice.entry_name


@attrs.frozen
class BatchResult:
    """The end of a batch session: an outcome per invoice and the session UPO."""

    session_reference_number: str
    session_status: SessionStatus
    outcomes: tuple[InvoiceOutcome, ...]
    upo: Mapping[str, bytes] = attrs.field(repr=False, factory=dict)
    unmatched: tuple[ReportedInvoice, ...] = ()

    @property
    def accepted(self) -> tuple[InvoiceOutcome, ...]:
        """The invoices KSeF accepted, each with its KSeF number."""
        return self._of(OutcomeKind.ACCEPTED)

    @property
    def failed(self) -> tuple[InvoiceOutcome, ...]:
        """The invoices KSeF rejected, each with the status code and description."""
        return self._of(OutcomeKind.REJECTED)

    @property
    def unknown(self) -> tuple[InvoiceOutcome, ...]:
        """The invoices KSeF reported no final status for, each with the reason."""
        return self._of(OutcomeKind.UNKNOWN)

    def _of(self, kind: OutcomeKind) -> tuple[InvoiceOutcome, ...]:
        return tuple(outcome for outcome in self.outcomes if outcome.kind is kind)


def map_outcomes(
    invoices: Sequence[InvoiceEntry],
    reported: Iterable[ReportedInvoice],
    session: SessionStatus,
) -> tuple[tuple[InvoiceOutcome, ...], tuple[ReportedInvoice, ...]]:
    """Give each invoice one outcome; also return reports that match no invoice.

    A report is matched by ``invoiceFileName`` to the archive entry name, else by
    ``invoiceHash`` to the first unmatched invoice with that SHA-256.
    """
    by_name = {invoice.entry_name: invoice.ordinal for invoice in invoices}
    by_hash: defaultdict[str, deque[int]] = defaultdict(deque)
    for invoice in invoices:
        by_hash[invoice.sha256].append(invoice.ordinal)

    found: dict[int, ReportedInvoice] = {}
    unmatched: list[ReportedInvoice] = []
    for report in reported:
        ordinal = _match(report, by_name, by_hash, found)
        if ordinal is None:
            unmatched.append(report)
        else:
            found[ordinal] = report

    outcomes = tuple(
        _outcome(invoice, found.get(invoice.ordinal), session) for invoice in invoices
    )
    return outcomes, tuple(unmatched)


def _match(
    report: ReportedInvoice,
    by_name: Mapping[str, int],
    by_hash: Mapping[str, deque[int]],
    found: Mapping[int, ReportedInvoice],
) -> int | None:
    if report.file_name is not None:
        ordinal = by_name.get(report.file_name)
        if ordinal is not None and ordinal not in found:
            return ordinal

    candidates = by_hash.get(report.invoice_hash, deque())
    while candidates:
        ordinal = candidates.popleft()
        if ordinal not in found:
            return ordinal
    return None


def _outcome(
    invoice: InvoiceEntry, report: ReportedInvoice | None, session: SessionStatus
) -> InvoiceOutcome:
    if report is None:
        return InvoiceOutcome(invoice, OutcomeKind.UNKNOWN, reason=_silence(session))

    code = report.status.code
    if code == 200 and report.ksef_number is not None:
        kind = OutcomeKind.ACCEPTED
        reason = None
    elif code >= 400:
        kind = OutcomeKind.REJECTED
        reason = None
    else:
        kind = OutcomeKind.UNKNOWN
        reason = (
            f"KSeF still reported status {code} ({report.status.description}) "
            "when the session finished"
        )
    return InvoiceOutcome(
        invoice,
        kind,
        ksef_number=report.ksef_number if kind is OutcomeKind.ACCEPTED else None,
        status=report.status,
        reference_number=report.reference_number,
        reason=reason,
    )


def _silence(session: SessionStatus) -> str:
    status = session.status
    if status.code >= 400:
        return (
            f"KSeF reported no status for this invoice; the session ended with "
            f"{status.code} ({status.description})"
        )
    return "KSeF reported no status for this invoice in the session's list"


def check_upload_settings(concurrency: int, max_part_reuploads: int) -> None:
    """Refuse an upload concurrency below 1 or a negative re-upload budget."""
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive int, got {concurrency!r}.")
    if not isinstance(max_part_reuploads, int) or max_part_reuploads < 0:
        raise ValueError(
            f"max_part_reuploads must be an int >= 0, got {max_part_reuploads!r}."
        )


def initial_state(
    opened: OpenBatchSessionResponse,
    nip: str,
    opened_at: datetime,
    package: BatchPackage,
) -> BatchUploadState:
    """Build the first state from the open answer; reject a mismatched answer."""
    uploads = tuple(
        PartUpload(
            ordinal_number=request.ordinal_number,
            method=request.method,
            url=Secret(request.url),
            headers={
                name: value
                for name, value in request.headers.additional_properties.items()
                if value is not None
            },
        )
        for request in opened.part_upload_requests
    )
    parts = tuple(
        StoredPart(
            part.ordinal_number,
            part.size,
            part.sha256,
            None if part.path is None else str(part.path),
        )
        for part in package.parts
    )
    try:
        return BatchUploadState(
            session_reference_number=opened.reference_number,
            nip=nip,
            opened_at=opened_at,
            parts=parts,
            uploads=uploads,
            invoices=package.invoices,
        )
    except ValueError:
        raise KsefApiError(
            f"KSeF opened batch session {opened.reference_number} with upload "
            "requests that do not match the declared parts.",
            status_code=201,
            reference_number=opened.reference_number,
        ) from None


def log_result(result: BatchResult) -> None:
    """Log how a batch ended: counts at INFO, unmatched reports at WARNING."""
    _batch_log.info(
        "Batch session %s: %d accepted, %d rejected, %d unknown",
        result.session_reference_number,
        len(result.accepted),
        len(result.failed),
        len(result.unknown),
    )
    for report in result.unmatched:
        _batch_log.warning(
            "Batch session %s: KSeF reported invoice %s that matches none sent",
            result.session_reference_number,
            report.reference_number,
        )
