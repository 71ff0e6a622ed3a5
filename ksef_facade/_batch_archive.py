"""Archive encoders for batch packages: ZIP (DEFLATE) and TarGz.

Each encoder splits its work in three: :meth:`prepare` does the Python-level work on
a batch of entries in the calling thread; :meth:`encode` does the heavy compression
and may run in a worker thread, so it should be few calls on large buffers that
release the GIL; :meth:`emit` writes the results in input order from the calling
thread; :meth:`finish` writes the archive's closing bytes.

The ZIP writer is our own: it has no per-entry file object and seek-back of the
stdlib writer, and it writes ZIP64 records only when offsets or counts need them.
"""

from __future__ import annotations

import struct
import tarfile
import zlib
from collections.abc import Sequence
from typing import Protocol, cast

import attrs

from ksef_facade._spool import Source

__all__ = ["ArchiveEncoder", "ArchiveEntry", "Output", "TarGzEncoder", "ZipEncoder"]


@attrs.frozen
class ArchiveEntry:
    """A file to put in the archive, and the input it came from."""

    name: str
    data: bytes = attrs.field(repr=False)
    source: Source


class Output(Protocol):
    """Where an encoder writes the archive stream."""

    current_source: Source | None

    def write(self, data: bytes) -> None:
        """Append bytes to the archive stream."""


class ArchiveEncoder(Protocol):
    """The steps of writing an archive format, see the module docstring."""

    max_workers: int
    """Threads to run :meth:`encode` on; 0 runs it in the calling thread."""

    batch_bytes: int
    """Invoice bytes per batch handed to :meth:`prepare` and :meth:`encode`."""

    def prepare(self, entries: Sequence[ArchiveEntry]) -> object:
        """Return what :meth:`encode` needs for a batch of entries."""

    def encode(self, prepared: object) -> object:
        """Compress a prepared batch (thread-safe as ``max_workers`` allows)."""

    def emit(
        self, entries: Sequence[ArchiveEntry], encoded: object, out: Output
    ) -> None:
        """Write an encoded batch, in order, to ``out``."""

    def finish(self, out: Output) -> None:
        """Write the bytes that close the archive."""


# APPNOTE.TXT 4.3.7, 4.3.12, 4.3.14-4.3.16: record layouts and signatures.
_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
_CENTRAL_HEADER = struct.Struct("<IHHHHHHIIIHHHHHII")
_END_OF_CENTRAL = struct.Struct("<IHHHHIIH")
_ZIP64_END = struct.Struct("<IQHHIIQQQQ")
_ZIP64_LOCATOR = struct.Struct("<IIQI")
_ZIP64_OFFSET_EXTRA = struct.Struct("<HHQ")

_DEFLATE = 8
_UTF8_NAME_FLAG = 0x0800
_VERSION = 20
_VERSION_ZIP64 = 45
_DOS_DATE_1980 = (1 << 5) | 1  # 1980-01-01: fixed, so a package is reproducible
_UNIX_FILE_MODE = 0o100644 << 16
_MADE_BY_UNIX = 3 << 8

# Beyond these, classic ZIP fields overflow and ZIP64 records take over; the
# classic fields then hold the all-ones markers (APPNOTE.TXT 4.4.1.4).
ZIP32_MAX_OFFSET = 0xFFFFFFFF
ZIP32_MAX_COUNT = 0xFFFF
_MARK32 = 0xFFFFFFFF
_MARK16 = 0xFFFF

_SLICE = 1 << 20  # the central directory is written out in slices of this size


