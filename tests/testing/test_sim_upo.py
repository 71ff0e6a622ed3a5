"""UPO documents follow the v4-3 schema's structure (faktury/upo/schemy)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from ksef_facade.testing.state import InvoiceRecord, Status
from ksef_facade.testing.upo import UPO_NAMESPACE, UpoContext, build_upo

XSD = (
    Path(__file__).resolve().parents[3]
    / "shared/ksef-docs/faktury/upo/schemy/upo-v4-3.xsd"
)
XS = "{http://www.w3.org/2001/XMLSchema}"
WHEN = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)


def _sequence(parent_name: str) -> list[str]:
    schema = ET.parse(XSD).getroot()  # noqa: S314 - the official schema file
    for element in schema.iter(f"{XS}element"):
        if element.get("name") == parent_name:
            sequence = element.find(f"{XS}complexType/{XS}sequence")
            assert sequence is not None
            return [e.get("name", "") for e in sequence.findall(f"{XS}element")]
    raise AssertionError(parent_name)


def _upo(page: tuple[int, int, int, int, int] | None) -> ET.Element:
    invoice = InvoiceRecord(
        ordinal=1,
        reference_number="20260115-EE-0000000000-0000000000-00",
        session_reference="20260115-SO-0000000000-0000000000-00",
        context_nip="5265877635",
        received=WHEN,
        ready_at=WHEN,
        invoice_hash="A" * 43 + "=",
        outcome=Status(200, "Sukces"),
        ksef_number="5265877635-20260115-0100001AF629-00",
        invoice_number="FV/1",
        metadata={"sellerNip": "5265877635", "issueDate": "2026-01-10"},
    )
    context = UpoContext(
        "20260115-SO-0000000000-0000000000-00", "5265877635", "TK-REF", "FA (3)", "1-0E"
    )
    return ET.fromstring(build_upo(context, [invoice], page))  # noqa: S314


def _names(element: ET.Element) -> list[str]:
    return [child.tag.split("}")[1] for child in element]


def test_root_follows_the_schema_sequence() -> None:
    """Potwierdzenie's children appear in the XSD's order."""
    expected = _sequence("Potwierdzenie")
    actual = _names(_upo((1, 1, 1, 1, 1)))
    assert [name for name in expected if name in actual] == actual
    assert actual[-1] == "Dokument"


def test_invoice_upo_has_no_page_description() -> None:
    """A single-invoice UPO omits OpisPotwierdzenia (minOccurs 0)."""
    assert "OpisPotwierdzenia" not in _names(_upo(None))


def test_document_follows_the_schema_sequence() -> None:
    """Dokument's children are exactly the XSD's sequence."""
    document = _upo(None).find(f"{{{UPO_NAMESPACE}}}Dokument")
    assert document is not None
    assert _names(document) == _sequence("Dokument")


def test_page_description_follows_the_schema_sequence() -> None:
    """OpisPotwierdzenia's children are exactly the XSD's sequence."""
    description = _upo((1, 1, 1, 1, 1)).find(f"{{{UPO_NAMESPACE}}}OpisPotwierdzenia")
    assert description is not None
    assert _names(description) == _sequence("OpisPotwierdzenia")


def test_logical_structure_name() -> None:
    """NazwaStrukturyLogicznej is Schemat_FA(3)_v1-0E.xsd (api-changelog.md)."""
    root = _upo(None)
    assert (
        root.findtext(f"{{{UPO_NAMESPACE}}}NazwaStrukturyLogicznej")
        == "Schemat_FA(3)_v1-0E.xsd"
    )
    assert root.findtext(f"{{{UPO_NAMESPACE}}}KodFormularza") == "FA (3)"
