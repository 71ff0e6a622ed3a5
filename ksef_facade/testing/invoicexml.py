"""Reading structured invoices (FA(2), FA(3)) the way KSeF checks them on receipt.

faktury/weryfikacja-faktury.md: an invoice must be well-formed XML 1.0 in UTF-8
without a BOM, its prolog may not declare another encoding, it may not contain
processing instructions, and it must match the schema declared when the session was
opened. The simulator checks the root element, namespace and form code and reads the
fields KSeF records, rather than validating against the full XSD.
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

_UBL = "urn:oasis:names:specification:ubl:schema:xsd:"
# spec: InvoiceMetadata.formCode, the schemas KSeF accepts (systemCode, version,
# value), with each schema's root element (targetNamespace from faktury/schemy).
FORM_CODES = {
    ("FA (2)", "1-0E", "FA"): "{http://crd.gov.pl/wzor/2023/06/29/12648/}Faktura",
    ("FA (3)", "1-0E", "FA"): "{http://crd.gov.pl/wzor/2025/06/25/13775/}Faktura",
    ("FA_RR (1)", "1-1E", "FA_RR"): "{http://crd.gov.pl/wzor/2026/03/06/14189/}Faktura",
    ("PEF (3)", "2-1", "PEF"): f"{{{_UBL}Invoice-2}}Invoice",
    ("PEF_KOR (3)", "2-1", "PEF"): f"{{{_UBL}CreditNote-2}}CreditNote",
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
    "VAT_RR": "VatRr",
    "KOR_VAT_RR": "KorVatRr",
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
    if root.tag != FORM_CODES[form]:
        raise InvoiceXmlError(f"the root element does not match the {form[0]} schema")
    if form[2] == "PEF":
        return

    code = _child(root, "Naglowek", "KodFormularza")
    declared = (
        code.get("kodSystemowy") if code is not None else None,
        code.get("wersjaSchemy") if code is not None else None,
        (code.text or "").strip() if code is not None else None,
    )
    if declared != form:
        raise InvoiceXmlError("KodFormularza does not match the session's form code")


def _date(value: str | None, name: str) -> date:
    try:
        return date.fromisoformat(value or "")
    except ValueError as exc:
        raise InvoiceXmlError(f"{name} is not a date") from exc


def _buyer(buyer: ET.Element | None) -> tuple[str, str | None]:
    if _text(buyer, "NIP"):
        return "Nip", _text(buyer, "NIP")
    if _text(buyer, "NrVatUE"):
        return "VatUe", f"{_text(buyer, 'KodUE') or ''}{_text(buyer, 'NrVatUE')}"
    if _text(buyer, "NrID"):
        return "Other", _text(buyer, "NrID")
    return "None", None


def _read_fa(root: ET.Element) -> InvoiceFacts:
    seller = _child(root, "Podmiot1", "DaneIdentyfikacyjne")
    buyer = _child(root, "Podmiot2", "DaneIdentyfikacyjne")
    fa = _child(root, "Fa")
    seller_nip, number = _text(seller, "NIP"), _text(fa, "P_2")
    kind = _text(fa, "RodzajFaktury")
    if not seller_nip or not number or not kind:
        raise InvoiceXmlError("Podmiot1 NIP, P_2 and RodzajFaktury are required")
    if kind not in _INVOICE_TYPES:
        raise InvoiceXmlError("RodzajFaktury has an unknown value")

    buyer_type, buyer_value = _buyer(buyer)
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
        issue_date=_date(_text(fa, "P_1"), "P_1"),
        invoice_type=_INVOICE_TYPES[kind],
        currency=_text(fa, "KodWaluty") or "PLN",
        net=_amount(fa, net_fields),
        vat=_amount(fa, vat_fields),
        gross=_amount(fa, ["P_15"]),
        has_attachment=_child(root, "Zalacznik") is not None,
        is_self_invoicing=_text(fa, "Adnotacje", "P_17") == "1",
    )


def _read_rr(root: ET.Element) -> InvoiceFacts:
    # FA_RR: Podmiot1 issues the invoice; P_4B is its date, P_4C its number.
    issuer = _child(root, "Podmiot1", "DaneIdentyfikacyjne")
    farmer = _child(root, "Podmiot2", "DaneIdentyfikacyjne")
    rr = _child(root, "FakturaRR")
    issuer_nip, number = _text(issuer, "NIP"), _text(rr, "P_4C")
    kind = _text(rr, "RodzajFaktury")
    if not issuer_nip or not number or kind not in ("VAT_RR", "KOR_VAT_RR"):
        raise InvoiceXmlError("Podmiot1 NIP, P_4C and RodzajFaktury are required")

    buyer_type, buyer_value = _buyer(farmer)
    return InvoiceFacts(
        seller_nip=issuer_nip,
        seller_name=_text(issuer, "Nazwa"),
        buyer_type=buyer_type,
        buyer_value=buyer_value,
        buyer_name=_text(farmer, "Nazwa"),
        invoice_number=number,
        issue_date=_date(_text(rr, "P_4B"), "P_4B"),
        invoice_type=_INVOICE_TYPES[kind or ""],
        currency=_text(rr, "KodWaluty") or "PLN",
        net=_amount(rr, ["P_11_1"]),
        vat=_amount(rr, ["P_11_2"]),
        gross=_amount(rr, ["P_12_1"]),
        has_attachment=False,
        is_self_invoicing=False,
    )


def _tax_id(party: ET.Element | None) -> str | None:
    value = _text(party, "PartyTaxScheme", "CompanyID") or _text(
        party, "PartyLegalEntity", "CompanyID"
    )
    if value and value.upper().startswith("PL"):
        value = value[2:]
    return value


def _read_pef(root: ET.Element) -> InvoiceFacts:
    # PEF invoices are UBL 2.1 documents (faktury/schemy/PEF).
    seller = _child(root, "AccountingSupplierParty", "Party")
    buyer = _child(root, "AccountingCustomerParty", "Party")
    seller_nip, number = _tax_id(seller), _text(root, "ID")
    if not seller_nip or not number:
        raise InvoiceXmlError("the supplier's tax ID and the document ID are required")

    buyer_id = _tax_id(buyer)
    totals = _child(root, "LegalMonetaryTotal")
    return InvoiceFacts(
        seller_nip=seller_nip,
        seller_name=_text(seller, "PartyLegalEntity", "RegistrationName"),
        buyer_type="Nip" if buyer_id and buyer_id.isdigit() else "Other",
        buyer_value=buyer_id,
        buyer_name=_text(buyer, "PartyLegalEntity", "RegistrationName"),
        invoice_number=number,
        issue_date=_date(_text(root, "IssueDate"), "IssueDate"),
        invoice_type="KorPef" if _local(root.tag) == "CreditNote" else "VatPef",
        currency=_text(root, "DocumentCurrencyCode") or "PLN",
        net=_amount(totals, ["TaxExclusiveAmount"]),
        vat=_amount(_child(root, "TaxTotal"), ["TaxAmount"]),
        gross=_amount(totals, ["TaxInclusiveAmount"]),
        has_attachment=False,
        is_self_invoicing=False,
    )


def read_invoice(content: bytes, form: tuple[str, str, str]) -> InvoiceFacts:
    """Check ``content`` against ``form`` and return the facts KSeF records."""
    root = _parse(content)
    _check_form(root, form)
    if form[2] == "PEF":
        return _read_pef(root)
    if form[2] == "FA_RR":
        return _read_rr(root)
    return _read_fa(root)
