"""Invoice download by KSeF number and the metadata query.

pobieranie-faktur/pobieranie-faktur.md and the spec: ``GET /invoices/ksef/{ksefNumber}``
returns the invoice exactly as sent; ``POST /invoices/query/metadata`` filters by
subject and date range (at most 3 months), pages with ``pageOffset``/``pageSize``,
reports ``hasMore``, ``isTruncated`` (over 10 000 results) and, for
``PermanentStorage`` dates, ``permanentStorageHwmDate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from .calls import Access, Call, Reply, document_reply
from .errors import ApiError, timestamp
from .fields import bool_field, date_time, object_field, optional, str_field
from .identifiers import KSEF_NUMBER_PATTERN
from .processing import invoice_status
from .state import InvoiceRecord

__all__ = [
    "Selection",
    "date_of",
    "get_invoice",
    "metadata_json",
    "query_invoice_metadata",
    "select_invoices",
]

_SUBJECTS = ("Subject1", "Subject2", "Subject3", "SubjectAuthorized")
_DATE_TYPES = ("Issue", "Invoicing", "PermanentStorage")
_MAX_RANGE = relativedelta(months=3)
_WARSAW = ZoneInfo("Europe/Warsaw")


def _visible(access: Access, invoice: InvoiceRecord) -> bool:
    facts = invoice.metadata or {}
    buyer = facts.get("buyerIdentifier", {})
    return facts.get("sellerNip") == access.nip or (
        buyer.get("type") == "Nip" and buyer.get("value") == access.nip
    )


def get_invoice(call: Call) -> Reply:
    """GET /invoices/ksef/{ksefNumber}: the invoice bytes, byte for byte."""
    access = call.access("InvoiceRead")
    number = call.path_params["ksefNumber"]
    if not KSEF_NUMBER_PATTERN.match(number):
        raise ApiError(21405, "Nieprawidłowy format numeru KSeF.")

    invoice = call.sim.invoices_by_ksef_number.get(number)
    if invoice is None or not _visible(access, invoice):
        raise ApiError(
            21164, f"Faktura o numerze KSeF {number} nie została znaleziona."
        )
    if invoice_status(call.sim, invoice).code != 200 or invoice.content is None:
        raise ApiError(
            21165,
            f"Faktura o numerze KSeF {number} została przetworzona, "
            "ale nie jest jeszcze dostępna do pobrania. Spróbuj ponownie później.",
        )
    return document_reply(invoice.content)


def date_of(invoice: InvoiceRecord, date_type: str) -> datetime:
    """Return the invoice's Issue, Invoicing or PermanentStorage date."""
    facts = invoice.metadata or {}
    if date_type == "Issue":
        return datetime.fromisoformat(str(facts["issueDate"])).replace(
            tzinfo=invoice.received.tzinfo
        )
    if date_type == "Invoicing":
        return invoice.received
    moment = facts["permanentStorageDate"]
    assert isinstance(moment, datetime)
    return moment


def metadata_json(invoice: InvoiceRecord) -> dict[str, Any]:
    """Return the ``InvoiceMetadata`` object of an accepted invoice."""
    facts = invoice.metadata or {}
    seller: dict[str, Any] = {"nip": facts["sellerNip"]}
    if facts.get("sellerName"):
        seller["name"] = facts["sellerName"]
    buyer: dict[str, Any] = {"identifier": dict(facts["buyerIdentifier"])}
    if facts.get("buyerName"):
        buyer["name"] = facts["buyerName"]
    return {
        "ksefNumber": invoice.ksef_number,
        "invoiceNumber": invoice.invoice_number,
        "issueDate": facts["issueDate"],
        "invoicingDate": timestamp(invoice.received),
        "acquisitionDate": timestamp(invoice.ready_at),
        "permanentStorageDate": timestamp(facts["permanentStorageDate"]),
        "seller": seller,
        "buyer": buyer,
        "netAmount": facts["netAmount"],
        "grossAmount": facts["grossAmount"],
        "vatAmount": facts["vatAmount"],
        "currency": facts["currency"],
        "invoicingMode": "Offline" if invoice.offline else "Online",
        "invoiceType": facts["invoiceType"],
        "formCode": dict(facts["formCode"]),
        "isSelfInvoicing": facts["isSelfInvoicing"],
        "hasAttachment": facts["hasAttachment"],
        "invoiceHash": invoice.invoice_hash,
    } | (
        {"hashOfCorrectedInvoice": facts["hashOfCorrectedInvoice"]}
        if facts.get("hashOfCorrectedInvoice")
        else {}
    )


def _subject_matches(access: Access, subject: str, invoice: InvoiceRecord) -> bool:
    facts = invoice.metadata or {}
    buyer = facts.get("buyerIdentifier", {})
    if subject == "Subject1":
        return bool(facts.get("sellerNip") == access.nip)
    if subject == "Subject2":
        return bool(buyer.get("type") == "Nip" and buyer.get("value") == access.nip)
    # TODO: third parties and authorised subjects need Podmiot3/PodmiotUpowazniony.
    return False


