"""Cut a package stream into encrypted parts, hash them and spool them.

The package is written once, front to back. :class:`PartWriter` takes the plaintext,
hashes it as the whole package, cuts it into parts of at most ``part_size`` bytes,
encrypts each part on its own under the session key and IV and keeps the ciphertext
in memory or, past a threshold, in a file of a private temporary directory
(sesja-wsadowa.md, sections 2 and 3).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

import attrs

from ksef_facade.crypto import AesCbcEncryptor, b64

__all__ = [
    "EncryptedPart",
    "PartWriter",
    "Source",
    "SpoolDirectory",
    "remove_spooled_parts",
]

logger = logging.getLogger("ksef_facade.batch_package")

Source = tuple[int, str]
"""An input of the package: its 1-based index and its name, for error messages."""

# Directories made here start with this, so a later process can tell them from a
# directory the caller named.
_PREFIX = "ksef-batch-"

# Plaintext is encrypted and hashed in slices of this size: large enough that the
# per-call cost vanishes, small enough to keep memory flat.
_FLUSH_SIZE = 1 << 20


@attrs.frozen
class EncryptedPart:
    """One encrypted part: its 1-based ordinal number, size, hash and bytes."""

    ordinal_number: int
    size: int
    sha256: str
    plain_size: int
    path: Path | None = None
    data: bytes | None = attrs.field(default=None, repr=False)

    def open(self) -> IO[bytes]:
        """Open the encrypted bytes for reading."""
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None
        return self.path.open("rb")

    def read(self) -> bytes:
        """Return the encrypted bytes."""
        with self.open() as stream:
            return stream.read()


class SpoolDirectory:
    """A private temporary directory, created on first use and removed on close.

    With ``keep=True`` the directory outlives this object and the interpreter
    until :meth:`close` is called, so a crashed upload can be resumed from it.
    """

    def __init__(
        self, parent: str | os.PathLike[str] | None = None, *, keep: bool = False
    ) -> None:
        self._parent = parent
        self._keep = keep
        self._path: Path | None = None
        self._finalizer: weakref.finalize[[str], SpoolDirectory] | None = None
        self._closed = False

    @property
    def path(self) -> Path:
        """Return the directory, creating it on first use."""
        if self._path is None:
            created = tempfile.mkdtemp(prefix=_PREFIX, dir=self._parent)
            self._path = Path(created)
            if not self._keep:
                # Safety net: the directory goes when this object is collected or
                # the interpreter exits, even if nobody called close().
                self._finalizer = weakref.finalize(self, _remove_tree, created)
        return self._path

    @property
    def created(self) -> Path | None:
        """Return the directory if it has been created, without creating it."""
        return self._path

    @property
    def closed(self) -> bool:
        """Tell whether the directory has been removed."""
        return self._closed

    def close(self) -> None:
        """Remove the directory and everything in it."""
        if self._closed or self._path is None:
            self._closed = self._path is not None
            return
        self._closed = True
        if self._finalizer is not None:
            self._finalizer()
        else:
            _remove_tree(str(self._path))


def _remove_tree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def remove_spooled_parts(paths: Iterable[str], directory: str | None) -> None:
    """Delete part files, and ``directory`` too if a SpoolDirectory made it."""
    for path in paths:
        Path(path).unlink(missing_ok=True)

    if directory is not None and Path(directory).name.startswith(_PREFIX):
        _remove_tree(directory)


class PartWriter:
    """Take the package stream and turn it into hashed, encrypted parts.

    ``check_part`` is called with the ordinal number of a part before it is started
    and ``check_size`` with the package size after every slice, each also given
    :attr:`current_source`, the input being written. Buffered bytes are flushed
    early when they would start a part or pass ``max_size``, so a limit breaks
    during the write of the entry that breaks it, and the error can name it.
    """

    def __init__(
        self,
        key: bytes,
        iv: bytes,
        *,
        part_size: int,
        max_size: int,
        memory_threshold: int,
        spool: SpoolDirectory,
        check_part: Callable[[int, Source | None], None],
        check_size: Callable[[int, Source | None], None],
    ) -> None:
        AesCbcEncryptor(key, iv)  # fail fast on a bad key or IV
        self._key = key
        self._iv = iv
        self._part_size = part_size
        self._max_size = max_size
        self._memory_threshold = memory_threshold
        self._spool = spool
        self._check_part = check_part
        self._check_size = check_size

        self.current_source: Source | None = None
        self._buffer = bytearray()
        self._package_hash = hashlib.sha256()
        self._package_size = 0
        self._parts: list[EncryptedPart] = []
        self._part: _OpenPart | None = None
        self._flush_at = self._next_flush()

    def __repr__(self) -> str:
        return f"PartWriter(<key hidden>, parts={len(self._parts)})"

    def write(self, data: bytes) -> None:
        """Append bytes to the package stream."""
        self._buffer += data
        if len(self._buffer) >= self._flush_at:
            self._flush()

    def finish(self) -> tuple[int, str, tuple[EncryptedPart, ...]]:
        """Close the last part; return the package size, its hash and the parts."""
        self._flush()
        if self._part is not None:
            self._close_part()

        digest = b64(self._package_hash.digest())
        return self._package_size, digest, tuple(self._parts)

    def abort(self) -> None:
        """Release the part being written; the caller removes the spool."""
        if self._part is not None:
            self._part.abort()
            self._part = None
        self._buffer = bytearray()

    def _flush(self) -> None:
        with memoryview(self._buffer) as view:
            start = 0
            while start < len(view):
                if self._part is None:
                    self._open_part()
                assert self._part is not None

                room = self._part_size - self._part.plain_size
                take = min(len(view) - start, room)
                self._feed(view[start : start + take])
                start += take

                if self._part.plain_size == self._part_size:
                    self._close_part()

        self._buffer.clear()
        self._flush_at = self._next_flush()

    def _next_flush(self) -> int:
        # Flush as soon as the buffer would fill the open part, start a new one (no
        # part open: room 1) or pass the size limit; else in slices of _FLUSH_SIZE.
        room = 1 if self._part is None else self._part_size - self._part.plain_size
        return max(1, min(_FLUSH_SIZE, room, self._max_size - self._package_size + 1))

    def _feed(self, chunk: memoryview) -> None:
        assert self._part is not None
        self._package_size += len(chunk)
        self._check_size(self._package_size, self.current_source)

        self._package_hash.update(chunk)
        self._part.write_plain(chunk)

    def _open_part(self) -> None:
        ordinal = len(self._parts) + 1
        self._check_part(ordinal, self.current_source)
        self._part = _OpenPart(
            ordinal,
            AesCbcEncryptor(self._key, self._iv),
            self._memory_threshold,
            self._spool,
        )

    def _close_part(self) -> None:
        assert self._part is not None
        part = self._part.close()
        self._part = None
        self._parts.append(part)
        logger.debug(
            "batch part %d spooled: %d bytes encrypted", part.ordinal_number, part.size
        )


class _OpenPart:
    """The part being written: encrypts, hashes, and keeps or spools ciphertext."""

    def __init__(
        self,
        ordinal: int,
        encryptor: AesCbcEncryptor,
        memory_threshold: int,
        spool: SpoolDirectory,
    ) -> None:
        self.ordinal = ordinal
        self.plain_size = 0
        self._encryptor = encryptor
        self._hash = hashlib.sha256()
        self._size = 0
        self._memory_threshold = memory_threshold
        self._spool = spool
        self._memory: bytearray | None = bytearray()
        self._file: IO[bytes] | None = None
        self._path: Path | None = None

    def write_plain(self, chunk: memoryview) -> None:
        self.plain_size += len(chunk)
        self._write_cipher(self._encryptor.update(bytes(chunk)))

    def close(self) -> EncryptedPart:
        self._write_cipher(self._encryptor.finalize())
        digest = b64(self._hash.digest())

        if self._file is not None:
            self._file.close()
            return EncryptedPart(
                self.ordinal, self._size, digest, self.plain_size, path=self._path
            )
        assert self._memory is not None
        return EncryptedPart(
            self.ordinal, self._size, digest, self.plain_size, data=bytes(self._memory)
        )

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
        self._memory = None

    def _write_cipher(self, data: bytes) -> None:
        if not data:
            return
        self._hash.update(data)
        self._size += len(data)

        if self._memory is not None:
            self._memory += data
            if len(self._memory) <= self._memory_threshold:
                return
            self._roll_over()
            return
        assert self._file is not None
        self._file.write(data)

    def _roll_over(self) -> None:
        assert self._memory is not None
        self._path = self._spool.path / f"part-{self.ordinal:03d}.aes"
        self._file = self._path.open("xb")
        self._file.write(self._memory)
        self._memory = None
