"""The per-invoice record of a batch package, stored compactly.

A package may hold tens of thousands of invoices; keeping an object, a Base64 string
and a generated file name for each would make the builder's memory grow with the
batch. :class:`Manifest` keeps about sixty bytes per invoice and builds
:class:`InvoiceEntry` objects on access.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterator, Sequence
from typing import overload

import attrs

from ksef_facade.crypto import b64

__all__ = ["InvoiceEntry", "Manifest", "generated_name"]

_GENERATED = re.compile(r"invoice-(\d{6,})\.xml")


def generated_name(ordinal: int) -> str:
    """Return the archive file name given to an invoice passed as bare bytes."""
    return f"invoice-{ordinal:06d}.xml"


@attrs.frozen
class InvoiceEntry:
    """One invoice in the package: where it came from and what it hashes to.

    ``sha256`` is the Base64 SHA-256 of the invoice XML as sent, which KSeF reports
    back as ``invoiceHash`` (sesja-wsadowa.md, "Zalecenie"); ``entry_name`` is its
    file name inside the archive (KSeF's ``invoiceFileName``); ``original_name`` is
    the name or path the caller gave, if any.
    """

    ordinal: int
    entry_name: str
    original_name: str | None
    size: int
    sha256: str


class Manifest(Sequence[InvoiceEntry]):
    """The invoices of a package in input order, ordinals starting at 1."""

    def __init__(self) -> None:
        self._names: list[str | None] = []  # None: generated_name(ordinal)
        self._originals: list[str | None] = []
        self._sizes = array("Q")
        self._digests = bytearray()
        self._given: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._sizes)

    @overload
    def __getitem__(self, index: int) -> InvoiceEntry: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[InvoiceEntry]: ...

    def __getitem__(self, index: int | slice) -> InvoiceEntry | Sequence[InvoiceEntry]:
        if isinstance(index, slice):
            return [self._entry(i) for i in range(len(self))[index]]
        return self._entry(range(len(self))[index])

    def __iter__(self) -> Iterator[InvoiceEntry]:
        return (self._entry(i) for i in range(len(self)))

    def __repr__(self) -> str:
        return f"Manifest({len(self)} invoices)"

    def earlier_use(self, name: str, *, generated: bool) -> int | None:
        """Return the ordinal of an earlier invoice with this file name, if any."""
        if name in self._given:
            return self._given[name]
        if generated:
            return None

        # A caller's name may equal a name generated for an earlier bare invoice.
        match = _GENERATED.fullmatch(name)
        if match:
            ordinal = int(match[1])
            earlier = 0 < ordinal <= len(self) and self._names[ordinal - 1] is None
            if earlier and generated_name(ordinal) == name:
                return ordinal
        return None

    def append(
        self, name: str | None, original: str | None, size: int, digest: bytes
    ) -> None:
        """Record the next invoice; ``name`` None means its generated name."""
        if name is not None:
            self._given[name] = len(self) + 1
        self._names.append(name)
        self._originals.append(original)
        self._sizes.append(size)
        self._digests += digest

    def _entry(self, i: int) -> InvoiceEntry:
        name = self._names[i]
        digest = self._digests[32 * i : 32 * i + 32]
        return InvoiceEntry(
            ordinal=i + 1,
            entry_name=generated_name(i + 1) if name is None else name,
            original_name=self._originals[i],
            size=self._sizes[i],
            sha256=b64(digest),
        )
