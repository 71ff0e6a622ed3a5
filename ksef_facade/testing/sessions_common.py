"""Pieces shared by online and batch sessions: form codes, keys, records, lookups."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .calls import Access, Call
from .errors import ApiError
from .fields import b64_field, object_field, optional_digest, str_field
from .invoicexml import FORM_CODES, form_code_key
from .keys import unwrap
from .processing import session_status
from .servercrypto import aes_cbc_decrypt
from .state import BatchPackage, SessionRecord, Status

__all__ = [
    "BATCH_WRITE_PERMISSIONS",
    "KEY_ERROR",
    "WRITE_PERMISSIONS",
    "decrypt",
    "find_open_session",
    "find_session",
    "open_session",
    "read_encryption",
    "read_form_code",
]

# spec: "Wymagane jedno z uprawnień" of the online session endpoints; the batch
# endpoints do not list PefInvoiceWrite.
WRITE_PERMISSIONS = ("InvoiceWrite", "PefInvoiceWrite", "EnforcementOperations")
BATCH_WRITE_PERMISSIONS = ("InvoiceWrite", "EnforcementOperations")

# spec: SessionStatusResponse and the export status, code 415.
KEY_ERROR = Status(415, "Błąd odszyfrowania dostarczonego klucza")


def read_form_code(body: dict[str, Any]) -> dict[str, str]:
    """Return the request's ``formCode`` if the simulator supports that schema."""
    form = object_field(body, "formCode")
    code = {
        "systemCode": str_field(form, "systemCode"),
        "schemaVersion": str_field(form, "schemaVersion"),
        "value": str_field(form, "value"),
    }
    if form_code_key(code) not in FORM_CODES:
        raise ApiError(21405, "Wskazany kod formularza nie jest wspierany.")
    return code


def read_encryption(call: Call, body: dict[str, Any]) -> tuple[bytes | None, bytes]:
    """Return the session's AES key (``None`` if it does not decrypt) and IV."""
    encryption = object_field(body, "encryption")
    wrapped = b64_field(encryption, "encryptedSymmetricKey")
    iv = b64_field(encryption, "initializationVector", length=16)
    key_id = optional_digest(encryption, "publicKeyId")
    keys = call.sim.keys.candidates("SymmetricKeyEncryption", key_id)
    aes_key = unwrap(keys, wrapped)
    # spec EncryptionInfo: the wrapped symmetric key is 32 bytes.
    if aes_key is None or len(aes_key) != 32:
        return None, iv
    return aes_key, iv


def _wants_subject_validation(call: Call) -> bool:
    """Tell whether the request enables ``subject-identifier-validation``.

    The spec's session-open endpoints: ``X-KSeF-Feature: subject-identifier-validation``
    turns on the NIP checksum checks that weryfikacja-faktury.md applies in production.
    """
    features = call.headers.get("x-ksef-feature", "")
    return "subject-identifier-validation" in [f.strip() for f in features.split(",")]


def open_session(
    call: Call,
    access: Access,
    kind: str,
    form_code: dict[str, str],
    encryption: tuple[bytes | None, bytes],
    *,
    valid_until: datetime | None = None,
    batch: BatchPackage | None = None,
    offline: bool = False,
) -> SessionRecord:
    """Record a new session; one whose AES key did not decrypt ends at once (415)."""
    sim = call.sim
    now = sim.now()
    aes_key, iv = encryption
    session = SessionRecord(
        reference_number=sim.new_reference("SO" if kind == "Online" else "SB"),
        kind=kind,
        nip=access.nip,
        auth_reference=access.auth_reference,
        form_code=form_code,
        created=now,
        updated=now,
        valid_until=valid_until,
        aes_key=aes_key,
        iv=iv,
        offline=offline,
        batch=batch,
        validate_subjects=_wants_subject_validation(call),
    )
    if aes_key is None:
        session.final_status, session.ready_at = KEY_ERROR, now
    sim.sessions[session.reference_number] = session
    return session


def decrypt(session: SessionRecord, ciphertext: bytes) -> bytes:
    """Decrypt with the session's AES key and IV; raise ``DecryptionError``."""
    return aes_cbc_decrypt(session.aes_key or b"", session.iv or b"", ciphertext)


def find_session(call: Call, access: Access, kind: str | None = None) -> SessionRecord:
    """Return the session named in the path, in the caller's context, or 21173."""
    reference = call.path_params["referenceNumber"]
    session = call.sim.sessions.get(reference)
    if session is None or session.nip != access.nip or kind not in (None, session.kind):
        raise ApiError(
            21173, f"Sesja o numerze referencyjnym {reference} nie została odnaleziona."
        )
    session_status(call.sim, session)
    return session


def find_open_session(
    call: Call, access: Access, kind: str, action: str
) -> SessionRecord:
    """Return the named session if it is still open (100), else raise 21180."""
    session = find_session(call, access, kind)
    code = session_status(call.sim, session).code
    if code != 100:
        raise ApiError(21180, f"Status sesji {code} uniemożliwia {action}.")
    return session
