"""A tiny KSeF client written with plain httpx and cryptography, to test the simulator.

It is deliberately independent of ksef_facade's client code: it follows the docs
(uwierzytelnianie.md, sesja-interaktywna.md, sesja-wsadowa.md) step by step.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
import time
import zipfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ksef_facade.testing.pytest_plugin import SimulatorEnv

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "ksef-samples"
FA3 = {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"}
FA2 = {"systemCode": "FA (2)", "schemaVersion": "1-0E", "value": "FA"}
NIP = "5265877635"
BUYER_NIP = "7352765225"


RR_XML = b"""<?xml version="1.0" encoding="utf-8"?>
<Faktura xmlns="http://crd.gov.pl/wzor/2026/03/06/14189/">
  <Naglowek>
    <KodFormularza kodSystemowy="FA_RR (1)" wersjaSchemy="1-1E">FA_RR</KodFormularza>
  </Naglowek>
  <Podmiot1><DaneIdentyfikacyjne><NIP>5265877635</NIP><Nazwa>Skup</Nazwa>
  </DaneIdentyfikacyjne></Podmiot1>
  <Podmiot2><DaneIdentyfikacyjne><NIP>7352765225</NIP><Nazwa>Rolnik</Nazwa>
  </DaneIdentyfikacyjne></Podmiot2>
  <FakturaRR><KodWaluty>PLN</KodWaluty><P_4B>2026-01-05</P_4B><P_4C>RR/1</P_4C>
  <P_11_1>100.00</P_11_1><P_11_2>7.00</P_11_2><P_12_1>107.00</P_12_1>
  <RodzajFaktury>VAT_RR</RodzajFaktury></FakturaRR>
</Faktura>"""

PEF_XML = b"""<?xml version="1.0" encoding="utf-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
 xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
 xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:ID>PEF/1</cbc:ID><cbc:IssueDate>2026-01-06</cbc:IssueDate>
  <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
  <cac:AccountingSupplierParty><cac:Party><cac:PartyTaxScheme>
    <cbc:CompanyID>PL5265877635</cbc:CompanyID></cac:PartyTaxScheme></cac:Party>
  </cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty><cac:Party><cac:PartyTaxScheme>
    <cbc:CompanyID>PL7352765225</cbc:CompanyID></cac:PartyTaxScheme></cac:Party>
  </cac:AccountingCustomerParty>
  <cac:TaxTotal><cbc:TaxAmount currencyID="EUR">23.00</cbc:TaxAmount></cac:TaxTotal>
  <cac:LegalMonetaryTotal>
    <cbc:TaxExclusiveAmount currencyID="EUR">100.00</cbc:TaxExclusiveAmount>
    <cbc:TaxInclusiveAmount currencyID="EUR">123.00</cbc:TaxInclusiveAmount>
  </cac:LegalMonetaryTotal>
</Invoice>"""


def bearer(token: str) -> dict[str, str]:
    """The Authorization header carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


def exception_code(response: httpx.Response) -> int:
    """The first ``exceptionCode`` of a legacy (ExceptionResponse) error body."""
    return response.json()["exception"]["exceptionDetailList"][0]["exceptionCode"]


def sha256_b64(data: bytes) -> str:
    """Base64 SHA-256, as KSeF wants hashes."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def ksef_number_ok(number: str) -> bool:
    """Check a KSeF number's shape and CRC-8 (faktury/numer-ksef.md), from scratch."""
    parts = number.split("-")
    shape = (
        len(number) == 35
        and [len(p) for p in parts] == [10, 8, 12, 2]
        and parts[0].isdigit()
        and parts[1].isdigit()
        and all(c in "0123456789ABCDEF" for c in parts[2] + parts[3])
    )
    if not shape:
        return False
    crc = 0
    for byte in number[:32].encode("ascii"):
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return f"{crc:02X}" == number[33:]


def aes_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-256-CBC with PKCS#7 padding."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def invoice_xml(
    number: str, nip: str = NIP, issue_date: str = "2026-01-10", template: str = "fa3"
) -> bytes:
    """Return a sample invoice with the placeholders filled in."""
    name = "invoice_fa_3_type.xml" if template == "fa3" else "FA2.xml"
    text = (SAMPLES / name).read_text(encoding="utf-8")
    text = text.replace("{{ .NIP }}", nip).replace("{{ .BUYER_NIP }}", BUYER_NIP)
    text = text.replace("{{ formatDate .ISSUE_DATE }}", issue_date)
    text = text.replace('{{ randomInvoiceNumber "FV" }}', number)
    if template == "fa2":
        text = text.replace("3896717236", nip).replace("FK2023/08/31", number)
    return text.encode("utf-8")


