"""Processing received invoices and sessions, and the statuses that result.

Work is decided when it arrives and revealed ``processing_delay`` seconds later:
until then invoices report 150 and closed sessions 170 (online) or 150 (batch).
Status codes and descriptions are the spec's (SessionInvoiceStatusResponse.status,
SessionStatusResponse.status); checks follow faktury/weryfikacja-faktury.md.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .errors import ApiError
from .identifiers import is_valid_nip, ksef_number
from .invoicexml import InvoiceFacts, InvoiceXmlError, form_code_key, read_invoice
from .servercrypto import sha256_b64
from .state import InvoiceRecord, SessionRecord, Status, UpoPage
from .upo import MAX_DOCUMENTS_PER_PAGE, UpoContext, build_upo

if TYPE_CHECKING:
    from .simulator import Simulator

__all__ = [
    "INVOICE_IN_PROGRESS",
    "MAX_INVOICE_SIZE",
    "MAX_INVOICE_WITH_ATTACHMENT_SIZE",
    "find_corrected_invoice",
    "invoice_status",
    "invoice_upo",
    "process_invoice",
    "session_status",
    "upo_context",
]

# weryfikacja-faktury.md, limity/limity.md: 1 MB without attachments, 3 MB with.
MAX_INVOICE_SIZE = 1_000_000
MAX_INVOICE_WITH_ATTACHMENT_SIZE = 3_000_000

INVOICE_IN_PROGRESS = Status(150, "Trwa przetwarzanie")
_SUCCESS = Status(200, "Sukces")
_FILE_ERROR = "Błąd weryfikacji pliku faktury"


def process_invoice(
    sim: Simulator,
    session: SessionRecord,
    content: bytes | None,
    *,
    declared_hash: str | None,
    declared_size: int | None,
    offline: bool,
    file_name: str | None = None,
    corrects: InvoiceRecord | None = None,
) -> InvoiceRecord:
    """Record an invoice in ``session`` and decide its outcome.

    ``content`` is ``None`` when the invoice could not be decrypted.
    """
    received = sim.now()
    invoice = InvoiceRecord(
        ordinal=len(session.invoices) + 1,
        reference_number=sim.new_reference("EE"),
        session_reference=session.reference_number,
        context_nip=session.nip,
        received=received,
        ready_at=sim.ready_at(),
        invoice_hash=declared_hash or (sha256_b64(content) if content else ""),
        outcome=_SUCCESS,
        content=content,
        file_name=file_name,
        offline=offline,
        hash_of_corrected=corrects.invoice_hash if corrects else None,
        hidden_listings=sim.faults.claim_listing_lag(),
    )
    session.invoices.append(invoice)
    session.updated = received
    invoice.outcome = _decide(sim, session, invoice, declared_hash, declared_size)
    if corrects is not None and invoice.outcome.code == 200:
        corrects.corrected_by = invoice.ksef_number
    return invoice


def _decide(
    sim: Simulator,
    session: SessionRecord,
    invoice: InvoiceRecord,
    declared_hash: str | None,
    declared_size: int | None,
) -> Status:
    content = invoice.content
    if content is None:
        return Status(435, "Błąd odszyfrowania pliku")

    # weryfikacja-faktury.md: the invoice's own hash and size must match the metadata.
    actual_hash = sha256_b64(content)
    invoice.invoice_hash = actual_hash
    if declared_size is not None and declared_size != len(content):
        return Status(
            430, _FILE_ERROR, ("Rozmiar faktury nie zgadza się z invoiceSize.",)
        )
    if declared_hash is not None and declared_hash != actual_hash:
        return Status(
            430, _FILE_ERROR, ("Skrót faktury nie zgadza się z invoiceHash.",)
        )

    try:
        facts = read_invoice(content, form_code_key(session.form_code))
    except InvoiceXmlError as exc:
        return Status(430, _FILE_ERROR, (str(exc),))

    limit = (
        MAX_INVOICE_WITH_ATTACHMENT_SIZE if facts.has_attachment else MAX_INVOICE_SIZE
    )
    correction = invoice.hash_of_corrected is not None
    if facts.has_attachment and session.kind == "Online" and not correction:
        # weryfikacja-faktury.md: attachments only in batch sessions, except in
        # technical corrections of offline invoices.
        return Status(415, "Brak możliwości wysyłania faktury z załącznikiem")
    if len(content) > limit:
        return Status(
            430, _FILE_ERROR, (f"Rozmiar faktury przekracza {limit} bajtów.",)
        )

    invoice.invoice_number = facts.invoice_number
    if facts.seller_nip != session.nip:
        return Status(
            410,
            "Nieprawidłowy zakres uprawnień",
            (f"Brak uprawnień do wystawienia faktury w imieniu {facts.seller_nip}.",),
        )
    if session.validate_subjects:
        nips = [facts.seller_nip]
        if facts.buyer_type == "Nip" and facts.buyer_value:
            nips.append(facts.buyer_value)
        wrong = [nip for nip in nips if not is_valid_nip(nip)]
        if wrong:
            return Status(
                450,
                "Błąd weryfikacji semantyki dokumentu faktury",
                (f"Nieprawidłowa suma kontrolna NIP: {', '.join(wrong)}.",),
            )
    # weryfikacja-faktury.md: P_1 may not be later than the day KSeF receives it.
    if facts.issue_date > invoice.received.date():
        return Status(
            450,
            "Błąd weryfikacji semantyki dokumentu faktury",
            ("Data wystawienia faktury (P_1) jest późniejsza niż data jej przyjęcia.",),
        )

    # weryfikacja-faktury.md: a duplicate is the same seller NIP, kind and P_2.
    key = (facts.seller_nip, facts.invoice_type, facts.invoice_number)
    original = sim.accepted_invoice_keys.get(key)
    if original is not None:
        invoice.extensions = {
            "originalSessionReferenceNumber": original.session_reference,
            "originalKsefNumber": original.ksef_number or "",
        }
        return Status(
            440,
            "Duplikat faktury",
            (
                f"Duplikat faktury. Faktura o numerze KSeF: {original.ksef_number} "
                "została już prawidłowo przesłana do systemu w sesji: "
                f"{original.session_reference}",
            ),
        )

    invoice.ksef_number = ksef_number(facts.seller_nip, invoice.received, sim.rng)
    invoice.metadata = _metadata(session, invoice, facts)
    sim.accepted_invoice_keys[key] = invoice
    sim.invoices_by_ksef_number[invoice.ksef_number] = invoice
    return _SUCCESS


def _metadata(
    session: SessionRecord, invoice: InvoiceRecord, facts: InvoiceFacts
) -> dict[str, Any]:
    buyer: dict[str, Any] = {"type": facts.buyer_type}
    if facts.buyer_value is not None:
        buyer["value"] = facts.buyer_value
    return {
        "sellerNip": facts.seller_nip,
        "sellerName": facts.seller_name,
        "buyerIdentifier": buyer,
        "buyerName": facts.buyer_name,
        "issueDate": facts.issue_date.isoformat(),
        "invoiceType": facts.invoice_type,
        "currency": facts.currency,
        "netAmount": facts.net,
        "vatAmount": facts.vat,
        "grossAmount": facts.gross,
        "hasAttachment": facts.has_attachment,
        "isSelfInvoicing": facts.is_self_invoicing,
        "formCode": dict(session.form_code),
        "permanentStorageDate": invoice.ready_at + timedelta(milliseconds=1),
        "hashOfCorrectedInvoice": invoice.hash_of_corrected,
    }


def find_corrected_invoice(
    sim: Simulator, session: SessionRecord, corrected_hash: str
) -> InvoiceRecord:
    """Return the rejected offline invoice a technical correction names.

    offline/korekta-techniczna.md: only a rejected invoice can be corrected, and
    only once; the spec's codes are 21167 and 21166.
    """
    candidates = [
        invoice
        for other in sim.sessions.values()
        if other.nip == session.nip
        for invoice in other.invoices
        if invoice.invoice_hash == corrected_hash
    ]
    if any(i.corrected_by for i in candidates):
        raise ApiError(
            21166, "Faktura posiada już przetworzoną prawidłowo korektę techniczną."
        )
    rejected = [i for i in candidates if invoice_status(sim, i).code >= 400]
    if not rejected:
        raise ApiError(
            21167,
            "Nie można wysłać korekty technicznej do prawidłowo przetworzonej "
            "lub nieznanej faktury.",
        )
    return rejected[-1]


def invoice_status(sim: Simulator, invoice: InvoiceRecord) -> Status:
    """Return the invoice's status as a client sees it now."""
    if sim.now() < invoice.ready_at:
        return INVOICE_IN_PROGRESS
    return invoice.outcome


