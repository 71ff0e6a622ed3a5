"""Online (interactive) sessions: open, send invoices, close.

sesja-interaktywna.md: the AES-256 key is wrapped with the SymmetricKeyEncryption key;
a session lives 12 hours; each invoice is sent encrypted with its own and its
ciphertext's hash and size; closing starts the collective UPO.
"""

from __future__ import annotations

from datetime import timedelta

from .calls import Call, Reply
from .errors import ApiError, timestamp
from .fields import b64_field, bool_field, digest_field, int_field, optional_digest
from .processing import (
    MAX_INVOICE_SIZE,
    find_corrected_invoice,
    process_invoice,
)
from .servercrypto import DecryptionError, declared_mismatch
from .sessions_common import (
    WRITE_PERMISSIONS,
    decrypt,
    find_open_session,
    open_session,
    read_encryption,
    read_form_code,
)

__all__ = ["close_online_session", "open_online_session", "send_online_invoice"]


def open_online_session(call: Call) -> Reply:
    """POST /sessions/online: open a session for a form code and AES key."""
    sim = call.sim
    access = call.access(*WRITE_PERMISSIONS)
    body = call.json()
    form_code = read_form_code(body)
    encryption = read_encryption(call, body)

    # sesja-interaktywna.md: an online session is valid for 12 hours.
    valid_until = sim.now() + timedelta(seconds=sim.online_session_ttl)
    session = open_session(
        call, access, "Online", form_code, encryption, valid_until=valid_until
    )
    return Reply(
        201,
        {
            "referenceNumber": session.reference_number,
            "validUntil": timestamp(valid_until),
        },
    )


def send_online_invoice(call: Call) -> Reply:
    """POST /sessions/online/{referenceNumber}/invoices: accept one invoice."""
    sim = call.sim
    access = call.access(*WRITE_PERMISSIONS)
    session = find_open_session(call, access, "Online", "wysyłkę faktur")
    # limity/limity.md: at most 10 000 invoices in a session.
    if len(session.invoices) >= sim.max_invoices_per_session:
        raise ApiError(
            21155,
            f"Sesja o numerze referencyjnym {session.reference_number} osiągnęła "
            f"dozwolony limit liczby faktur {sim.max_invoices_per_session}.",
        )

    body = call.json()
    invoice_hash = digest_field(body, "invoiceHash")
    invoice_size = int_field(body, "invoiceSize", minimum=1)
    encrypted_hash = digest_field(body, "encryptedInvoiceHash")
    encrypted_size = int_field(body, "encryptedInvoiceSize", minimum=1)
    encrypted = b64_field(body, "encryptedInvoiceContent")
    offline = bool_field(body, "offlineMode")
    corrected_hash = optional_digest(body, "hashOfCorrectedInvoice")
    corrects = None
    if corrected_hash is not None:
        corrects = find_corrected_invoice(sim, session, corrected_hash)

    # limity/limity.md: 1 MB per invoice; online sessions take no attachments.
    if invoice_size > MAX_INVOICE_SIZE:
        raise ApiError(21405, f"Rozmiar faktury przekracza {MAX_INVOICE_SIZE} bajtów.")
    mismatch = declared_mismatch(encrypted, encrypted_size, encrypted_hash)
    if mismatch == "size":
        raise ApiError(21402, "Długość treści nie zgadza się z rozmiarem pliku.")
    if mismatch == "hash":
        raise ApiError(21403, "Skrót treści nie zgadza się ze skrótem pliku.")

    content: bytes | None
    try:
        content = decrypt(session, encrypted)
    except DecryptionError:
        content = None

    invoice = process_invoice(
        sim,
        session,
        content,
        declared_hash=invoice_hash,
        declared_size=invoice_size,
        offline=offline,
        corrects=corrects,
    )
    return Reply(202, {"referenceNumber": invoice.reference_number})


def close_online_session(call: Call) -> Reply:
    """POST /sessions/online/{referenceNumber}/close: close and start the UPO."""
    sim = call.sim
    access = call.access(*WRITE_PERMISSIONS)
    session = find_open_session(call, access, "Online", "jej zamknięcie")

    now = sim.now()
    session.closed = now
    session.updated = now
    last_invoice = max((i.ready_at for i in session.invoices), default=now)
    session.ready_at = max(sim.ready_at(), last_invoice)
    return Reply(204)
