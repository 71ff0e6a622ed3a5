"""The simulator proven end to end over a loopback socket with plain httpx."""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ET

from simkit import BUYER_NIP, Kit, invoice_xml, ksef_number_ok, zip_package

from ksef_facade.testing.pytest_plugin import SimulatorEnv

UPO_NS = "{http://upo.schematy.mf.gov.pl/KSeF/v4-3}"


def test_token_auth_online_and_batch_over_loopback(
    ksef_simulator: SimulatorEnv,
) -> None:
    """Auth, online send, small batch, KSeF numbers, UPOs and byte-exact download."""
    assert ksef_simulator.base_url.startswith("http://127.0.0.1:")
    assert ksef_simulator.sim.validate_contract
    with ksef_simulator.client(timeout=10) as client:
        kit = Kit(client)
        kit.authenticate(ksef_simulator.nip, ksef_simulator.ksef_token)

        # Online: one invoice.
        session, aes_key, iv = kit.open_online()
        invoice = invoice_xml("FV/ONLINE/1")
        sent = kit.send(session, aes_key, iv, invoice)
        assert sent.status_code == 202, sent.text
        status = kit.invoice_status(session, sent.json()["referenceNumber"])
        assert status["status"]["code"] == 200
        online_number = status["ksefNumber"]
        assert ksef_number_ok(online_number)
        assert online_number.startswith(f"{ksef_simulator.nip}-")

        upo = client.get(
            f"/sessions/{session}/invoices/ksef/{online_number}/upo", headers=kit.auth
        )
        assert upo.status_code == 200
        digest = base64.b64encode(hashlib.sha256(upo.content).digest()).decode()
        assert upo.headers["x-ms-meta-hash"] == digest
        root = ET.fromstring(  # noqa: S314
            upo.content
        )
        assert (
            root.find(f"{UPO_NS}Dokument/{UPO_NS}NumerKSeFDokumentu").text
            == online_number
        )
        assert (
            client.post(
                f"/sessions/online/{session}/close", headers=kit.auth
            ).status_code
            == 204
        )
        assert kit.session_status(session)["status"]["code"] == 200

        # Batch: two invoices in a ZIP split into two parts.
        package = zip_package(
            {"a.xml": invoice_xml("FV/BATCH/1"), "b.xml": invoice_xml("FV/BATCH/2")}
        )
        batch, requests, parts = kit.open_batch(package, parts=2)
        for request, part in zip(requests, parts, strict=True):
            assert kit.upload(request, part).status_code == 201
        assert (
            client.post(f"/sessions/batch/{batch}/close", headers=kit.auth).status_code
            == 204
        )
        final = kit.session_status(batch)
        assert final["status"]["code"] == 200
        assert final["successfulInvoiceCount"] == 2
        listed = client.get(f"/sessions/{batch}/invoices", headers=kit.auth).json()
        numbers = [item["ksefNumber"] for item in listed["invoices"]]
        assert all(ksef_number_ok(n) for n in numbers)

        page = final["upo"]["pages"][0]
        session_upo = client.get(page["downloadUrl"])
        assert session_upo.status_code == 200
        assert (
            session_upo.headers["x-ms-meta-hash"]
            == base64.b64encode(hashlib.sha256(session_upo.content).digest()).decode()
        )
        upo_root = ET.fromstring(session_upo.content)  # noqa: S314
        documents = upo_root.findall(f"{UPO_NS}Dokument")
        assert len(documents) == 2

        # Download byte for byte, as seller.
        downloaded = client.get(f"/invoices/ksef/{online_number}", headers=kit.auth)
        assert downloaded.status_code == 200
        assert downloaded.content == invoice
        assert BUYER_NIP.encode() in downloaded.content
        by_name = {
            item["invoiceFileName"]: item["ksefNumber"] for item in listed["invoices"]
        }
        batch_copy = client.get(f"/invoices/ksef/{by_name['b.xml']}", headers=kit.auth)
        assert batch_copy.content == invoice_xml("FV/BATCH/2")


def test_ksef_number_check_follows_the_docs_example() -> None:
    """The kit's own CRC-8 accepts the docs' example and rejects a changed digit."""
    assert ksef_number_ok("5265877635-20250826-0100001AF629-AF")
    assert not ksef_number_ok("5265877635-20250826-0100001AF628-AF")
