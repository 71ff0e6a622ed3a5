"""Tests for the streaming batch package builder (ksef_facade.batch_package)."""

from __future__ import annotations

import base64
import gc
import hashlib
import io
import json
import os
import tarfile
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ksef_facade import _batch_archive
from ksef_facade.batch_package import (
    BatchLimits,
    BatchPackage,
    BatchPackageError,
    CompressionType,
    DuplicateInvoiceNameError,
    EmptyBatchError,
    InvalidInvoiceXmlError,
    InvoiceTooLargeError,
    PackageTooLargeError,
    TooManyInvoicesError,
    TooManyPartsError,
    UnsafeInvoiceNameError,
    build_batch_package,
)
from ksef_facade.errors import KsefError

KEY = bytes(range(32))
IV = bytes(range(100, 116))
TEMPLATE = (Path(__file__).parent / "data" / "fa3_invoice.xml").read_bytes()


def invoice(number: int, padding_bytes: int = 0) -> bytes:
    """Return a distinct FA(3) invoice, optionally padded with a comment."""
    xml = TEMPLATE.replace(b"FV/2026/11/000001", b"FV/2026/11/%06d" % number)
    xml = xml.replace(b"4001.49", b"%d.%02d" % (number * 37 % 9000, number % 100))
    if padding_bytes:
        xml = xml.replace(
            b"</Faktura>", b"<!--" + b"x" * padding_bytes + b"--></Faktura>"
        )
    return xml


def with_attachment(xml: bytes) -> bytes:
    """Return the invoice with a (minimal) Zalacznik element."""
    return xml.replace(b"</Faktura>", b"<Zalacznik><BlokDanych/></Zalacznik></Faktura>")


def build(invoices: object, **options: object) -> BatchPackage:
    """Build with the test key and IV."""
    return build_batch_package(invoices, key=KEY, iv=IV, **options)  # type: ignore[arg-type]


