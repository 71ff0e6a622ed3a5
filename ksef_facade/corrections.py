"""Technical corrections of offline invoices: what KSeF needs to accept one.

offline/korekta-techniczna.md: an offline invoice KSeF rejected may be sent again,
corrected, with ``offlineMode`` set to true and ``hashOfCorrectedInvoice`` holding
the SHA-256 (Base64) of the rejected original; KSeF then links the two.
"""

from __future__ import annotations

import base64

__all__ = ["check_technical_correction"]

_SHA256_SIZE = 32


def check_technical_correction(corrected_hash: str, *, offline_mode: bool) -> None:
    """Refuse a technical correction KSeF would reject for its form."""
    if not offline_mode:
        raise ValueError(
            "A technical correction is sent with offline_mode=True "
            "(offline/korekta-techniczna.md)."
        )
    try:
        digest = base64.b64decode(corrected_hash, validate=True)
    except ValueError:
        digest = b""
    if len(digest) != _SHA256_SIZE:
        raise ValueError(
            "hash_of_corrected_invoice must be a Base64 SHA-256 (44 characters)."
        )