class ZipEncoder:
    """Write a ZIP archive whose entries are deflated independently."""

    # Entries are a few kB: a worker thread would trade the GIL back and forth
    # around every small deflate call and lose more than it overlaps.
    max_workers = 0
    batch_bytes = 256 * 1024

    def __init__(self, level: int) -> None:
        self._level = level
        self._offset = 0
        self._count = 0
        self._central = bytearray()
        self._zip64 = False

    def prepare(self, entries: Sequence[ArchiveEntry]) -> object:
        """Return the entries as they are."""
        return entries

    def encode(self, prepared: object) -> list[tuple[int, bytes]]:
        """Return the CRC-32 and raw DEFLATE stream of each entry."""
        entries = cast("Sequence[ArchiveEntry]", prepared)
        return [
            (zlib.crc32(entry.data), self._deflate(entry.data)) for entry in entries
        ]

    def _deflate(self, data: bytes) -> bytes:
        # On inputs of a few kB a compressobj measured about twice as fast as
        # zlib.compress(data, level, wbits) on CPython 3.11.
        compressor = zlib.compressobj(self._level, zlib.DEFLATED, -15)
        return compressor.compress(data) + compressor.flush()

    def emit(
        self, entries: Sequence[ArchiveEntry], encoded: object, out: Output
    ) -> None:
        """Write each entry's local header and compressed data."""
        assert isinstance(encoded, list)
        for entry, (crc, packed) in zip(entries, encoded, strict=True):
            out.current_source = entry.source
            name = entry.name.encode("utf-8")
            flags = 0 if name.isascii() else _UTF8_NAME_FLAG

            header = _LOCAL_HEADER.pack(
                0x04034B50,
                _VERSION,
                flags,
                _DEFLATE,
                0,
                _DOS_DATE_1980,
                crc,
                len(packed),
                len(entry.data),
                len(name),
                0,
            )
            out.write(header + name + packed)

            self._add_central(name, flags, crc, len(packed), len(entry.data))
            self._offset += len(header) + len(name) + len(packed)
            self._count += 1

    def finish(self, out: Output) -> None:
        """Write the central directory and the end records."""
        cd_offset = self._offset
        cd_size = len(self._central)
        zip64 = (
            self._zip64
            or self._count >= ZIP32_MAX_COUNT
            or cd_offset >= ZIP32_MAX_OFFSET
            or cd_size >= ZIP32_MAX_OFFSET
        )

        out.current_source = None
        with memoryview(self._central) as view:
            for start in range(0, cd_size, _SLICE):
                out.write(bytes(view[start : start + _SLICE]))
        self._central = bytearray()

        records = b""
        if zip64:
            end64_offset = cd_offset + cd_size
            records += _ZIP64_END.pack(
                0x06064B50,
                _ZIP64_END.size - 12,
                _VERSION_ZIP64 | _MADE_BY_UNIX,
                _VERSION_ZIP64,
                0,
                0,
                self._count,
                self._count,
                cd_size,
                cd_offset,
            )
            records += _ZIP64_LOCATOR.pack(0x07064B50, 0, end64_offset, 1)

        count = _MARK16 if zip64 else self._count
        records += _END_OF_CENTRAL.pack(
            0x06054B50,
            0,
            0,
            count,
            count,
            _MARK32 if zip64 else cd_size,
            _MARK32 if zip64 else cd_offset,
            0,
        )
        out.write(records)

    def _add_central(
        self, name: bytes, flags: int, crc: int, packed_size: int, size: int
    ) -> None:
        extra = b""
        offset = self._offset
        version = _VERSION
        if offset >= ZIP32_MAX_OFFSET:
            extra = _ZIP64_OFFSET_EXTRA.pack(1, 8, offset)
            offset = _MARK32
            version = _VERSION_ZIP64
            self._zip64 = True

        self._central += _CENTRAL_HEADER.pack(
            0x02014B50,
            version | _MADE_BY_UNIX,
            version,
            flags,
            _DEFLATE,
            0,
            _DOS_DATE_1980,
            crc,
            packed_size,
            size,
            len(name),
            len(extra),
            0,
            0,
            0,
            _UNIX_FILE_MODE,
            offset,
        )
        self._central += name + extra


class TarGzEncoder:
    """Write a ustar archive through one gzip stream (one worker keeps the order)."""

    # Large batches: after each one the worker must win the GIL back from a busy
    # calling thread, which can take a whole switch interval (5 ms).
    max_workers = 1
    batch_bytes = 2 * 1024 * 1024

    def __init__(self, level: int) -> None:
        # wbits 16 + 15: a gzip wrapper with mtime 0, so a package is reproducible.
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + 15)

    def prepare(self, entries: Sequence[ArchiveEntry]) -> bytes:
        """Frame the entries as tar members, uncompressed."""
        chunks: list[bytes] = []
        for entry in entries:
            chunks.append(_ustar_header(entry.name.encode("utf-8"), len(entry.data)))
            chunks.append(entry.data)
            chunks.append(bytes(-len(entry.data) % tarfile.BLOCKSIZE))
        return b"".join(chunks)

    def encode(self, prepared: object) -> bytes:
        """Compress framed members: one call on a large buffer."""
        assert isinstance(prepared, bytes)
        return self._compressor.compress(prepared)

    def emit(
        self, entries: Sequence[ArchiveEntry], encoded: object, out: Output
    ) -> None:
        """Write a compressed batch."""
        assert isinstance(encoded, bytes)
        # One compressed chunk covers the whole batch: limits broken while writing
        # it are reported against the batch's last invoice.
        out.current_source = entries[-1].source
        out.write(encoded)

    def finish(self, out: Output) -> None:
        """Write the end-of-archive blocks and the gzip trailer."""
        end_of_archive = bytes(2 * tarfile.BLOCKSIZE)
        out.current_source = None
        out.write(self._compressor.compress(end_of_archive) + self._compressor.flush())


# POSIX ustar header (pax "ustar Interchange Format"): fields before and after the
# name, size and checksum, for a regular 0644 file owned by 0:0 with mtime 0.
_USTAR_MODE_TO_GID = b"0000644\0" + b"0000000\0" * 2
_USTAR_MTIME = b"0" * 11 + b"\0"
_USTAR_TAIL = (
    b"0"  # typeflag: regular file
    + bytes(100)  # linkname
    + b"ustar\x0000"  # magic and version
    + bytes(64)  # uname, gname
    + bytes(16 + 155 + 12)  # devmajor, devminor (unused), prefix, padding
)


def _ustar_header(name: bytes, size: int) -> bytes:
    """Return the 512-byte ustar header of a regular file (name <= 100 bytes)."""
    head = name.ljust(100, b"\0") + _USTAR_MODE_TO_GID + b"%011o\0" % size
    head += _USTAR_MTIME
    checksum = sum(head) + sum(_USTAR_TAIL) + 8 * ord(" ")
    return head + b"%06o\0 " % checksum + _USTAR_TAIL
