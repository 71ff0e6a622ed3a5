"""Documents downloaded from KSeF (UPO pages, invoices) with their announced hash.

KSeF sends the SHA-256 (Base64) of a downloaded document in ``x-ms-meta-hash``
(api-changelog.md, "Pobranie faktury/UPO").
"""

from __future__ import annotations

__all__ = ["Download"]


class Download:
    """A downloaded XML document with the SHA-256 KSeF announced for it."""

    __slots__ = ("announced_hash", "content")

    def __init__(self, content: bytes, announced_hash: str | None) -> None:
        self.content = content
        self.announced_hash = announced_hash

    def __repr__(self) -> str:
        return f"Download({len(self.content)} bytes, hash={self.announced_hash!r})"
