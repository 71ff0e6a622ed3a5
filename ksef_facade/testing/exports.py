"""Invoice exports: an encrypted package of invoices and their metadata.

The spec's ``POST /invoices/exports``: invoices matching the filters, oldest first,
go into a ZIP (or tar.gz) as ``{ksefNumber}.xml`` with ``_metadata.json`` (an object
with an ``invoices`` array of InvoiceMetadata), up to 10 000 invoices; at most 10
exports run at once per context. ``GET /invoices/exports/{referenceNumber}``: the
package is split into parts of at most 50 MB, each encrypted with AES-256-CBC under
the key given at the start, and served at links that need no bearer token.
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .calls import EXPIRED_LINK, Access, Call, Reply, document_reply, text_reply
from .errors import ApiError, timestamp
from .fields import bool_field, compression_field, object_field
from .invoices import date_of, metadata_json, select_invoices
from .presign import download_link, verify
from .servercrypto import aes_cbc_encrypt, sha256_b64
from .sessions_common import KEY_ERROR, read_encryption
from .state import InvoiceRecord, Status

__all__ = ["download_export_part", "get_export_status", "start_export"]

# spec, POST /invoices/exports: 10 000 invoices, 10 concurrent exports per context;
# GET /invoices/exports/{referenceNumber}: the status is kept 7 days.
MAX_EXPORT_INVOICES = 10_000
MAX_RUNNING_EXPORTS = 10
PACKAGE_LIFETIME = timedelta(days=7)
_IN_PROGRESS = Status(100, "Eksport faktur w toku")


@dataclass
class ExportPart:
    """One encrypted part of an export package."""

    name: str
    size: int
    digest: str
    encrypted: bytes = field(repr=False)


@dataclass
class ExportRecord:
    """An export: its outcome (revealed at ``ready_at``) and its package."""

    reference_number: str
    nip: str
    ready_at: datetime
    outcome: Status
    compression: str = "Zip"
    invoice_count: int = 0
    size: int = 0
    truncated: bool = False
    last_date: tuple[str, str] | None = None
    hwm: datetime | None = None
    parts: list[ExportPart] = field(default_factory=list)
    started: datetime | None = None


def _archive(files: list[tuple[str, bytes]], compression: str) -> bytes:
    buffer = io.BytesIO()
    if compression == "Zip":
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, content in files:
                archive.writestr(name, content)
    else:
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for name, content in files:
                info = tarfile.TarInfo(name)
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _last_date(invoice: InvoiceRecord, date_type: str) -> tuple[str, str]:
    moment = date_of(invoice, date_type)
    if date_type == "Issue":
        return "lastIssueDate", moment.date().isoformat()
    name = (
        "lastInvoicingDate" if date_type == "Invoicing" else "lastPermanentStorageDate"
    )
    return name, timestamp(moment)


def _build(
    call: Call,
    access: Access,
    record: ExportRecord,
    encryption: tuple[bytes, bytes],
    body: dict[str, Any],
) -> None:
    key, iv = encryption
    filters = object_field(body, "filters")
    try:
        selection = select_invoices(call, access, filters)
    except ApiError as error:
        if error.code != 21183:
            raise
        record.outcome = Status(
            420,
            "Zakres filtrowania wykracza poza dostępny zakres danych",
            tuple(error.details),
        )
        return

    chosen = selection.invoices[:MAX_EXPORT_INVOICES]
    record.truncated = len(selection.invoices) > len(chosen)
    if record.truncated and chosen:
        record.last_date = _last_date(chosen[-1], selection.date_type)
    record.hwm = selection.hwm
    record.invoice_count = len(chosen)

    files = []
    if not bool_field(body, "onlyMetadata"):
        files = [(f"{i.ksef_number}.xml", i.content or b"") for i in chosen]
    metadata = {"invoices": [metadata_json(i) for i in chosen]}
    files.append(("_metadata.json", json.dumps(metadata, ensure_ascii=False).encode()))
    package = _archive(files, record.compression)
    record.size = len(package)

    part_size = call.sim.export_part_size
    for number, start in enumerate(range(0, len(package), part_size), start=1):
        chunk = package[start : start + part_size]
        extension = "zip" if record.compression == "Zip" else "tar.gz"
        record.parts.append(
            ExportPart(
                name=f"{record.reference_number}-{number:03d}.{extension}.aes",
                size=len(chunk),
                digest=sha256_b64(chunk),
                encrypted=aes_cbc_encrypt(key, iv, chunk),
            )
        )
    record.outcome = Status(200, "Eksport faktur zakończony sukcesem")


def start_export(call: Call) -> Reply:
    """POST /invoices/exports: start preparing an encrypted package."""
    sim = call.sim
    access = call.access("InvoiceRead")
    body = call.json()
    object_field(body, "filters")
    compression = compression_field(body)
    key, iv = read_encryption(call, body)

    running = [
        e
        for e in sim.exports.values()
        if e.nip == access.nip and sim.now() < e.ready_at
    ]
    if len(running) >= MAX_RUNNING_EXPORTS:
        raise ApiError(
            21182,
            "Dla uwierzytelnionego podmiotu w bieżącym kontekście osiągnięto "
            f"maksymalny limit {MAX_RUNNING_EXPORTS} równoczesnych eksportów faktur.",
        )

    record = ExportRecord(
        reference_number=sim.new_reference("EX"),
        nip=access.nip,
        ready_at=sim.ready_at(),
        outcome=KEY_ERROR,
        compression=compression,
        started=sim.now(),
    )
    if key is not None:
        _build(call, access, record, (key, iv), body)
    sim.exports[record.reference_number] = record
    return Reply(201, {"referenceNumber": record.reference_number})


def _part_json(call: Call, record: ExportRecord, number: int) -> dict[str, Any]:
    part = record.parts[number - 1]
    url, expires = download_link(
        call, "export", {"x": record.reference_number, "n": number}
    )
    return {
        "ordinalNumber": number,
        "partName": part.name,
        "method": "GET",
        "url": url,
        "partSize": part.size,
        "partHash": part.digest,
        "encryptedPartSize": len(part.encrypted),
        "encryptedPartHash": sha256_b64(part.encrypted),
        "expirationDate": expires,
    }


def get_export_status(call: Call) -> Reply:
    """GET /invoices/exports/{referenceNumber}: progress, then the package parts."""
    sim = call.sim
    access = call.access("InvoiceRead")
    reference = call.path_params["referenceNumber"]
    record = sim.exports.get(reference)
    if record is None or record.nip != access.nip:
        raise ApiError(21175)
    sim.check_retention(record.started or record.ready_at)
    if sim.now() < record.ready_at:
        return Reply(200, {"status": _IN_PROGRESS.to_json()})

    body: dict[str, Any] = {
        "status": record.outcome.to_json(),
        "completedDate": timestamp(record.ready_at),
    }
    if record.outcome.code == 200:
        body["packageExpirationDate"] = timestamp(record.ready_at + PACKAGE_LIFETIME)
        package: dict[str, Any] = {
            "invoiceCount": record.invoice_count,
            "size": record.size,
            "parts": [
                _part_json(call, record, n) for n in range(1, len(record.parts) + 1)
            ],
            "isTruncated": record.truncated,
            "compressionType": record.compression,
        }
        if record.last_date is not None:
            package[record.last_date[0]] = record.last_date[1]
        if record.hwm is not None:
            package["permanentStorageHwmDate"] = timestamp(record.hwm)
        body["package"] = package
    return Reply(200, body)


def download_export_part(call: Call) -> Reply:
    """GET /export/{token}: one encrypted part, served without a bearer."""
    payload = verify(call.sim.presign_secret, call.path_params["token"], call.sim.now())
    record = call.sim.exports.get(str(payload.get("x"))) if payload else None
    number = payload.get("n") if payload else None
    if (
        record is None
        or not isinstance(number, int)
        or not 1 <= number <= len(record.parts)
    ):
        return text_reply(*EXPIRED_LINK)

    return document_reply(
        record.parts[number - 1].encrypted, "application/octet-stream"
    )
