"""Session and invoice status, session lists, and UPO downloads.

faktury/sesje/sesja-sprawdzenie-stanu-i-pobranie-upo.md: session list and status,
the session's invoices and failed invoices with continuation tokens, one invoice's
status, and UPOs by KSeF number, by invoice reference and per session; every UPO
response carries ``x-ms-meta-hash`` (Base64 SHA-256 of the document).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from .calls import EXPIRED_LINK, Call, Reply, document_reply, text_reply
from .errors import ApiError, timestamp
from .fields import date_time, page_size
from .paging import paged_reply
from .presign import download_link, verify
from .processing import invoice_status, invoice_upo, session_status
from .sessions_common import find_session
from .state import InvoiceRecord, SessionRecord, Status

__all__ = [
    "download_upo",
    "invoice_json",
    "invoice_upo_by_ksef_number",
    "invoice_upo_by_reference",
    "session_failed_invoices",
    "session_invoice_status",
    "session_invoices",
    "session_status_endpoint",
    "session_upo",
    "sessions_list",
]

# spec: "Wymagane jedno z uprawnień" of the status endpoints.
READ_PERMISSIONS = (
    "InvoiceWrite",
    "Introspection",
    "PefInvoiceWrite",
    "EnforcementOperations",
)
# spec GET /sessions: PefInvoiceWrite is not among them.
SESSION_LIST_PERMISSIONS = ("InvoiceWrite", "Introspection", "EnforcementOperations")


def _presigned_upo_url(
    call: Call, session: SessionRecord, kind: str, ref: str
) -> tuple[str, str]:
    payload = {"s": session.reference_number, "k": kind, "r": ref}
    return download_link(call, "upo", payload)


def invoice_json(
    call: Call, session: SessionRecord, invoice: InvoiceRecord
) -> dict[str, Any]:
    """Return the ``SessionInvoiceStatusResponse`` of ``invoice``."""
    status = invoice_status(call.sim, invoice)
    status_json = status.to_json()
    body: dict[str, Any] = {
        "ordinalNumber": invoice.ordinal,
        "referenceNumber": invoice.reference_number,
        "invoiceHash": invoice.invoice_hash,
        "invoicingDate": timestamp(invoice.received),
        "invoicingMode": "Offline" if invoice.offline else "Online",
        "status": status_json,
    }
    if invoice.file_name is not None:
        body["invoiceFileName"] = invoice.file_name
    if status.code >= 200 and invoice.invoice_number is not None:
        body["invoiceNumber"] = invoice.invoice_number
    if status.code == 440 and invoice.extensions:
        status_json["extensions"] = dict(invoice.extensions)
    if status.code == 200 and invoice.ksef_number is not None:
        body["ksefNumber"] = invoice.ksef_number
        body["acquisitionDate"] = timestamp(invoice.ready_at)
        body["permanentStorageDate"] = timestamp(
            invoice.ready_at + timedelta(milliseconds=1)
        )
        url, expires = _presigned_upo_url(call, session, "i", invoice.reference_number)
        body["upoDownloadUrl"] = url
        body["upoDownloadUrlExpirationDate"] = expires
    return body


def _counts(call: Call, session: SessionRecord) -> tuple[int, int, int]:
    codes = [invoice_status(call.sim, i).code for i in session.invoices]
    return len(codes), codes.count(200), sum(1 for c in codes if c >= 400)


def _common_status(code: int) -> str:
    if code in (100, 150, 170):
        return "InProgress"
    if code == 200:
        return "Succeeded"
    if code == 440:
        return "Cancelled"
    return "Failed"


def _summary(
    call: Call, session: SessionRecord, status: Status, total_name: str
) -> dict[str, Any]:
    """Return the status, dates and invoice counts a session status or list shows."""
    total, successful, failed = _counts(call, session)
    body: dict[str, Any] = {
        "status": status.to_json(),
        "dateCreated": timestamp(session.created),
        "dateUpdated": timestamp(session.updated),
        total_name: total,
        "successfulInvoiceCount": successful,
        "failedInvoiceCount": failed,
    }
    if session.valid_until is not None:
        body["validUntil"] = timestamp(session.valid_until)
    return body


def session_status_endpoint(call: Call) -> Reply:
    """GET /sessions/{referenceNumber}: status, counts and UPO pages."""
    access = call.access(*READ_PERMISSIONS)
    session = find_session(call, access)
    status = session_status(call.sim, session)

    # spec: SessionStatusResponse says invoiceCount, SessionsQueryResponseItem
    # totalInvoiceCount.
    body = _summary(call, session, status, "invoiceCount")
    if status.code == 200 and session.upo_pages:
        pages = []
        for upo_page in session.upo_pages:
            url, expires = _presigned_upo_url(
                call, session, "p", upo_page.reference_number
            )
            pages.append(
                {
                    "referenceNumber": upo_page.reference_number,
                    "downloadUrl": url,
                    "downloadUrlExpirationDate": expires,
                }
            )
        body["upo"] = {"pages": pages}
    return Reply(200, body)


def _matches(call: Call, session: SessionRecord, status_code: int) -> bool:
    query = call.query
    if query.get("referenceNumber") not in (None, session.reference_number):
        return False

    ranges = (
        ("dateCreated", session.created),
        ("dateClosed", session.closed),
        ("dateModified", session.updated),
    )
    for name, value in ranges:
        low, high = query.get(f"{name}From"), query.get(f"{name}To")
        if (low or high) and value is None:
            return False
        if low and value is not None and value < date_time(low, f"{name}From"):
            return False
        if high and value is not None and value > date_time(high, f"{name}To"):
            return False

    wanted = query.getlist("statuses")
    return not wanted or _common_status(status_code) in wanted


def sessions_list(call: Call) -> Reply:
    """GET /sessions: the context's sessions of one type, newest first."""
    access = call.access(*SESSION_LIST_PERMISSIONS)
    kind = call.query.get("sessionType")
    if kind not in ("Online", "Batch"):
        raise ApiError(
            21405, "Parametr 'sessionType' jest wymagany (Online lub Batch)."
        )
    for value in call.query.getlist("statuses"):
        if value not in ("InProgress", "Succeeded", "Failed", "Cancelled"):
            raise ApiError(21405, "Parametr 'statuses' zawiera nieznaną wartość.")
    size = page_size(call.query, minimum=10, maximum=1000, default=10)

    found = []
    for session in call.sim.sessions.values():
        if session.nip != access.nip or session.kind != kind:
            continue
        status = session_status(call.sim, session)
        if _matches(call, session, status.code):
            found.append((session, status))
    found.sort(key=lambda pair: pair[0].created, reverse=True)

    def render(pair: tuple[SessionRecord, Status]) -> dict[str, Any]:
        session, status = pair
        summary = _summary(call, session, status, "totalInvoiceCount")
        return {"referenceNumber": session.reference_number} | summary

    return paged_reply(
        call,
        "sessions",
        found,
        render,
        scope=f"sessions:{access.nip}:{kind}",
        size=size,
    )