def decrypt(data: bytes) -> bytes:
    """Decrypt AES-256-CBC/PKCS#7 independently of ksef_facade.crypto."""
    decryptor = Cipher(algorithms.AES(KEY), modes.CBC(IV)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def b64_sha256(data: bytes) -> str:
    """Return the Base64 SHA-256 of data."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def plaintext(package: BatchPackage) -> bytes:
    """Decrypt every part and join them into the package."""
    return b"".join(decrypt(part.read()) for part in package.parts)


def unpack(package: BatchPackage) -> list[tuple[str, bytes]]:
    """Return the (name, bytes) entries of the decrypted package."""
    data = io.BytesIO(plaintext(package))
    if package.compression_type is CompressionType.ZIP:
        with zipfile.ZipFile(data) as archive:
            assert archive.testzip() is None
            return [(name, archive.read(name)) for name in archive.namelist()]

    with tarfile.open(fileobj=data, mode="r:gz") as archive:
        members = archive.getmembers()
        return [(m.name, archive.extractfile(m).read()) for m in members]  # type: ignore[union-attr]


ALL_TYPES = pytest.mark.parametrize("compression", list(CompressionType))


@ALL_TYPES
def test_round_trip_returns_exactly_the_inputs(compression: CompressionType) -> None:
    """Decrypting, joining and unpacking the parts gives back every invoice."""
    invoices = [invoice(n) for n in range(1, 21)]

    with build(invoices, compression_type=compression) as package:
        entries = unpack(package)

    assert entries == [(f"invoice-{n:06d}.xml", invoices[n - 1]) for n in range(1, 21)]


@ALL_TYPES
def test_small_part_size_cuts_several_parts(compression: CompressionType) -> None:
    """A small part size yields several parts, numbered from 1, that join up."""
    invoices = [invoice(n) for n in range(1, 41)]

    with build(invoices, compression_type=compression, part_size=1000) as package:
        assert len(package.parts) > 2
        assert [p.ordinal_number for p in package.parts] == list(
            range(1, len(package.parts) + 1)
        )
        assert all(p.plain_size <= 1000 for p in package.parts)
        assert [content for _, content in unpack(package)] == invoices


@ALL_TYPES
def test_package_hash_and_size_are_of_the_unencrypted_package(
    compression: CompressionType,
) -> None:
    """fileHash and fileSize describe the whole package before encryption."""
    with build(
        [invoice(n) for n in range(1, 30)], compression_type=compression, part_size=2000
    ) as package:
        whole = plaintext(package)

        assert package.file_size == len(whole)
        assert package.file_hash == b64_sha256(whole)


@ALL_TYPES
def test_part_hash_and_size_are_of_the_encrypted_part(
    compression: CompressionType,
) -> None:
    """Each part's fileHash and fileSize describe its encrypted bytes."""
    with build(
        [invoice(n) for n in range(1, 30)], compression_type=compression, part_size=2000
    ) as package:
        for part in package.parts:
            encrypted = part.read()
            assert part.size == len(encrypted)
            assert part.sha256 == b64_sha256(encrypted)


def test_each_part_is_encrypted_on_its_own() -> None:
    """Every part decrypts alone, under the session key and IV, to its slice."""
    with build([invoice(n) for n in range(1, 30)], part_size=1500) as package:
        whole = plaintext(package)

        for part in package.parts:
            start = (part.ordinal_number - 1) * 1500
            assert decrypt(part.read()) == whole[start : start + 1500]


def test_same_inputs_give_the_same_package() -> None:
    """The package is reproducible: no timestamps or randomness inside."""
    invoices = [invoice(n) for n in range(1, 6)]

    with build(invoices) as first, build(invoices) as second:
        assert first.file_hash == second.file_hash


def test_path_inputs_use_file_names(tmp_path: Path) -> None:
    """Path and str inputs become entries named after their files."""
    first, second = tmp_path / "FV-1.xml", tmp_path / "FV-2.xml"
    first.write_bytes(invoice(1))
    second.write_bytes(invoice(2))

    with build([first, str(second)]) as package:
        assert unpack(package) == [("FV-1.xml", invoice(1)), ("FV-2.xml", invoice(2))]
        assert [i.original_name for i in package.invoices] == [str(first), str(second)]


def test_name_and_bytes_pairs_keep_their_names() -> None:
    """(name, bytes) pairs become entries with the given names."""
    with build([("a.xml", invoice(1)), ("b.xml", bytearray(invoice(2)))]) as package:
        assert unpack(package) == [("a.xml", invoice(1)), ("b.xml", invoice(2))]


def test_a_generator_is_consumed_once() -> None:
    """A generator input is read once, in order."""
    pulled: list[int] = []

    def produce() -> Iterator[bytes]:
        for n in range(1, 11):
            pulled.append(n)
            yield invoice(n)

    with build(produce()) as package:
        assert pulled == list(range(1, 11))
        assert [content for _, content in unpack(package)] == [
            invoice(n) for n in range(1, 11)
        ]


def test_manifest_records_each_invoice() -> None:
    """The manifest gives each invoice's entry name, caller's name, size and hash."""
    data = [invoice(1), ("mine.xml", invoice(2))]

    with build(data) as package:
        first, second = package.invoices

    assert (first.ordinal, first.entry_name, first.original_name) == (
        1,
        "invoice-000001.xml",
        None,
    )
    assert (second.ordinal, second.entry_name, second.original_name) == (
        2,
        "mine.xml",
        "mine.xml",
    )
    assert (first.size, first.sha256) == (len(invoice(1)), b64_sha256(invoice(1)))
    assert (second.size, second.sha256) == (len(invoice(2)), b64_sha256(invoice(2)))


def test_manifest_is_a_sequence_in_input_order() -> None:
    """The manifest supports len, negative indexes, slices and iteration."""
    with build([invoice(n) for n in range(1, 6)]) as package:
        manifest = package.invoices

    assert len(manifest) == 5
    assert manifest[-1].entry_name == "invoice-000005.xml"
    assert [entry.ordinal for entry in manifest[1:3]] == [2, 3]
    assert [entry.ordinal for entry in manifest] == [1, 2, 3, 4, 5]


def test_invoices_by_entry_name_maps_archive_names() -> None:
    """invoices_by_entry_name finds an invoice by its archive file name."""
    with build([("x.xml", invoice(1)), ("y.xml", invoice(2))]) as package:
        found = package.invoices_by_entry_name()["y.xml"]

    assert found.ordinal == 2


@ALL_TYPES
def test_open_request_fields_validate_against_the_spec(
    compression: CompressionType, pinned_spec_path: Path
) -> None:
    """to_open_request_fields() is a valid BatchFileInfo of the pinned spec."""
    spec = json.loads(pinned_spec_path.read_text("utf-8"))
    schema = {
        "$ref": "#/components/schemas/BatchFileInfo",
        "components": spec["components"],
    }

    with build(
        [invoice(n) for n in range(1, 20)], compression_type=compression, part_size=900
    ) as package:
        fields = package.to_open_request_fields()

    jsonschema.validate(fields, schema)
    assert fields["compressionType"] == compression.value
    assert [p["ordinalNumber"] for p in fields["fileParts"]] == list(  # type: ignore[attr-defined]
        range(1, len(package.parts) + 1)
    )


def test_default_limits_are_the_documented_ones() -> None:
    """BatchLimits defaults follow limity.md and weryfikacja-faktury.md."""
    limits = BatchLimits()

    assert (limits.max_invoices, limits.max_parts) == (10_000, 50)
    assert (limits.max_invoice_size, limits.max_invoice_with_attachment_size) == (
        1_000_000,
        3_000_000,
    )
    assert (limits.max_part_size, limits.max_package_size) == (
        100_000_000,
        5_000_000_000,
    )


def test_too_many_invoices_names_the_first_extra_one() -> None:
    """The invoice past max_invoices is named in the error."""
    invoices = [invoice(n) for n in range(1, 5)]

    with pytest.raises(TooManyInvoicesError, match=r"invoice #4 ") as caught:
        build(invoices, limits=BatchLimits(max_invoices=3))

    assert caught.value.invoice_index == 4


def test_invoice_over_one_megabyte_without_attachment_is_rejected() -> None:
    """An invoice over 1,000,000 bytes without attachments is named and refused."""
    big = invoice(2, padding_bytes=1_000_000)

    with pytest.raises(InvoiceTooLargeError, match="1000000-byte") as caught:
        build([invoice(1), ("big.xml", big)])

    assert (caught.value.invoice_index, caught.value.invoice_name) == (2, "big.xml")


def test_invoice_with_attachment_may_reach_three_megabytes() -> None:
    """An invoice with a Zalacznik element may be up to 3,000,000 bytes."""
    big = with_attachment(invoice(1, padding_bytes=2_000_000))

    with build([big]) as package:
        assert package.invoices[0].size == len(big)


def test_invoice_with_attachment_over_three_megabytes_is_rejected() -> None:
    """An invoice over 3,000,000 bytes is refused even with attachments."""
    big = with_attachment(invoice(1, padding_bytes=3_000_000))

    with pytest.raises(InvoiceTooLargeError, match="3000000-byte"):
        build([big])


def test_oversized_file_is_rejected_before_reading(tmp_path: Path) -> None:
    """A file over the largest invoice limit is refused from its size alone."""
    path = tmp_path / "huge.xml"
    path.write_bytes(b"<a/>" + b" " * 3_000_000)

    with pytest.raises(InvoiceTooLargeError) as caught:
        build([path])

    assert caught.value.invoice_name == str(path)


def test_too_many_parts_is_rejected() -> None:
    """A package needing more than max_parts parts names where it overflowed."""
    invoices = [invoice(n) for n in range(1, 40)]

    with pytest.raises(TooManyPartsError, match="more than 2 parts") as caught:
        build(invoices, part_size=1000, limits=BatchLimits(max_parts=2))

    index = caught.value.invoice_index
    assert index is not None
    assert caught.value.invoice_name == f"invoice-{index:06d}.xml"
    assert f"while adding invoice #{index} " in str(caught.value)


def test_package_over_total_size_is_rejected() -> None:
    """A package growing past max_package_size is refused."""
    invoices = [invoice(n) for n in range(1, 40)]

    with pytest.raises(PackageTooLargeError, match="5000 bytes"):
        build(invoices, limits=BatchLimits(max_package_size=5000))


@pytest.mark.parametrize(
    ("xml", "problem"),
    [
        (b"", "empty"),
        (b"  \n", "white space"),
        (b"<Faktura><Fa></Faktura>", "not well-formed"),
        (b"\xef\xbb\xbf<Faktura/>", "byte order mark"),
        (b"<Faktura><?pi data?></Faktura>", "processing instructions"),
        (
            b'<?xml version="1.0" encoding="ISO-8859-2"?><Faktura/>',
            "other than UTF-8",
        ),
    ],
)
def test_bad_xml_is_rejected_with_its_name(xml: bytes, problem: str) -> None:
    """Empty or malformed XML is refused, naming the invoice and the problem."""
    with pytest.raises(InvalidInvoiceXmlError, match=problem) as caught:
        build([invoice(1), ("bad.xml", xml)])

    assert (caught.value.invoice_index, caught.value.invoice_name) == (2, "bad.xml")
    assert "bad.xml" in str(caught.value)


def test_check_xml_false_skips_the_well_formedness_check() -> None:
    """check_xml=False lets XML through unparsed."""
    with build([b"<not-closed>"], check_xml=False) as package:
        assert unpack(package) == [("invoice-000001.xml", b"<not-closed>")]


def test_duplicate_names_are_rejected() -> None:
    """A second invoice with an already used file name is refused."""
    data = [("a.xml", invoice(1)), ("b.xml", invoice(2)), ("a.xml", invoice(3))]

    with pytest.raises(DuplicateInvoiceNameError, match="invoice #1") as caught:
        build(data)

    assert caught.value.invoice_index == 3


@pytest.mark.parametrize(
    "data",
    [
        [invoice(1), invoice(2), ("invoice-000002.xml", invoice(3))],
        [invoice(1), ("invoice-000003.xml", invoice(2)), invoice(3)],
    ],
)
def test_names_clashing_with_generated_names_are_duplicates(
    data: list[object],
) -> None:
    """A given name equal to one generated for bare bytes is a duplicate."""
    with pytest.raises(DuplicateInvoiceNameError, match=r"invoice-000003|#2") as caught:
        build(data)

    assert caught.value.invoice_index == 3


def test_paths_with_the_same_file_name_are_duplicates(tmp_path: Path) -> None:
    """Two files with the same name in different folders are refused."""
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "FV.xml").write_bytes(invoice(1))

    with pytest.raises(DuplicateInvoiceNameError):
        build([tmp_path / "one" / "FV.xml", tmp_path / "two" / "FV.xml"])


