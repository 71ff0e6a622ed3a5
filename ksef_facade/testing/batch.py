"""Batch sessions: open with declared parts, upload parts, close and process.

sesja-wsadowa.md: the ZIP (or tar.gz) package is split into at most 50 parts of at
most 100 MB each before encryption (5 GB in total); each part is encrypted on its
own with the session's AES key and IV; open answers ``partUploadRequests``; parts are
PUT to those URLs without a bearer (201, or 400/401/403); uploads may take 20 minutes
per declared part; close starts asynchronous processing of every invoice inside.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from datetime import timedelta
from typing import Any

from .calls import Call, Reply, text_reply
from .errors import ApiError
from .fields import (
    bool_field,
    compression_field,
    digest_field,
    int_field,
    object_field,
)
from .presign import sign, verify
from .processing import MAX_INVOICE_WITH_ATTACHMENT_SIZE, process_invoice
from .servercrypto import DecryptionError, declared_mismatch
from .sessions_common import (
    BATCH_WRITE_PERMISSIONS,
    decrypt,
    find_open_session,
    open_session,
    read_encryption,
    read_form_code,
)
from .state import BatchPackage, SessionRecord, Status

__all__ = ["close_batch_session", "open_batch_session", "unpack", "upload_part"]

# sesja-wsadowa.md: at most 50 parts of 100 MB (100 * 1000 * 1000 bytes, as its
# example splits them) before encryption; spec BatchFileInfo: at most 5 GB in total.
MAX_PARTS = 50
MAX_PART_SIZE = 100_000_000
MAX_PACKAGE_SIZE = 5_000_000_000
# Encryption adds at most one 16-byte padding block to a part.
MAX_ENCRYPTED_PART_SIZE = MAX_PART_SIZE + 16
# sesja-wsadowa.md: uploads may take 20 minutes per declared part.
UPLOAD_TIME_PER_PART = timedelta(minutes=20)
_BLOB_HEADERS = {"x-ms-blob-type": "BlockBlob"}


class PackageError(Exception):
    """Raised when a package cannot be unpacked."""


def _read_parts(body: dict[str, Any]) -> dict[int, tuple[int, str]]:
    batch_file = object_field(body, "batchFile")
    raw_parts = batch_file.get("fileParts")
    if not isinstance(raw_parts, list) or not raw_parts:
        raise ApiError(21405, "Pole 'fileParts' jest wymagane i nie może być puste.")
    if len(raw_parts) > MAX_PARTS:
        raise ApiError(21161, f"Paczka może mieć najwyżej {MAX_PARTS} części.")

    parts: dict[int, tuple[int, str]] = {}
    for raw in raw_parts:
        if not isinstance(raw, dict):
            raise ApiError(21405, "Każdy element 'fileParts' musi być obiektem.")
        number = int_field(raw, "ordinalNumber", minimum=1)
        size = int_field(raw, "fileSize", minimum=1)
        digest = digest_field(raw, "fileHash")
        if size > MAX_ENCRYPTED_PART_SIZE:
            raise ApiError(
                21157, f"Rozmiar części {number} przekroczył dozwolony rozmiar 100MB."
            )
        parts[number] = (size, digest)

    if sorted(parts) != list(range(1, len(raw_parts) + 1)):
        raise ApiError(21405, "Numery części muszą być kolejnymi liczbami od 1.")
    return parts


def open_batch_session(call: Call) -> Reply:
    """POST /sessions/batch: declare the package and get part upload URLs."""
    sim = call.sim
    access = call.access(*BATCH_WRITE_PERMISSIONS)
    body = call.json()
    form_code = read_form_code(body)
    batch_file = object_field(body, "batchFile")
    file_size = int_field(batch_file, "fileSize", minimum=1, maximum=MAX_PACKAGE_SIZE)
    file_hash = digest_field(batch_file, "fileHash")
    compression = compression_field(batch_file)
    parts = _read_parts(body)
    offline = bool_field(body, "offlineMode")
    encryption = read_encryption(call, body)

    package = BatchPackage(
        file_size=file_size,
        file_hash=file_hash,
        compression=compression,
        parts=parts,
        upload_deadline=sim.now() + UPLOAD_TIME_PER_PART * len(parts),
    )
    session = open_session(
        call, access, "Batch", form_code, encryption, batch=package, offline=offline
    )

    reference = session.reference_number
    expires = int(package.upload_deadline.timestamp())
    requests = []
    for number in sorted(parts):
        key = sign(sim.presign_secret, {"s": reference, "p": number, "e": expires})
        requests.append(
            {
                "ordinalNumber": number,
                "method": "PUT",
                "url": f"{call.origin}/upload/{reference}/{number}?sig={key}",
                "headers": dict(_BLOB_HEADERS),
            }
        )
    return Reply(201, {"referenceNumber": reference, "partUploadRequests": requests})


def upload_part(call: Call) -> Reply:
    """PUT /upload/{referenceNumber}/{ordinalNumber}: receive one encrypted part."""
    sim = call.sim
    reference = call.path_params["referenceNumber"]
    # sesja-wsadowa.md: a bad key is 401, an expired upload window 403.
    payload = verify(sim.presign_secret, call.query.get("sig", ""), None)
    if (
        payload is None
        or payload.get("s") != reference
        or str(payload.get("p")) != call.path_params["ordinalNumber"]
    ):
        return text_reply(401, "Invalid or expired upload signature.")

    session = sim.sessions.get(reference)
    number = int(call.path_params["ordinalNumber"])
    if session is None or session.batch is None or session.closed is not None:
        return text_reply(403, "The session does not accept uploads.")
    if sim.now() > session.batch.upload_deadline:
        return text_reply(403, "The upload window has closed.")
    if call.headers.get("x-ms-blob-type") != _BLOB_HEADERS["x-ms-blob-type"]:
        return text_reply(
            400, "Missing the x-ms-blob-type header from partUploadRequests."
        )

    size, digest = session.batch.parts[number]
    if declared_mismatch(call.body, size, digest):
        return text_reply(
            400, "The part's size or hash does not match its declaration."
        )
    session.batch.uploaded[number] = call.body
    session.updated = sim.now()
    return text_reply(201, "")


def unpack(package: bytes, compression: str) -> list[tuple[str, bytes]]:
    """Return the files in a ZIP or tar.gz package, refusing oversized members."""
    files: list[tuple[str, bytes]] = []
    try:
        if compression == "Zip":
            with zipfile.ZipFile(io.BytesIO(package)) as archive:
                for info in archive.infolist():
                    if info.is_dir():
                        continue
                    if info.file_size > MAX_INVOICE_WITH_ATTACHMENT_SIZE:
                        raise PackageError(f"{info.filename} is larger than allowed")
                    files.append((info.filename, archive.read(info)))
        else:
            with tarfile.open(fileobj=io.BytesIO(package), mode="r:gz") as archive:
                for member in archive.getmembers():
                    if not member.isfile():
                        continue
                    if member.size > MAX_INVOICE_WITH_ATTACHMENT_SIZE:
                        raise PackageError(f"{member.name} is larger than allowed")
                    extracted = archive.extractfile(member)
                    files.append((member.name, extracted.read() if extracted else b""))
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise PackageError(str(exc)) from exc
    return files


def _process_package(call: Call, session: SessionRecord) -> Status | None:
    package = session.batch
    assert package is not None

    plain = []
    for number in sorted(package.parts):
        try:
            plain.append(decrypt(session, package.uploaded[number]))
        except DecryptionError:
            return Status(435, "Błąd odszyfrowania zaszyfrowanych części archiwum")
    joined = b"".join(plain)
    if declared_mismatch(joined, package.file_size, package.file_hash):
        return Status(
            405,
            "Błąd weryfikacji poprawności dostarczonych elementów paczki",
            ("Rozmiar lub skrót paczki nie zgadza się z zadeklarowanym.",),
        )

    try:
        files = unpack(joined, package.compression)
    except PackageError:
        return Status(430, "Błąd dekompresji pierwotnego archiwum")
    # limity/limity.md: at most 10 000 invoices in a session.
    if len(files) > call.sim.max_invoices_per_session:
        return Status(420, "Przekroczony limit faktur w sesji")

    for name, content in files:
        process_invoice(
            call.sim,
            session,
            content,
            declared_hash=None,
            declared_size=None,
            offline=session.offline,
            file_name=name[-128:],
        )
    return None


def close_batch_session(call: Call) -> Reply:
    """POST /sessions/batch/{referenceNumber}/close: start processing the package."""
    sim = call.sim
    access = call.access(*BATCH_WRITE_PERMISSIONS)
    session = find_open_session(call, access, "Batch", "jej zamknięcie")
    assert session.batch is not None

    # spec, close batch session: 21208 when the upload time ran out, 21205 when a
    # declared part is missing.
    now = sim.now()
    if now > session.batch.upload_deadline:
        session.closed = session.ready_at = now
        session.final_status = Status(
            440, "Sesja anulowana", ("Przekroczono czas wysyłki",)
        )
        raise ApiError(21208, "Sesja anulowana, przekroczony czas wysyłki.")
    missing = [
        n for n in sorted(session.batch.parts) if n not in session.batch.uploaded
    ]
    if missing:
        raise ApiError(
            21205, f"Nie przesłano zadeklarowanej '{missing[0]}' części pliku."
        )

    session.closed = now
    session.updated = now
    session.ready_at = sim.ready_at()
    session.final_status = _process_package(call, session)
    return Reply(204)
