"""Build the encrypted package of a batch session in one streaming pass.

A batch session sends one ZIP (or TarGz) of invoices, cut into parts of at most
100,000,000 bytes before encryption; each part is encrypted on its own with
AES-256-CBC/PKCS#7 under the session key and IV. The open request declares the size
and SHA-256 of the whole package before encryption and the size and SHA-256 of every
encrypted part (sesja-wsadowa.md, sections 1-4; ``BatchFileInfo`` and
``BatchFilePartInfo`` in the OpenAPI spec).

:func:`build_batch_package` reads the invoices once, checks every documented limit
while it goes and streams the archive through the part writer, so memory stays flat
whatever the number of invoices. ZIP entries are deflated in the calling thread (a
few kB each: handing them to a thread costs more than it overlaps); the single
TarGz stream is compressed on a worker thread in large chunks. Parts live
in memory when small and in a private temporary directory otherwise; the result
removes them on :meth:`BatchPackage.close`.
"""

from __future__ import annotations

import codecs
import enum
import hashlib
import logging
import os
import pyexpat
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self

import attrs

from ksef_facade._batch_archive import (
    ArchiveEncoder,
    ArchiveEntry,
    TarGzEncoder,
    ZipEncoder,
)
from ksef_facade._batch_manifest import InvoiceEntry, Manifest, generated_name
from ksef_facade._spool import EncryptedPart, PartWriter, Source, SpoolDirectory
from ksef_facade.errors import KsefError

__all__ = [
    "BatchLimits",
    "BatchPackage",
    "BatchPackageError",
    "CompressionType",
    "DuplicateInvoiceNameError",
    "EmptyBatchError",
    "EncryptedPart",
    "InvalidInvoiceXmlError",
    "InvoiceEntry",
    "InvoiceSource",
    "InvoiceTooLargeError",
    "PackageTooLargeError",
    "TooManyInvoicesError",
    "TooManyPartsError",
    "UnsafeInvoiceNameError",
    "build_batch_package",
]

logger = logging.getLogger("ksef_facade.batch_package")

InvoiceSource = (
    bytes | bytearray | memoryview | str | os.PathLike[str] | tuple[str, bytes]
)
"""An invoice: its XML bytes, a path to its file, or a ``(name, xml_bytes)`` pair."""

# At most this many batches are in flight: enough to keep a worker busy, little
# enough to keep memory flat (see ArchiveEncoder.batch_bytes for their size).
_MAX_PENDING = 2

_Check = Callable[[int, Source | None], None]

_DEFAULT_MEMORY_THRESHOLD = 4 * 1024 * 1024
_MAX_NAME_BYTES = 100  # the ustar name field; also keeps ZIP names readable
_ATTACHMENT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?Zalacznik[\s/>]")


class CompressionType(enum.StrEnum):
    """The package format, as the spec's ``CompressionType`` names it."""

    ZIP = "Zip"
    TAR_GZ = "TarGz"


@attrs.frozen
class BatchLimits:
    """The documented limits a batch package must respect.

    Defaults: limity/limity.md (context limits) and faktury/weryfikacja-faktury.md
    ("Rozmiar pliku", "Ograniczenia ilościowe"). KSeF can raise a context's limits on
    request; pass the values ``GET /limits/context`` reports.
    """

    max_invoices: int = 10_000
    max_invoice_size: int = 1_000_000
    max_invoice_with_attachment_size: int = 3_000_000
    max_parts: int = 50
    max_part_size: int = 100_000_000
    max_package_size: int = 5_000_000_000