@pytest.mark.parametrize(
    "name",
    [
        "../a.xml",
        "/abs.xml",
        "a/b.xml",
        "a\\b.xml",
        "",
        "..",
        "C:a.xml",
        "a\nb.xml",
        " a.xml",
        "x" * 101,
    ],
)
def test_unsafe_names_are_rejected(name: str) -> None:
    """Names that are not plain, printable, short file names are refused."""
    with pytest.raises(UnsafeInvoiceNameError) as caught:
        build([(name, invoice(1))])

    assert caught.value.invoice_index == 1


@pytest.mark.parametrize("item", [42, ("a.xml",), ("a.xml", "text"), "<Faktura/>"])
def test_unsupported_inputs_raise_type_error(item: object) -> None:
    """Inputs that are neither bytes, a path nor a (name, bytes) pair fail."""
    with pytest.raises(TypeError, match="invoice #1"):
        build([item])


def test_empty_batch_is_rejected() -> None:
    """A batch without invoices is refused."""
    with pytest.raises(EmptyBatchError):
        build([])


def test_errors_belong_to_the_facade_tree() -> None:
    """Builder errors are KsefError and ValueError."""
    assert issubclass(BatchPackageError, KsefError)
    assert issubclass(TooManyPartsError, ValueError)


def test_small_packages_stay_in_memory(tmp_path: Path) -> None:
    """Parts under the memory threshold create no files at all."""
    with build([invoice(1)], temp_dir=tmp_path) as package:
        assert package.parts[0].path is None
        assert list(tmp_path.iterdir()) == []