def _listed(call: Call, session: SessionRecord) -> list[InvoiceRecord]:
    """Return the invoices a listing shows, counting down the lagging ones."""
    shown = []
    for invoice in session.invoices:
        if invoice.hidden_listings > 0:
            invoice.hidden_listings -= 1
            call.sim.faults.note(call.operation, "listing_lag")
        else:
            shown.append(invoice)
    return shown


def _invoice_page(call: Call, failed_only: bool) -> Reply:
    access = call.access(*READ_PERMISSIONS)
    session = find_session(call, access)
    size = page_size(call.query, minimum=10, maximum=1000, default=10)

    chosen = [
        i
        for i in _listed(call, session)
        if not failed_only or invoice_status(call.sim, i).code >= 400
    ]
    return paged_reply(
        call,
        "invoices",
        chosen,
        lambda invoice: invoice_json(call, session, invoice),
        scope=f"invoices:{session.reference_number}:{failed_only}",
        size=size,
    )


def session_invoices(call: Call) -> Reply:
    """GET /sessions/{referenceNumber}/invoices: every invoice with its status."""
    return _invoice_page(call, failed_only=False)


def session_failed_invoices(call: Call) -> Reply:
    """GET /sessions/{referenceNumber}/invoices/failed: rejected invoices only."""
    return _invoice_page(call, failed_only=True)


