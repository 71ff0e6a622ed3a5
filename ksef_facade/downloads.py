"""Documents downloaded from KSeF (UPO pages, invoices) and their hash check.

KSeF sends the SHA-256 (Base64) of a downloaded document in ``x-ms-meta-hash``
(api-changelog.md, "Pobranie faktury/UPO").
"""

from __future__ import annotations

import logging

from ksef_facade.crypto import sha256_b64
from ksef_facade.errors import HashMismatchError, UpoHashMismatchError

__all__ = ["Download", "verified", "verified_upo"]

# The warning belongs to the client call that downloaded the UPO.
_client_log = logging.getLogger("ksef_facade.client")


class Download:
    """A downloaded XML document with the SHA-256 KSeF announced for it."""

    __slots__ = ("announced_hash", "content")

    def __init__(self, content: bytes, announced_hash: str | None) -> None:
        self.content = content
        self.announced_hash = announced_hash

    def __repr__(self) -> str:
        return f"Download({len(self.content)} bytes, hash={self.announced_hash!r})"


def verified(
    download: Download,
    reference: str,
    mismatch: type[HashMismatchError] = HashMismatchError,
) -> bytes:
    """Return the content unless it differs from the announced hash; then raise.

    ``mismatch`` is the error raised, naming ``reference``. Without an announced
    hash there is nothing to compare and the content is returned as it is.
    """
    if download.announced_hash is None:
        return download.content

    actual = sha256_b64(download.content)
    if actual != download.announced_hash:
        raise mismatch(
            expected=download.announced_hash, actual=actual, reference_number=reference
        )
    return download.content


def verified_upo(download: Download, reference: str) -> bytes:
    """Return the UPO bytes if they match ``x-ms-meta-hash``; raise otherwise."""
    if download.announced_hash is None:
        _client_log.warning(
            "UPO %s came without x-ms-meta-hash; not verified", reference
        )
    return verified(download, reference, UpoHashMismatchError)