def test_memory_stays_below_the_package_size(tmp_path: Path) -> None:
    """Building a 15 MB package from a generator never holds half of it in memory."""

    def produce() -> Iterator[bytes]:
        # Random hex compresses about 2:1, so the package grows ~4 kB per invoice.
        for n in range(1, 2501):
            noise = os.urandom(4000).hex().encode()
            yield invoice(n).replace(b"</Faktura>", b"<!--" + noise + b"--></Faktura>")

    tracemalloc.start()
    try:
        package = build(produce(), memory_threshold=0, temp_dir=tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    with package:
        assert package.file_size > 10_000_000
        assert peak < package.file_size / 2


def test_spooled_parts_are_removed_on_close(tmp_path: Path) -> None:
    """Parts spooled to files are deleted when the package is closed."""
    package = build(
        [invoice(n) for n in range(1, 20)],
        part_size=1000,
        memory_threshold=0,
        temp_dir=tmp_path,
    )
    assert all(part.path is not None and part.path.is_file() for part in package.parts)

    package.close()

    assert package.closed
    assert list(tmp_path.iterdir()) == []


def test_spooled_parts_are_removed_when_the_package_is_collected(
    tmp_path: Path,
) -> None:
    """A package dropped without close() still removes its files."""
    build([invoice(1)], memory_threshold=0, temp_dir=tmp_path)
    gc.collect()

    assert list(tmp_path.iterdir()) == []


def test_files_are_removed_when_a_limit_fails_mid_stream(tmp_path: Path) -> None:
    """A limit broken after parts were spooled leaves no file behind."""
    with pytest.raises(TooManyPartsError):
        build(
            [invoice(n) for n in range(1, 40)],
            part_size=1000,
            memory_threshold=0,
            temp_dir=tmp_path,
            limits=BatchLimits(max_parts=3),
        )

    assert list(tmp_path.iterdir()) == []


@ALL_TYPES
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_files_are_removed_when_the_input_fails(
    tmp_path: Path, compression: CompressionType, error: type[BaseException]
) -> None:
    """An exception or interruption raised by the input leaves no file behind."""

    def produce() -> Iterator[bytes]:
        for n in range(1, 200):
            yield invoice(n)
        raise error("input broke")

    with pytest.raises(error, match="input broke"):
        build(
            produce(),
            compression_type=compression,
            part_size=1000,
            memory_threshold=0,
            temp_dir=tmp_path,
        )

    assert list(tmp_path.iterdir()) == []


def test_targz_members_are_plain_regular_files() -> None:
    """TarGz members are regular 0644 files with mtime 0, even with 100-byte names."""
    name = "n" * 96 + ".xml"

    with build([(name, invoice(1))], compression_type=CompressionType.TAR_GZ) as p:
        data = io.BytesIO(plaintext(p))

    with tarfile.open(fileobj=data, mode="r:gz") as archive:
        (member,) = archive.getmembers()
    assert (member.name, member.isreg(), member.mode, member.mtime) == (
        name,
        True,
        0o644,
        0,
    )


def test_zip64_records_are_written_when_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the classic ZIP limits the archive switches to ZIP64 and stays readable."""
    monkeypatch.setattr(_batch_archive, "ZIP32_MAX_OFFSET", 2000)
    monkeypatch.setattr(_batch_archive, "ZIP32_MAX_COUNT", 3)
    invoices = [invoice(n) for n in range(1, 8)]

    with build(invoices) as package:
        whole = plaintext(package)
        entries = unpack(package)

    assert b"PK\x06\x06" in whole  # the ZIP64 end of central directory record
    assert [content for _, content in entries] == invoices


@pytest.mark.parametrize(
    "options",
    [{"part_size": 0}, {"part_size": 100_000_001}, {"compression_level": 10}],
)
def test_bad_settings_raise_value_error(options: dict[str, int]) -> None:
    """Part sizes outside the limit and unknown levels are refused."""
    with pytest.raises(ValueError, match=next(iter(options))):
        build([invoice(1)], **options)