def zip_package(files: dict[str, bytes]) -> bytes:
    """Return a ZIP of ``files``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def targz_package(files: dict[str, bytes]) -> bytes:
    """Return a tar.gz of ``files``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@dataclass
class Key:
    """A published key: its id and public key."""

    key_id: str
    public_key: object

    def wrap(self, data: bytes) -> bytes:
        """RSA-OAEP SHA-256 encryption with this key."""
        oaep = OAEP(
            mgf=MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
        )
        return self.public_key.encrypt(data, oaep)  # type: ignore[attr-defined]


class Kit:
    """Plain-HTTP steps of the KSeF protocol against one base URL."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.access_token = ""
        self.refresh_token = ""

    def key(self, usage: str) -> Key:
        """Return the newest published key for ``usage``."""
        response = self.client.get("/security/public-key-certificates")
        response.raise_for_status()
        entries = [e for e in response.json() if usage in e["usage"]]
        newest = max(entries, key=lambda e: e["validFrom"])
        cert = x509.load_der_x509_certificate(base64.b64decode(newest["certificate"]))
        return Key(newest["publicKeyId"], cert.public_key())

    def start_auth(
        self,
        nip: str,
        token: str,
        *,
        key_id: str | None = None,
        stamp_shift: int = 0,
        extra: dict | None = None,
    ) -> dict:
        """Challenge and KSeF-token auth; return the 202 body.

        ``stamp_shift`` moves the encrypted timestampMs off the challenge's;
        ``extra`` adds members to the request body.
        """
        challenge = self.client.post("/auth/challenge").json()
        key = self.key("KsefTokenEncryption")
        stamp = challenge["timestampMs"] + stamp_shift
        encrypted = key.wrap(f"{token}|{stamp}".encode())
        response = self.client.post(
            "/auth/ksef-token",
            json={
                "challenge": challenge["challenge"],
                "contextIdentifier": {"type": "Nip", "value": nip},
                "encryptedToken": base64.b64encode(encrypted).decode(),
                "publicKeyId": key_id or key.key_id,
                **(extra or {}),
            },
        )
        assert response.status_code == 202, response.text
        return response.json()

    def wait_auth(self, started: dict) -> dict:
        """Poll the auth status until it leaves 100."""
        headers = bearer(started["authenticationToken"]["token"])
        for _ in range(200):
            status = self.client.get(
                f"/auth/{started['referenceNumber']}", headers=headers
            )
            assert status.status_code == 200, status.text
            if status.json()["status"]["code"] != 100:
                return status.json()
            time.sleep(0.01)
        raise AssertionError("authentication did not finish")

    def authenticate(self, nip: str, token: str) -> None:
        """Full KSeF-token authentication; keep the access and refresh tokens."""
        started = self.start_auth(nip, token)
        assert self.wait_auth(started)["status"]["code"] == 200
        self.redeem(started)

    def redeem(self, started: dict) -> None:
        """Redeem a finished authentication; keep the access and refresh tokens."""
        headers = bearer(started["authenticationToken"]["token"])
        tokens = self.client.post("/auth/token/redeem", headers=headers)
        assert tokens.status_code == 200, tokens.text
        self.access_token = tokens.json()["accessToken"]["token"]
        self.refresh_token = tokens.json()["refreshToken"]["token"]

    @property
    def auth(self) -> dict[str, str]:
        """The bearer header with the access token."""
        return bearer(self.access_token)

    def encryption(self) -> tuple[bytes, bytes, dict]:
        """A fresh AES key and IV, and the ``encryption`` object wrapping them."""
        aes_key, iv = os.urandom(32), os.urandom(16)
        key = self.key("SymmetricKeyEncryption")
        info = {
            "encryptedSymmetricKey": base64.b64encode(key.wrap(aes_key)).decode(),
            "initializationVector": base64.b64encode(iv).decode(),
            "publicKeyId": key.key_id,
        }
        return aes_key, iv, info

    def open_online(
        self, form_code: dict | None = None, headers: dict | None = None
    ) -> tuple[str, bytes, bytes]:
        """Open an online session; return its reference, AES key and IV."""
        aes_key, iv, info = self.encryption()
        response = self.post_open_online(info, form_code, headers)
        assert response.status_code == 201, response.text
        return response.json()["referenceNumber"], aes_key, iv

    def post_open_online(
        self,
        encryption: dict,
        form_code: dict | None = None,
        headers: dict | None = None,
    ) -> httpx.Response:
        """POST /sessions/online with ``encryption``; return the response as it is."""
        return self.client.post(
            "/sessions/online",
            headers={**self.auth, **(headers or {})},
            json={"formCode": form_code or FA3, "encryption": encryption},
        )

    def send_invoices(self, numbers: list[str]) -> list[str]:
        """Send one invoice per number in a new online session; return KSeF numbers."""
        session, aes_key, iv = self.open_online()
        result = []
        for number in numbers:
            sent = self.send(session, aes_key, iv, invoice_xml(number))
            status = self.invoice_status(session, sent.json()["referenceNumber"])
            result.append(status["ksefNumber"])
        return result

    def send_body(self, aes_key: bytes, iv: bytes, invoice: bytes) -> dict:
        """The JSON body of a send-invoice request."""
        encrypted = aes_encrypt(aes_key, iv, invoice)
        return {
            "invoiceHash": sha256_b64(invoice),
            "invoiceSize": len(invoice),
            "encryptedInvoiceHash": sha256_b64(encrypted),
            "encryptedInvoiceSize": len(encrypted),
            "encryptedInvoiceContent": base64.b64encode(encrypted).decode(),
        }

    def send(
        self, session: str, aes_key: bytes, iv: bytes, invoice: bytes
    ) -> httpx.Response:
        """Send one invoice in an online session."""
        return self.client.post(
            f"/sessions/online/{session}/invoices",
            headers=self.auth,
            json=self.send_body(aes_key, iv, invoice),
        )

    def invoice_status(self, session: str, invoice_ref: str) -> dict:
        """Poll one invoice until it leaves 100/150."""
        for _ in range(200):
            response = self.client.get(
                f"/sessions/{session}/invoices/{invoice_ref}", headers=self.auth
            )
            assert response.status_code == 200, response.text
            if response.json()["status"]["code"] not in (100, 150):
                return response.json()
            time.sleep(0.01)
        raise AssertionError("invoice processing did not finish")

    def session_status(self, session: str) -> dict:
        """Poll a session until it leaves 100/150/170."""
        for _ in range(200):
            response = self.client.get(f"/sessions/{session}", headers=self.auth)
            assert response.status_code == 200, response.text
            if response.json()["status"]["code"] not in (100, 150, 170):
                return response.json()
            time.sleep(0.01)
        raise AssertionError("session processing did not finish")

    def open_batch(
        self, package: bytes, *, parts: int = 1, compression: str | None = None
    ) -> tuple[str, list[dict], list[bytes]]:
        """Open a batch session; return its reference, upload requests and parts."""
        aes_key, iv, info = self.encryption()
        size = -(-len(package) // parts)
        chunks = [package[i : i + size] for i in range(0, len(package), size)]
        encrypted = [aes_encrypt(aes_key, iv, chunk) for chunk in chunks]
        batch_file: dict = {
            "fileSize": len(package),
            "fileHash": sha256_b64(package),
            "fileParts": [
                {
                    "ordinalNumber": n,
                    "fileSize": len(part),
                    "fileHash": sha256_b64(part),
                }
                for n, part in enumerate(encrypted, start=1)
            ],
        }
        if compression:
            batch_file["compressionType"] = compression
        response = self.client.post(
            "/sessions/batch",
            headers=self.auth,
            json={"formCode": FA3, "batchFile": batch_file, "encryption": info},
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return body["referenceNumber"], body["partUploadRequests"], encrypted

    def upload(self, request: dict, part: bytes) -> httpx.Response:
        """PUT one part to its pre-signed URL, without the bearer token."""
        return self.client.request(
            request["method"], request["url"], headers=request["headers"], content=part
        )


def kit_for(env: SimulatorEnv, stack: ExitStack) -> Kit:
    """Return a kit whose client closes with ``stack``."""
    return Kit(stack.enter_context(env.client()))
