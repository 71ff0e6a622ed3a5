"""Reading invoices of every supported schema, and refusing bad files."""

from __future__ import annotations

from datetime import date

import pytest
from simkit import PEF_XML, RR_XML, invoice_xml

from ksef_facade.testing.invoicexml import InvoiceXmlError, read_invoice

FA3 = ("FA (3)", "1-0E", "FA")
RR = ("FA_RR (1)", "1-1E", "FA_RR")
PEF = ("PEF (3)", "2-1", "PEF")
PEF_KOR = ("PEF_KOR (3)", "2-1", "PEF")


def test_fa3_facts() -> None:
    """FA(3): seller, buyer, number, date, kind and amounts are read."""
    facts = read_invoice(invoice_xml("FV/9"), FA3)
    assert (facts.seller_nip, facts.buyer_value) == ("5265877635", "7352765225")
    assert (facts.invoice_number, facts.issue_date) == ("FV/9", date(2026, 1, 10))
    assert (facts.invoice_type, facts.gross) == ("Vat", 4001.49)


def test_rr_facts() -> None:
    """FA_RR(1): the issuer is Podmiot1, the number P_4C, the date P_4B."""
    facts = read_invoice(RR_XML, RR)
    assert (facts.seller_nip, facts.invoice_number) == ("5265877635", "RR/1")
    assert (facts.issue_date, facts.invoice_type, facts.gross) == (
        date(2026, 1, 5),
        "VatRr",
        107.0,
    )


def test_pef_facts() -> None:
    """PEF(3): UBL supplier tax ID without the PL prefix, ID and totals."""
    facts = read_invoice(PEF_XML, PEF)
    assert (facts.seller_nip, facts.buyer_value) == ("5265877635", "7352765225")
    assert (facts.invoice_number, facts.currency, facts.vat) == ("PEF/1", "EUR", 23.0)
    assert facts.invoice_type == "VatPef"


def test_invoice_in_a_credit_note_session_is_refused() -> None:
    """A UBL Invoice is not a PEF_KOR CreditNote."""
    with pytest.raises(InvoiceXmlError, match="root element"):
        read_invoice(PEF_XML, PEF_KOR)


def test_doctype_is_refused() -> None:
    """Document type declarations (and so entity expansion) are refused."""
    with pytest.raises(InvoiceXmlError, match="document type"):
        read_invoice(b'<!DOCTYPE x [<!ENTITY a "b">]><x/>', FA3)


def test_other_encoding_is_refused() -> None:
    """weryfikacja-faktury.md: a prolog naming another encoding is refused."""
    latin = invoice_xml("FV/L").replace(b'encoding="utf-8"', b'encoding="ISO-8859-2"')
    with pytest.raises(InvoiceXmlError, match="encoding"):
        read_invoice(latin, FA3)


def test_discouraged_characters_are_refused() -> None:
    """weryfikacja-faktury.md: characters such as U+0080 are refused."""
    bad = invoice_xml("FV/\u0080")
    with pytest.raises(InvoiceXmlError, match="Unicode"):
        read_invoice(bad, FA3)
