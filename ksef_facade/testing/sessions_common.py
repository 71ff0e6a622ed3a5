"""Pieces shared by online and batch sessions: form codes, keys, lookups."""

from __future__ import annotations

from typing import Any

from .calls import Access, Call
from .errors import ApiError
from .fields import b64_field, object_field, optional_digest, str_field
from .invoicexml import FORM_CODES
from .processing import session_status
from .servercrypto import DecryptionError, rsa_oaep_decrypt
from .state import SessionRecord

__all__ = [
    "WRITE_PERMISSIONS",
    "find_session",
    "read_encryption",
    "read_form_code",
    "wants_subject_validation",
]

# spec: "Wymagane jedno z uprawnień" of the session endpoints.
WRITE_PERMISSIONS = ("InvoiceWrite", "PefInvoiceWrite", "EnforcementOperations")


def read_form_code(body: dict[str, Any]) -> dict[str, str]:
    """Return the request's ``formCode`` if the simulator supports that schema."""
    form = object_field(body, "formCode")
    code = {
        "systemCode": str_field(form, "systemCode"),
        "schemaVersion": str_field(form, "schemaVersion"),
        "value": str_field(form, "value"),
    }
    if (code["systemCode"], code["schemaVersion"], code["value"]) not in FORM_CODES:
        raise ApiError(21405, "Wskazany kod formularza nie jest wspierany.")
    return code


def read_encryption(call: Call, body: dict[str, Any]) -> tuple[bytes | None, bytes]:
    """Return the session's AES key (``None`` if it does not decrypt) and IV."""
    encryption = object_field(body, "encryption")
    wrapped = b64_field(encryption, "encryptedSymmetricKey")
    iv = b64_field(encryption, "initializationVector", length=16)
    key_id = optional_digest(encryption, "publicKeyId")
    keys = call.sim.keys.candidates("SymmetricKeyEncryption", key_id)
    for key in keys:
        try:
            aes_key = rsa_oaep_decrypt(key.private_key, wrapped)
        except DecryptionError:
            continue
        if len(aes_key) == 32:
            return aes_key, iv
    return None, iv


def wants_subject_validation(call: Call) -> bool:
    """Tell whether the request enables ``subject-identifier-validation``.

    The spec's session-open endpoints: ``X-KSeF-Feature: subject-identifier-validation``
    turns on the NIP checksum checks that weryfikacja-faktury.md applies in production.
    """
    features = call.headers.get("x-ksef-feature", "")
    return "subject-identifier-validation" in [f.strip() for f in features.split(",")]


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