def upo_context(sim: Simulator, session: SessionRecord) -> UpoContext:
    """Return the session facts a UPO repeats."""
    operation = sim.auth_operations.get(session.auth_reference)
    return UpoContext(
        session_reference=session.reference_number,
        context_nip=session.nip,
        token_reference=operation.token_reference if operation else None,
        system_code=session.form_code["systemCode"],
        schema_version=session.form_code["schemaVersion"],
    )


def invoice_upo(
    sim: Simulator, session: SessionRecord, invoice: InvoiceRecord
) -> bytes | None:
    """Return the UPO of one accepted invoice, or ``None`` before it is accepted."""
    if invoice_status(sim, invoice).code != 200:
        return None
    if invoice.upo is None:
        invoice.upo = build_upo(upo_context(sim, session), [invoice])
    return invoice.upo


def _close_expired(sim: Simulator, session: SessionRecord) -> None:
    # sesja-interaktywna.md: an online session closes itself when validUntil passes.
    if (
        session.closed is None
        and session.valid_until
        and sim.now() >= session.valid_until
    ):
        session.closed = session.valid_until
        session.ready_at = session.valid_until + timedelta(seconds=sim.processing_delay)


def _finish(sim: Simulator, session: SessionRecord) -> Status:
    accepted = [i for i in session.invoices if i.outcome.code == 200]
    if not session.invoices:
        return Status(440, "Sesja anulowana", ("Nie przesłano faktur",))
    if not accepted:
        return Status(445, "Błąd weryfikacji, brak poprawnych faktur")

    context = upo_context(sim, session)
    total = len(accepted)
    pages = (total + MAX_DOCUMENTS_PER_PAGE - 1) // MAX_DOCUMENTS_PER_PAGE
    for number in range(pages):
        start = number * MAX_DOCUMENTS_PER_PAGE
        chunk = accepted[start : start + MAX_DOCUMENTS_PER_PAGE]
        meta = (number + 1, pages, start + 1, start + len(chunk), total)
        content = build_upo(context, chunk, meta)
        session.upo_pages.append(UpoPage(sim.new_reference("EU"), content))

    kind = "interaktywna" if session.kind == "Online" else "wsadowa"
    return Status(200, f"Sesja {kind} przetworzona pomyślnie")


def session_status(sim: Simulator, session: SessionRecord) -> Status:
    """Return the session's status as a client sees it now, finishing it when due."""
    _close_expired(sim, session)
    ready = session.ready_at is not None and sim.now() >= session.ready_at
    if session.final_status is not None and ready:
        return session.final_status

    if session.closed is None:
        if session.kind == "Online":
            return Status(100, "Sesja interaktywna otwarta")
        return Status(100, "Sesja wsadowa rozpoczęta")
    if not ready:
        if session.kind == "Online":
            return Status(170, "Sesja interaktywna zamknięta")
        return Status(150, "Trwa przetwarzanie")

    session.final_status = _finish(sim, session)
    session.updated = session.ready_at or session.updated
    return session.final_status