@attrs.frozen(eq=False)
class BatchPackage:
    """A built batch package: its metadata, encrypted parts and invoice manifest.

    Parts may live in temporary files: use the package as a context manager or call
    :meth:`close` once the parts are uploaded.
    """

    compression_type: CompressionType
    file_size: int
    file_hash: str
    parts: tuple[EncryptedPart, ...]
    invoices: Sequence[InvoiceEntry] = attrs.field(repr=False)
    _spool: SpoolDirectory = attrs.field(repr=False, alias="spool")

    def __repr__(self) -> str:
        return (
            f"BatchPackage({self.compression_type.value}, {len(self.invoices)} "
            f"invoices, {self.file_size} bytes, {len(self.parts)} parts)"
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Tell whether the spooled parts have been removed."""
        return self._spool.closed

    @property
    def parts_dir(self) -> Path | None:
        """The directory of the spooled part files, if any part was spooled."""
        return self._spool.created

    def close(self) -> None:
        """Remove the spooled parts; safe to call more than once."""
        self._spool.close()

    def to_open_request_fields(self) -> dict[str, object]:
        """Return the ``batchFile`` object of the batch open request, in API names."""
        return {
            "fileSize": self.file_size,
            "fileHash": self.file_hash,
            "compressionType": self.compression_type.value,
            "fileParts": [
                {
                    "ordinalNumber": part.ordinal_number,
                    "fileSize": part.size,
                    "fileHash": part.sha256,
                }
                for part in self.parts
            ],
        }

    def invoices_by_entry_name(self) -> dict[str, InvoiceEntry]:
        """Map archive file names (KSeF's ``invoiceFileName``) to invoices."""
        return {invoice.entry_name: invoice for invoice in self.invoices}


class BatchPackageError(KsefError, ValueError):
    """A batch package breaks a documented limit or holds a bad invoice.

    ``invoice_index`` (1-based position in the input) and ``invoice_name`` name the
    offending invoice when there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        invoice_index: int | None = None,
        invoice_name: str | None = None,
    ) -> None:
        super().__init__(message)
        self.invoice_index = invoice_index
        self.invoice_name = invoice_name


class TooManyInvoicesError(BatchPackageError):
    """More invoices than a session may carry."""


class InvoiceTooLargeError(BatchPackageError):
    """An invoice over the size limit."""


class InvalidInvoiceXmlError(BatchPackageError):
    """An invoice that is empty or not well-formed UTF-8 XML as KSeF accepts it."""


class UnsafeInvoiceNameError(BatchPackageError):
    """An invoice name that cannot be a plain archive file name."""


class DuplicateInvoiceNameError(BatchPackageError):
    """Two invoices with the same archive file name."""


class TooManyPartsError(BatchPackageError):
    """A package that needs more parts than a session may declare."""


class PackageTooLargeError(BatchPackageError):
    """A package over the total size limit."""


class EmptyBatchError(BatchPackageError):
    """A batch without invoices."""


def build_batch_package(
    invoices: Iterable[InvoiceSource],
    *,
    key: bytes,
    iv: bytes,
    compression_type: CompressionType = CompressionType.ZIP,
    compression_level: int = 6,
    part_size: int | None = None,
    limits: BatchLimits | None = None,
    memory_threshold: int | None = None,
    temp_dir: str | os.PathLike[str] | None = None,
    parts_dir: str | os.PathLike[str] | None = None,
    check_xml: bool = True,
) -> BatchPackage:
    """Build and encrypt a batch package from invoices, reading each once.

    ``part_size`` (default: the limit, 100,000,000) caps the plaintext of a part;
    parts whose ciphertext exceeds ``memory_threshold`` bytes (default 4 MiB) are
    spooled to a private directory under ``temp_dir``. With ``parts_dir`` every
    part goes to a file in a new directory under it that stays until
    :meth:`BatchPackage.close`, even if the process dies, so an interrupted upload
    can be resumed from a saved :class:`~ksef_facade.batch_state.BatchUploadState`.
    ``check_xml=False`` skips the well-formedness check (about a quarter of the
    build time) for invoices already validated, e.g. against the XSD. Raises a
    :class:`BatchPackageError` subclass naming the invoice when a limit is broken;
    nothing is left on disk when building fails.
    """
    limits = limits or BatchLimits()
    part_size = limits.max_part_size if part_size is None else part_size
    _check_settings(part_size, limits, compression_level)

    if parts_dir is not None:
        spool = SpoolDirectory(parts_dir, keep=True)
        memory_threshold = 0
    else:
        spool = SpoolDirectory(temp_dir)
    if memory_threshold is None:
        memory_threshold = _DEFAULT_MEMORY_THRESHOLD
    writer = PartWriter(
        key,
        iv,
        part_size=part_size,
        max_size=limits.max_package_size,
        memory_threshold=memory_threshold,
        spool=spool,
        check_part=_part_check(limits),
        check_size=_size_check(limits),
    )
    encoder: ArchiveEncoder = (
        ZipEncoder(compression_level)
        if compression_type is CompressionType.ZIP
        else TarGzEncoder(compression_level)
    )

    try:
        manifest = _stream(
            invoices,
            _InvoiceChecker(
                limits, check_xml=check_xml, batch_bytes=encoder.batch_bytes
            ),
            encoder,
            writer,
        )
        encoder.finish(writer)
        file_size, file_hash, parts = writer.finish()
    except BaseException:
        writer.abort()
        spool.close()
        raise

    logger.debug(
        "batch package built: %d invoices, %d bytes, %d parts",
        len(manifest),
        file_size,
        len(parts),
    )
    return BatchPackage(
        compression_type=CompressionType(compression_type),
        file_size=file_size,
        file_hash=file_hash,
        parts=parts,
        invoices=manifest,
        spool=spool,
    )


def _check_settings(part_size: int, limits: BatchLimits, level: int) -> None:
    if not 1 <= part_size <= limits.max_part_size:
        raise ValueError(
            f"part_size must be between 1 and {limits.max_part_size}, got {part_size}"
        )
    if not 0 <= level <= 9:
        raise ValueError(f"compression_level must be between 0 and 9, got {level}")


def _stream(
    invoices: Iterable[InvoiceSource],
    checker: _InvoiceChecker,
    encoder: ArchiveEncoder,
    writer: PartWriter,
) -> Manifest:
    """Check, compress and write the invoices; return the manifest."""
    pending: deque[tuple[list[ArchiveEntry], Future[object]]] = deque()

    with ThreadPoolExecutor(max(encoder.max_workers, 1), "ksef-batch") as pool:
        try:
            for batch in _batches(checker, invoices):
                pending.append((batch, _submit(pool, encoder, batch)))
                while len(pending) > _MAX_PENDING:
                    entries, future = pending.popleft()
                    encoder.emit(entries, future.result(), writer)

            while pending:
                entries, future = pending.popleft()
                encoder.emit(entries, future.result(), writer)
        except BaseException:
            for _, future in pending:
                future.cancel()
            raise

    if not checker.manifest:
        raise EmptyBatchError("the batch has no invoices")
    return checker.manifest


def _submit(
    pool: ThreadPoolExecutor, encoder: ArchiveEncoder, batch: list[ArchiveEntry]
) -> Future[object]:
    prepared = encoder.prepare(batch)
    if encoder.max_workers:
        return pool.submit(encoder.encode, prepared)

    done: Future[object] = Future()
    done.set_result(encoder.encode(prepared))
    return done


def _batches(
    checker: _InvoiceChecker,
    invoices: Iterable[InvoiceSource],
) -> Iterator[list[ArchiveEntry]]:
    batch: list[ArchiveEntry] = []
    batch_bytes = 0

    for index, source in enumerate(invoices, start=1):
        entry = checker.accept(index, source)
        batch.append(entry)
        batch_bytes += len(entry.data)

        if batch_bytes >= checker.batch_bytes:
            yield batch
            batch = []
            batch_bytes = 0

    if batch:
        yield batch


def _part_check(limits: BatchLimits) -> _Check:
    def check(ordinal: int, source: Source | None) -> None:
        # sesja-wsadowa.md / BatchFileInfo.fileParts: at most 50 parts.
        if ordinal > limits.max_parts:
            raise TooManyPartsError(
                f"the package needs more than {limits.max_parts} parts"
                + _while_adding(source)
                + "; use a larger part size or split the invoices into more sessions",
                invoice_index=source[0] if source else None,
                invoice_name=source[1] if source else None,
            )

    return check


def _size_check(limits: BatchLimits) -> _Check:
    def check(size: int, source: Source | None) -> None:
        # faktury/weryfikacja-faktury.md / BatchFileInfo.fileSize: at most 5 GB.
        if size > limits.max_package_size:
            raise PackageTooLargeError(
                f"the package grows past {limits.max_package_size} bytes"
                + _while_adding(source)
                + "; split the invoices into more sessions",
                invoice_index=source[0] if source else None,
                invoice_name=source[1] if source else None,
            )

    return check


def _while_adding(source: Source | None) -> str:
    return f" while adding {_label(*source)}" if source else ""


def _label(index: int, name: str) -> str:
    return f"invoice #{index} ({name!r})"


class _InvoiceChecker:
    """Turn an input into an archive entry, enforcing per-invoice rules."""

    def __init__(
        self, limits: BatchLimits, *, check_xml: bool, batch_bytes: int
    ) -> None:
        self.batch_bytes = batch_bytes
        self._limits = limits
        self._check_xml = check_xml
        self.manifest = Manifest()

    def accept(self, index: int, source: InvoiceSource) -> ArchiveEntry:
        """Read and check one invoice, record it and return its archive entry."""
        name, original, label = _describe(index, source)

        # limity/limity.md: at most 10,000 invoices in a batch session.
        if index > self._limits.max_invoices:
            raise TooManyInvoicesError(
                f"{label}: a session takes at most {self._limits.max_invoices} "
                "invoices; split them into more sessions",
                invoice_index=index,
                invoice_name=original or name,
            )
        if original is not None:  # names made from a counter are safe already
            _check_name(name, index, label, original)
        self._check_unique(name, index, label, original)

        data = self._read(source, index, label, original or name)
        if not data:
            raise InvalidInvoiceXmlError(
                f"{label}: the invoice is empty",
                invoice_index=index,
                invoice_name=original or name,
            )
        if self._check_xml:
            _check_xml(data, index, label, original or name)

        digest = hashlib.sha256(data).digest()
        self.manifest.append(
            None if original is None else name, original, len(data), digest
        )
        return ArchiveEntry(name, data, (index, original or name))

    def _check_unique(
        self, name: str, index: int, label: str, original: str | None
    ) -> None:
        first = self.manifest.earlier_use(name, generated=original is None)
        if first is not None:
            raise DuplicateInvoiceNameError(
                f"{label}: the file name {name!r} is already used by invoice #{first}",
                invoice_index=index,
                invoice_name=original or name,
            )

    def _read(self, source: InvoiceSource, index: int, label: str, name: str) -> bytes:
        limit = self._limits.max_invoice_with_attachment_size
        if isinstance(source, tuple):
            data = bytes(source[1])
        elif isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
        else:
            path = Path(os.fspath(source))
            if path.stat().st_size > limit:
                raise self._too_large(path.stat().st_size, limit, index, label, name)
            data = path.read_bytes()

        if len(data) > self._limits.max_invoice_size:
            # limity/limity.md: 1 MB without attachments, 3 MB with them.
            has_attachment = _ATTACHMENT.search(data) is not None
            allowed = limit if has_attachment else self._limits.max_invoice_size
            if len(data) > allowed:
                raise self._too_large(len(data), allowed, index, label, name)
        return data

    @staticmethod
    def _too_large(
        size: int, limit: int, index: int, label: str, name: str
    ) -> InvoiceTooLargeError:
        return InvoiceTooLargeError(
            f"{label}: {size} bytes is over the {limit}-byte invoice limit",
            invoice_index=index,
            invoice_name=name,
        )


def _describe(index: int, source: InvoiceSource) -> tuple[str, str | None, str]:
    """Return the entry name, the caller's name and an error label for an input."""
    if isinstance(source, bytes | bytearray | memoryview):
        name = generated_name(index)
        return name, None, _label(index, name)

    if isinstance(source, tuple):
        if (
            len(source) != 2
            or not isinstance(source[0], str)
            or not isinstance(source[1], bytes | bytearray | memoryview)
        ):
            raise TypeError(f"invoice #{index}: expected a (name, bytes) pair")
        return source[0], source[0], _label(index, source[0])

    if isinstance(source, str) and source.lstrip().startswith("<"):
        raise TypeError(f"invoice #{index}: pass invoice XML as bytes, not str")
    if isinstance(source, str | os.PathLike):
        original = os.fspath(source)
        return Path(original).name, original, _label(index, original)

    raise TypeError(
        f"invoice #{index}: expected bytes, a path or a (name, bytes) pair, "
        f"got {type(source).__name__}"
    )


def _check_name(name: str, index: int, label: str, original: str | None) -> None:
    problem = _name_problem(name)
    if problem:
        raise UnsafeInvoiceNameError(
            f"{label}: unusable file name, {problem}",
            invoice_index=index,
            invoice_name=original or name,
        )


def _name_problem(name: str) -> str | None:
    """Say why ``name`` is not a safe, plain archive file name, or return None."""
    if not name or name in {".", ".."}:
        return "it is empty or a directory reference"
    if any(separator in name for separator in "/\\:"):
        return "it contains a path separator or drive marker"
    if not name.isprintable() or name != name.strip():
        return "it contains control characters or surrounding spaces"
    if len(name.encode("utf-8")) > _MAX_NAME_BYTES:
        return f"it is longer than {_MAX_NAME_BYTES} bytes"
    return None


class _XmlRejected(Exception):
    pass


def _reject_processing_instruction(target: str, data: str) -> None:
    raise _XmlRejected("processing instructions are not allowed")


def _check_declaration(version: str, encoding: str | None, standalone: int) -> None:
    if encoding is not None and encoding.lower() != "utf-8":
        raise _XmlRejected("the XML declaration names an encoding other than UTF-8")


def _check_xml(data: bytes, index: int, label: str, name: str) -> None:
    """Check what KSeF checks before the schema, cheaply, with a streaming parser."""
    problem = _xml_problem(data)
    if problem:
        raise InvalidInvoiceXmlError(
            f"{label}: {problem}", invoice_index=index, invoice_name=name
        )


def _xml_problem(data: bytes) -> str | None:
    # faktury/weryfikacja-faktury.md, "Weryfikacja XML": well-formed XML 1.0, UTF-8
    # without BOM, no encoding but UTF-8 declared, no processing instructions.
    if data.startswith(codecs.BOM_UTF8):
        return "the invoice starts with a UTF-8 byte order mark"

    parser = pyexpat.ParserCreate()
    parser.ProcessingInstructionHandler = _reject_processing_instruction
    parser.XmlDeclHandler = _check_declaration
    try:
        parser.Parse(data, True)
    except _XmlRejected as rejected:
        return str(rejected)
    except pyexpat.ExpatError as error:
        if not data.strip():
            return "the invoice holds only white space"
        return (
            f"the invoice is not well-formed XML ({pyexpat.ErrorString(error.code)} "
            f"at line {error.lineno}, column {error.offset})"
        )
    return None
