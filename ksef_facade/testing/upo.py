"""UPO documents (Urzędowe Poświadczenie Odbioru) in the v4-3 structure.

faktury/upo/schemy/upo-v4-3.xsd and the examples in faktury/upo/przyklady: a
``Potwierdzenie`` names the receiving party, the session, the authentication context
and the KSeF token used, the logical structure and form code, and one ``Dokument`` per
accepted invoice; a session UPO adds ``OpisPotwierdzenia`` with paging (at most 10 000
documents per page, sesja-sprawdzenie-stanu-i-pobranie-upo.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from .state import InvoiceRecord

__all__ = ["UPO_NAMESPACE", "UpoContext", "build_upo"]

UPO_NAMESPACE = "http://upo.schematy.mf.gov.pl/KSeF/v4-3"
# faktury/upo/schemy/upo-v4-3.xsd: Dokument maxOccurs="10000" per UPO page.
MAX_DOCUMENTS_PER_PAGE = 10_000


@dataclass(frozen=True)
class UpoContext:
    """Session-level facts every UPO of a session repeats."""

    session_reference: str
    context_nip: str
    token_reference: str | None
    system_code: str
    schema_version: str


def _element(name: str, value: str, indent: int) -> str:
    return f"{'  ' * indent}<{name}>{escape(value)}</{name}>"


def _document(invoice: InvoiceRecord) -> list[str]:
    facts = invoice.metadata or {}
    return [
        "  <Dokument>",
        _element("NipSprzedawcy", str(facts.get("sellerNip", invoice.context_nip)), 2),
        _element("NumerKSeFDokumentu", invoice.ksef_number or "", 2),
        _element("NumerFaktury", invoice.invoice_number or "", 2),
        _element("DataWystawieniaFaktury", str(facts.get("issueDate", "")), 2),
        _element(
            "DataPrzeslaniaDokumentu",
            invoice.received.isoformat("T", "milliseconds"),
            2,
        ),
        _element(
            "DataNadaniaNumeruKSeF", invoice.ready_at.isoformat("T", "milliseconds"), 2
        ),
        _element("SkrotDokumentu", invoice.invoice_hash, 2),
        _element("TrybWysylki", "Offline" if invoice.offline else "Online", 2),
        "  </Dokument>",
    ]


def build_upo(
    context: UpoContext,
    invoices: list[InvoiceRecord],
    page: tuple[int, int, int, int, int] | None = None,
) -> bytes:
    """Return the UPO XML for ``invoices``.

    ``page`` is (page, pages, first document, last document, total) for session UPOs.
    """
    # api-changelog.md: NazwaStrukturyLogicznej is Schemat_{systemCode}_v{version}.xsd.
    structure = (
        f"Schemat_{context.system_code.replace(' ', '')}_v{context.schema_version}.xsd"
    )
    if context.token_reference:
        credential = _element("NumerReferencyjnyTokenaKSeF", context.token_reference, 2)
    else:
        credential = _element("SkrotDokumentuUwierzytelniajacego", "", 2)

    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<Potwierdzenie xmlns="{UPO_NAMESPACE}">',
        _element("NazwaPodmiotuPrzyjmujacego", "Ministerstwo Finansów", 1),
        _element("NumerReferencyjnySesji", context.session_reference, 1),
        "  <Uwierzytelnienie>",
        "    <IdKontekstu>",
        _element("Nip", context.context_nip, 3),
        "    </IdKontekstu>",
        credential,
        "  </Uwierzytelnienie>",
    ]
    if page is not None:
        labels = (
            "Strona",
            "LiczbaStron",
            "ZakresDokumentowOd",
            "ZakresDokumentowDo",
            "CalkowitaLiczbaDokumentow",
        )
        lines.append("  <OpisPotwierdzenia>")
        lines += [_element(n, str(v), 2) for n, v in zip(labels, page, strict=True)]
        lines.append("  </OpisPotwierdzenia>")

    lines.append(_element("NazwaStrukturyLogicznej", structure, 1))
    lines.append(_element("KodFormularza", context.system_code, 1))
    for invoice in invoices:
        lines += _document(invoice)
    lines.append("</Potwierdzenie>")
    return "\n".join(lines).encode("utf-8")