def _filters_match(filters: dict[str, Any], invoice: InvoiceRecord) -> bool:
    facts = invoice.metadata or {}
    checks = [
        ("ksefNumber", invoice.ksef_number),
        ("invoiceNumber", invoice.invoice_number),
        ("sellerNip", facts.get("sellerNip")),
        ("invoicingMode", "Offline" if invoice.offline else "Online"),
        ("isSelfInvoicing", facts.get("isSelfInvoicing")),
        ("hasAttachment", facts.get("hasAttachment")),
        ("formType", facts.get("formCode", {}).get("value")),
    ]
    for name, actual in checks:
        if filters.get(name) is not None and filters[name] != actual:
            return False

    if (
        filters.get("currencyCodes")
        and facts.get("currency") not in filters["currencyCodes"]
    ):
        return False
    if (
        filters.get("invoiceTypes")
        and facts.get("invoiceType") not in filters["invoiceTypes"]
    ):
        return False

    buyer = filters.get("buyerIdentifier")
    if isinstance(buyer, dict):
        actual_buyer = facts.get("buyerIdentifier", {})
        if buyer.get("type") != actual_buyer.get("type"):
            return False
        if buyer.get("value") is not None and buyer["value"] != actual_buyer.get(
            "value"
        ):
            return False

    amount = filters.get("amount")
    if isinstance(amount, dict):
        field = {"Brutto": "grossAmount", "Netto": "netAmount", "Vat": "vatAmount"}
        value = facts.get(field.get(str(amount.get("type")), "grossAmount"), 0.0)
        if amount.get("from") is not None and value < amount["from"]:
            return False
        if amount.get("to") is not None and value > amount["to"]:
            return False
    return True


def _query_int(call: Call, name: str, default: int, low: int, high: int | None) -> int:
    raw = call.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(21405, f"Parametr '{name}' musi być liczbą całkowitą.") from exc
    if value < low or (high is not None and value > high):
        raise ApiError(21405, f"Parametr '{name}' jest poza dozwolonym zakresem.")
    return value


def _within_max_range(start: datetime, end: datetime) -> bool:
    # api-changelog.md (2.0.0, 2.0.1): dateRange spans at most 3 months, counted in
    # UTC or in Polish time, whichever allows it.
    return any(
        end.astimezone(zone) <= start.astimezone(zone) + _MAX_RANGE
        for zone in (UTC, _WARSAW)
    )


@dataclass(frozen=True)
class Selection:
    """Invoices matching a filter set, oldest first by the filter's date type."""

    invoices: list[InvoiceRecord]
    date_type: str
    hwm: datetime | None


def select_invoices(call: Call, access: Access, filters: dict[str, Any]) -> Selection:
    """Apply ``InvoiceQueryFilters`` for the caller's context (21405, 21183)."""
    sim = call.sim
    subject = str_field(filters, "subjectType", choices=_SUBJECTS)
    date_range = object_field(filters, "dateRange")
    date_type = str_field(date_range, "dateType", choices=_DATE_TYPES)
    # api-changelog.md (2.1.2): a date without an offset is Europe/Warsaw time.
    start = date_time(date_range.get("from"), "dateRange.from", _WARSAW)
    now = sim.now()
    end = now
    if optional(date_range, "to"):
        end = date_time(date_range["to"], "dateRange.to", _WARSAW)
    if end < start or not _within_max_range(start, end):
        raise ApiError(
            21405, "Zakres dat musi być niepusty i nie dłuższy niż 3 miesiące."
        )

    # pobieranie-faktur/hwm.md: everything stored before now is complete.
    hwm = None
    if date_type == "PermanentStorage":
        hwm = min(end, now)
        if bool_field(date_range, "restrictToPermanentStorageHwmDate"):
            if start > hwm:
                raise ApiError(
                    21183,
                    "Parametr dateRange.from jest późniejszy niż "
                    "PermanentStorageHwmDate "
                    "przy włączonym restrictToPermanentStorageHwmDate.",
                )
            end = hwm

    found = [
        invoice
        for invoice in sim.invoices_by_ksef_number.values()
        if invoice_status(sim, invoice).code == 200
        and _subject_matches(access, subject, invoice)
        and start <= date_of(invoice, date_type) <= end
        and _filters_match(filters, invoice)
    ]
    found.sort(key=lambda i: (date_of(i, date_type), i.ksef_number or ""))
    return Selection(found, date_type, hwm)


def query_invoice_metadata(call: Call) -> Reply:
    """POST /invoices/query/metadata: filtered, sorted, paged invoice metadata."""
    sim = call.sim
    access = call.access("InvoiceRead")
    sort_order = call.query.get("sortOrder", "Asc")
    if sort_order not in ("Asc", "Desc"):
        raise ApiError(21405, "Parametr 'sortOrder' musi mieć wartość Asc lub Desc.")
    offset = _query_int(call, "pageOffset", 0, 0, None)
    size = _query_int(call, "pageSize", 10, 10, 250)

    selection = select_invoices(call, access, call.json())
    found = list(selection.invoices)
    if sort_order == "Desc":
        found.reverse()

    # The spec's technical limit: at most metadata_query_limit records per filter set.
    truncated = len(found) > sim.metadata_query_limit
    found = found[: sim.metadata_query_limit]
    chunk = found[offset : offset + size]
    body: dict[str, Any] = {
        "hasMore": offset + size < len(found) or truncated,
        "isTruncated": truncated and offset + size >= len(found),
        "invoices": [metadata_json(invoice) for invoice in chunk],
    }
    if selection.hwm is not None:
        body["permanentStorageHwmDate"] = timestamp(selection.hwm)
    return Reply(200, body)