def _invoice_by_reference(
    session: SessionRecord, reference: str
) -> InvoiceRecord | None:
    return next((i for i in session.invoices if i.reference_number == reference), None)


def _invoice_upo(call: Call, session: SessionRecord, reference: str) -> bytes | None:
    invoice = _invoice_by_reference(session, reference)
    return invoice_upo(call.sim, session, invoice) if invoice else None


def _session_upo_page(session: SessionRecord, reference: str) -> bytes | None:
    found = [p for p in session.upo_pages if p.reference_number == reference]
    return found[0].content if found else None


def session_invoice_status(call: Call) -> Reply:
    """GET /sessions/{referenceNumber}/invoices/{invoiceReferenceNumber}."""
    access = call.access(*READ_PERMISSIONS)
    session = find_session(call, access)
    reference = call.path_params["invoiceReferenceNumber"]
    invoice = _invoice_by_reference(session, reference)
    if invoice is None:
        raise ApiError(
            21405, f"Faktura o numerze referencyjnym {reference} nie istnieje."
        )
    return Reply(200, invoice_json(call, session, invoice))


def invoice_upo_by_ksef_number(call: Call) -> Reply:
    """GET /sessions/{referenceNumber}/invoices/ksef/{ksefNumber}/upo."""
    access = call.access(*READ_PERMISSIONS)
    session = find_session(call, access)
    number = call.path_params["ksefNumber"]
    invoice = next((i for i in session.invoices if i.ksef_number == number), None)
    content = invoice_upo(call.sim, session, invoice) if invoice else None
    if content is None:
        raise ApiError(
            21178,
            f"UPO o numerze KSeF {number} i numerze referencyjnym sesji "
            f"{session.reference_number} nie zostało znalezione.",
        )
    return document_reply(content)


def invoice_upo_by_reference(call: Call) -> Reply:
    """GET /sessions/{referenceNumber}/invoices/{invoiceReferenceNumber}/upo."""
    access = call.access(*READ_PERMISSIONS)
    session = find_session(call, access)
    reference = call.path_params["invoiceReferenceNumber"]
    content = _invoice_upo(call, session, reference)
    if content is None:
        raise ApiError(21178, f"UPO faktury {reference} nie zostało znalezione.")
    return document_reply(content)


def session_upo(call: Call) -> Reply:
    """GET /sessions/{referenceNumber}/upo/{upoReferenceNumber}: a session UPO page."""
    access = call.access(*READ_PERMISSIONS)
    session = find_session(call, access)
    reference = call.path_params["upoReferenceNumber"]
    content = _session_upo_page(session, reference)
    if content is None:
        raise ApiError(
            21178,
            f"UPO o numerze referencyjnym {reference} dla sesji "
            f"{session.reference_number} nie zostało znalezione.",
        )
    return document_reply(content)


def download_upo(call: Call) -> Reply:
    """GET /upo/{token}: a pre-signed UPO link, served without a bearer."""
    payload = verify(call.sim.presign_secret, call.path_params["token"], call.sim.now())
    session = call.sim.sessions.get(str(payload.get("s"))) if payload else None
    if payload is None or session is None:
        return text_reply(*EXPIRED_LINK)

    reference = str(payload.get("r"))
    if payload.get("k") == "i":
        content = _invoice_upo(call, session, reference)
    else:
        content = _session_upo_page(session, reference)
    if content is None:
        return text_reply(404, "UPO nie istnieje.")
    return document_reply(content)
