"""Reading structured invoices (FA(2), FA(3)) the way KSeF checks them on receipt.

faktury/weryfikacja-faktury.md: an invoice must be well-formed XML 1.0 in UTF-8
without a BOM, its prolog may not declare another encoding, it may not contain
processing instructions, and it must match the schema declared when the session was
opened. The simulator checks the form code and namespace rather than the full XSD.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

__all__ = [
    "FORM_CODES",
    "InvoiceFacts",
    "InvoiceXmlError",
    "form_code_key",
    "read_invoice",
]

# spec: InvoiceMetadata.formCode, the schemas KSeF accepts (systemCode, version, value).
FORM_CODES = {
    ("FA (2)", "1-0E", "FA"): "http://crd.gov.pl/wzor/2023/06/29/12648/",
    ("FA (3)", "1-0E", "FA"): "http://crd.gov.pl/wzor/2025/06/25/13775/",
}
# spec: InvoiceType values for the FA family's RodzajFaktury.
_INVOICE_TYPES = {
    "VAT": "Vat",
    "ZAL": "Zal",
    "KOR": "Kor",
    "ROZ": "Roz",
    "UPR": "Upr",
    "KOR_ZAL": "KorZal",
    "KOR_ROZ": "KorRoz",
}
_ENCODING = re.compile(rb"""^<\?xml[^>]*encoding\s*=\s*["']([^"']+)["']""")
# weryfikacja-faktury.md: discouraged Unicode characters are not allowed.
_DISCOURAGED = re.compile(
    "[\x7f-\x84\x86-\x9f\ufdd0-\ufdef]|[\U0001fffe-\U0001ffff]|[\U0010fffe-\U0010ffff]"
)


class InvoiceXmlError(Exception):
    """Raised when an invoice fails a file-level check; the message says which."""


@dataclass(frozen=True)
class InvoiceFacts:
    """What the simulator reads from an accepted invoice."""

    seller_nip: str
    seller_name: str | None
    buyer_type: str
    buyer_value: str | None
    buyer_name: str | None
    invoice_number: str
    issue_date: date
    invoice_type: str
    currency: str
    net: float
    vat: float
    gross: float
    has_attachment: bool
    is_self_invoicing: bool


def form_code_key(form_code: dict[str, str]) -> tuple[str, str, str]:
    """Return the (systemCode, schemaVersion, value) triple of a form code."""
    return (form_code["systemCode"], form_code["schemaVersion"], form_code["value"])


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element | None, *path: str) -> ET.Element | None:
    for name in path:
        if element is None:
            return None
        element = next((c for c in element if _local(c.tag) == name), None)
    return element


def _text(element: ET.Element | None, *path: str) -> str | None:
    found = _child(element, *path)
    if found is None or found.text is None:
        return None
    return found.text.strip()


def _amount(element: ET.Element | None, names: list[str]) -> float:
    total = Decimal(0)
    for name in names:
        value = _text(element, name)
        if value:
            try:
                total += Decimal(value)
            except InvalidOperation as exc:
                raise InvoiceXmlError(f"{name} is not a number") from exc
    return float(total)


def _parse(content: bytes) -> ET.Element:
    if content.startswith(b"\xef\xbb\xbf"):
        raise InvoiceXmlError("the file starts with a UTF-8 BOM")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvoiceXmlError("the file is not valid UTF-8") from exc

    declared = _ENCODING.match(content)
    if declared and declared.group(1).decode("ascii", "replace").lower() != "utf-8":
        raise InvoiceXmlError("the XML prolog declares an encoding other than UTF-8")
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise InvoiceXmlError("document type declarations are not allowed")
    if _DISCOURAGED.search(text):
        raise InvoiceXmlError("the file contains discouraged Unicode characters")

    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "pi"))
    root: ET.Element | None = None
    try:
        parser.feed(content)
        parser.close()
        for event, element in parser.read_events():  # type: ignore[misc]
            if event == "pi":
                raise InvoiceXmlError("processing instructions are not allowed")
            if root is None and isinstance(element, ET.Element):
                root = element
    except ET.ParseError as exc:
        raise InvoiceXmlError(f"the file is not well-formed XML: {exc}") from exc
    if root is None:
        raise InvoiceXmlError("the file has no root element")
    return root


def _check_form(root: ET.Element, form: tuple[str, str, str]) -> None:
    namespace = FORM_CODES[form]
    if root.tag != f"{{{namespace}}}Faktura":
        raise InvoiceXmlError(f"the root element is not Faktura of {form[0]}")

    code = _child(root, "Naglowek", "KodFormularza")
    declared = (
        code.get("kodSystemowy") if code is not None else None,
        code.get("wersjaSchemy") if code is not None else None,
        (code.text or "").strip() if code is not None else None,
    )
    if declared != form:
        raise InvoiceXmlError("KodFormularza does not match the session's form code")


def read_invoice(content: bytes, form: tuple[str, str, str]) -> InvoiceFacts:
    """Check ``content`` against ``form`` and return the facts KSeF records."""
    root = _parse(content)
    _check_form(root, form)

    seller = _child(root, "Podmiot1", "DaneIdentyfikacyjne")
    buyer = _child(root, "Podmiot2", "DaneIdentyfikacyjne")
    fa = _child(root, "Fa")
    seller_nip = _text(seller, "NIP")
    number = _text(fa, "P_2")
    issued = _text(fa, "P_1")
    kind = _text(fa, "RodzajFaktury")
    if not seller_nip or not number or not issued or not kind:
        raise InvoiceXmlError("Podmiot1 NIP, P_1, P_2 and RodzajFaktury are required")

    try:
        issue_date = date.fromisoformat(issued)
    except ValueError as exc:
        raise InvoiceXmlError("P_1 is not a date") from exc
    if kind not in _INVOICE_TYPES:
        raise InvoiceXmlError("RodzajFaktury has an unknown value")

    buyer_type, buyer_value = "None", None
    if _text(buyer, "NIP"):
        buyer_type, buyer_value = "Nip", _text(buyer, "NIP")
    elif _text(buyer, "NrVatUE"):
        buyer_type = "VatUe"
        buyer_value = f"{_text(buyer, 'KodUE') or ''}{_text(buyer, 'NrVatUE')}"
    elif _text(buyer, "NrID"):
        buyer_type, buyer_value = "Other", _text(buyer, "NrID")

    net_fields = ["P_13_1", "P_13_2", "P_13_3", "P_13_4", "P_13_5", "P_13_6_1"]
    net_fields += ["P_13_6_2", "P_13_6_3", "P_13_7", "P_13_8", "P_13_9", "P_13_10"]
    net_fields += ["P_13_11"]
    vat_fields = ["P_14_1", "P_14_2", "P_14_3", "P_14_4", "P_14_5"]
    return InvoiceFacts(
        seller_nip=seller_nip,
        seller_name=_text(seller, "Nazwa"),
        buyer_type=buyer_type,
        buyer_value=buyer_value,
        buyer_name=_text(buyer, "Nazwa"),
        invoice_number=number,
        issue_date=issue_date,
        invoice_type=_INVOICE_TYPES[kind],
        currency=_text(fa, "KodWaluty") or "PLN",
        net=_amount(fa, net_fields),
        vat=_amount(fa, vat_fields),
        gross=_amount(fa, ["P_15"]),
        has_attachment=_child(root, "Zalacznik") is not None,
        is_self_invoicing=_text(fa, "Adnotacje", "P_17") == "1",
    )
