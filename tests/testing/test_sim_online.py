"""Online sessions: open, send, close, and how invoices are judged."""

from __future__ import annotations

import base64
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from simkit import (
    FA2,
    FA3,
    PEF_XML,
    Kit,
    aes_encrypt,
    exception_code,
    invoice_xml,
    kit_for,
    sha256_b64,
)

from ksef_facade.testing.clock import ManualClock
from ksef_facade.testing.pytest_plugin import SimulatorEnv


def _send_and_wait(kit: Kit, invoice: bytes) -> dict:
    session, aes_key, iv = kit.open_online()
    sent = kit.send(session, aes_key, iv, invoice)
    assert sent.status_code == 202, sent.text
    return kit.invoice_status(session, sent.json()["referenceNumber"])


def test_open_returns_reference_and_twelve_hour_validity(authed: Kit) -> None:
    """sesja-interaktywna.md: a session lives 12 hours."""
    before = datetime.now(UTC)
    response = authed.post_open_online(authed.encryption()[2])
    after = datetime.now(UTC)

    body = response.json()
    assert response.status_code == 201
    assert len(body["referenceNumber"]) == 36
    valid_until = datetime.fromisoformat(body["validUntil"])
    assert before + timedelta(hours=12) - timedelta(seconds=1) <= valid_until
    assert valid_until <= after + timedelta(hours=12) + timedelta(seconds=1)


def test_fa2_invoice_is_accepted(authed: Kit) -> None:
    """An FA(2) session accepts an FA(2) invoice."""
    session, aes_key, iv = authed.open_online(FA2)
    sent = authed.send(session, aes_key, iv, invoice_xml("FA2/1", template="fa2"))
    status = authed.invoice_status(session, sent.json()["referenceNumber"])
    assert status["status"]["code"] == 200


def test_unsupported_form_code_is_21405(authed: Kit) -> None:
    """A form code the simulator does not support is refused."""
    response = authed.post_open_online(
        authed.encryption()[2], {**FA3, "systemCode": "FA (9)"}
    )
    assert exception_code(response) == 21405


def test_undecryptable_key_fails_the_session_with_415(authed: Kit) -> None:
    """A wrapped key that does not decrypt gives session status 415."""
    info = authed.encryption()[2]
    info["encryptedSymmetricKey"] = base64.b64encode(b"\2" * 256).decode()
    response = authed.post_open_online(info)
    session = response.json()["referenceNumber"]
    assert authed.session_status(session)["status"]["code"] == 415


def test_encrypted_hash_mismatch_is_21403(authed: Kit) -> None:
    """A wrong encryptedInvoiceHash is refused at once."""
    session, aes_key, iv = authed.open_online()
    body = authed.send_body(aes_key, iv, invoice_xml("FV/1"))
    body["encryptedInvoiceHash"] = sha256_b64(b"other")
    response = authed.client.post(
        f"/sessions/online/{session}/invoices", headers=authed.auth, json=body
    )
    assert exception_code(response) == 21403


def test_encrypted_size_mismatch_is_21402(authed: Kit) -> None:
    """A wrong encryptedInvoiceSize is refused at once."""
    session, aes_key, iv = authed.open_online()
    body = authed.send_body(aes_key, iv, invoice_xml("FV/1"))
    body["encryptedInvoiceSize"] += 16
    response = authed.client.post(
        f"/sessions/online/{session}/invoices", headers=authed.auth, json=body
    )
    assert exception_code(response) == 21402


def test_plain_hash_mismatch_fails_with_430(authed: Kit) -> None:
    """A wrong invoiceHash is found after decryption: status 430."""
    session, aes_key, iv = authed.open_online()
    body = authed.send_body(aes_key, iv, invoice_xml("FV/1"))
    body["invoiceHash"] = sha256_b64(b"other")
    sent = authed.client.post(
        f"/sessions/online/{session}/invoices", headers=authed.auth, json=body
    )
    status = authed.invoice_status(session, sent.json()["referenceNumber"])
    assert status["status"]["code"] == 430


def test_content_under_another_key_fails_with_435(authed: Kit) -> None:
    """Content that does not decrypt with the session key gives 435."""
    session, _, iv = authed.open_online()
    invoice = invoice_xml("FV/1")
    encrypted = aes_encrypt(b"\3" * 32, iv, invoice)
    body = {
        "invoiceHash": sha256_b64(invoice),
        "invoiceSize": len(invoice),
        "encryptedInvoiceHash": sha256_b64(encrypted),
        "encryptedInvoiceSize": len(encrypted),
        "encryptedInvoiceContent": base64.b64encode(encrypted).decode(),
    }
    sent = authed.client.post(
        f"/sessions/online/{session}/invoices", headers=authed.auth, json=body
    )
    status = authed.invoice_status(session, sent.json()["referenceNumber"])
    assert status["status"]["code"] in (430, 435)


def test_malformed_xml_fails_with_430(authed: Kit) -> None:
    """Invoice content that is not XML is rejected with 430."""
    assert _send_and_wait(authed, b"<Faktura>")["status"]["code"] == 430


def test_processing_instruction_fails_with_430(authed: Kit) -> None:
    """weryfikacja-faktury.md: processing instructions are not allowed."""
    invoice = invoice_xml("FV/PI").replace(b"<Faktura", b"<?pi x?><Faktura", 1)
    status = _send_and_wait(authed, invoice)
    assert status["status"]["code"] == 430
    assert "processing instructions" in status["status"]["details"][0]


def test_bom_fails_with_430(authed: Kit) -> None:
    """weryfikacja-faktury.md: UTF-8 without BOM only."""
    assert (
        _send_and_wait(authed, b"\xef\xbb\xbf" + invoice_xml("FV/B"))["status"]["code"]
        == 430
    )


def test_form_code_mismatch_fails_with_430(authed: Kit) -> None:
    """An FA(2) invoice in an FA(3) session is rejected."""
    status = _send_and_wait(authed, invoice_xml("FV/2", template="fa2"))
    assert status["status"]["code"] == 430


def test_seller_other_than_context_fails_with_410(authed: Kit) -> None:
    """Podmiot1 NIP must be the context NIP."""
    status = _send_and_wait(authed, invoice_xml("FV/X", nip="7352765225"))
    assert status["status"]["code"] == 410


def test_future_issue_date_fails_with_450(authed: Kit) -> None:
    """weryfikacja-faktury.md: P_1 may not be later than acceptance."""
    status = _send_and_wait(authed, invoice_xml("FV/F", issue_date="2999-01-01"))
    assert status["status"]["code"] == 450


def test_duplicate_fails_with_440_and_names_the_original(authed: Kit) -> None:
    """Same seller, kind and P_2 again: 440 with the original's identifiers."""
    first = _send_and_wait(authed, invoice_xml("FV/DUP"))
    second = _send_and_wait(authed, invoice_xml("FV/DUP"))
    assert second["status"]["code"] == 440
    assert second["status"]["extensions"]["originalKsefNumber"] == first["ksefNumber"]


def test_attachment_in_online_session_fails_with_415(authed: Kit) -> None:
    """weryfikacja-faktury.md: attachments only in batch sessions."""
    invoice = invoice_xml("FV/Z").replace(b"</Faktura>", b"<Zalacznik/></Faktura>")
    assert _send_and_wait(authed, invoice)["status"]["code"] == 415


def test_oversized_invoice_is_21405(authed: Kit) -> None:
    """An invoiceSize over 1 MB is refused (limity.md)."""
    session, aes_key, iv = authed.open_online()
    body = authed.send_body(aes_key, iv, invoice_xml("FV/1"))
    body["invoiceSize"] = 1_000_001
    response = authed.client.post(
        f"/sessions/online/{session}/invoices", headers=authed.auth, json=body
    )
    assert exception_code(response) == 21405


def test_session_invoice_limit_is_21155(make_env) -> None:
    """Beyond the per-session invoice limit sending is refused with 21155."""
    env = make_env(max_invoices_per_session=1)
    with ExitStack() as stack:
        kit = kit_for(env, stack)
        kit.authenticate(env.nip, env.ksef_token)
        session, aes_key, iv = kit.open_online()
        assert kit.send(session, aes_key, iv, invoice_xml("L/1")).status_code == 202
        assert (
            exception_code(kit.send(session, aes_key, iv, invoice_xml("L/2"))) == 21155
        )


def test_send_after_close_is_21180(authed: Kit) -> None:
    """A closed session accepts no invoices."""
    session, aes_key, iv = authed.open_online()
    authed.client.post(f"/sessions/online/{session}/close", headers=authed.auth)
    assert (
        exception_code(authed.send(session, aes_key, iv, invoice_xml("FV/1"))) == 21180
    )


def test_unknown_session_is_21173(authed: Kit) -> None:
    """An unknown session reference is 21173."""
    response = authed.client.post(
        "/sessions/online/20260101-SO-0000000000-0000000000-00/close",
        headers=authed.auth,
    )
    assert exception_code(response) == 21173


def test_empty_session_is_cancelled_with_440(authed: Kit) -> None:
    """Closing a session without invoices ends in 440."""
    session, _, _ = authed.open_online()
    authed.client.post(f"/sessions/online/{session}/close", headers=authed.auth)
    assert authed.session_status(session)["status"]["code"] == 440


def test_only_failed_invoices_end_in_445(authed: Kit) -> None:
    """A session whose invoices all failed ends in 445."""
    session, aes_key, iv = authed.open_online()
    authed.send(session, aes_key, iv, b"not xml")
    authed.client.post(f"/sessions/online/{session}/close", headers=authed.auth)
    assert authed.session_status(session)["status"]["code"] == 445


def test_processing_delay_reports_150_then_200(make_env) -> None:
    """With a delay an invoice is 150 until the clock passes it."""
    clock = ManualClock()
    env = make_env(clock=clock, processing_delay=5.0)
    with ExitStack() as stack:
        kit = kit_for(env, stack)
        clock.advance(0)
        started = kit.start_auth(env.nip, env.ksef_token)
        clock.advance(5)
        kit.redeem(started)
        session, aes_key, iv = kit.open_online()
        reference = kit.send(session, aes_key, iv, invoice_xml("D/1")).json()[
            "referenceNumber"
        ]
        url = f"/sessions/{session}/invoices/{reference}"
        assert kit.client.get(url, headers=kit.auth).json()["status"]["code"] == 150
        kit.client.post(f"/sessions/online/{session}/close", headers=kit.auth)
        closed = kit.client.get(f"/sessions/{session}", headers=kit.auth).json()
        assert closed["status"]["code"] == 170
        clock.advance(5)
        assert kit.client.get(url, headers=kit.auth).json()["status"]["code"] == 200


def test_problem_details_on_request(authed: Kit) -> None:
    """X-Error-Format: problem-details switches 400s to Problem Details."""
    response = authed.client.post(
        "/sessions/online/20260101-SO-0000000000-0000000000-00/close",
        headers={**authed.auth, "X-Error-Format": "problem-details"},
    )
    body = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert body["errors"][0]["code"] == 21173
    assert body["status"] == 400


def test_received_invoices_inspection(env: SimulatorEnv, authed: Kit) -> None:
    """sim.received_invoices() returns the decrypted bytes."""
    invoice = invoice_xml("FV/INSPECT")
    _send_and_wait(authed, invoice)
    received = env.sim.received_invoices(env.nip)
    assert [r.content for r in received] == [invoice]
    assert received[0].status_code == 200


def test_system_warning_echo(authed: Kit) -> None:
    """X-Test-System-Warning comes back as X-System-Warning."""
    response = authed.client.get(
        "/security/public-key-certificates",
        headers={"X-Test-System-Warning": "[W1]: test"},
    )
    assert response.headers["x-system-warning"] == "[W1]: test"


def test_session_closes_itself_after_validity(make_env) -> None:
    """sesja-interaktywna.md: after 12 hours an open session is closed and finished."""
    clock = ManualClock()
    env = make_env(clock=clock, access_token_ttl=13 * 3600)
    with ExitStack() as stack:
        kit = kit_for(env, stack)
        kit.authenticate(env.nip, env.ksef_token)
        session, aes_key, iv = kit.open_online()
        kit.send(session, aes_key, iv, invoice_xml("V/1"))
        clock.advance(12 * 3600 + 1)
        assert kit.session_status(session)["status"]["code"] == 200
        assert (
            exception_code(kit.send(session, aes_key, iv, invoice_xml("V/2"))) == 21180
        )


def test_pef_invoice_online(authed: Kit) -> None:
    """A PEF (3) session accepts a UBL invoice from the context's NIP."""
    session, aes_key, iv = authed.open_online(
        {"systemCode": "PEF (3)", "schemaVersion": "2-1", "value": "PEF"}
    )
    sent = authed.send(session, aes_key, iv, PEF_XML)
    status = authed.invoice_status(session, sent.json()["referenceNumber"])
    assert status["status"]["code"] == 200
    assert status["ksefNumber"].startswith("5265877635-")


def _offline_body(
    kit: Kit, aes_key: bytes, iv: bytes, invoice: bytes, corrected: str
) -> dict:
    body = kit.send_body(aes_key, iv, invoice)
    body["offlineMode"] = True
    body["hashOfCorrectedInvoice"] = corrected
    return body


def test_technical_correction_of_a_rejected_offline_invoice(authed: Kit) -> None:
    """korekta-techniczna.md: a rejected offline invoice can be corrected once."""
    session, aes_key, iv = authed.open_online()
    broken = invoice_xml("K/1").replace(b"<P_2>", b"<P_2x>", 1)
    rejected = authed.send(session, aes_key, iv, broken).json()["referenceNumber"]
    assert authed.invoice_status(session, rejected)["status"]["code"] == 430

    url = f"/sessions/online/{session}/invoices"
    body = _offline_body(authed, aes_key, iv, invoice_xml("K/1"), sha256_b64(broken))
    sent = authed.client.post(url, headers=authed.auth, json=body)
    status = authed.invoice_status(session, sent.json()["referenceNumber"])
    assert status["status"]["code"] == 200
    assert status["invoicingMode"] == "Offline"

    again = _offline_body(authed, aes_key, iv, invoice_xml("K/2"), sha256_b64(broken))
    assert (
        exception_code(authed.client.post(url, headers=authed.auth, json=again))
        == 21166
    )


def test_technical_correction_of_an_accepted_invoice_is_21167(authed: Kit) -> None:
    """A correctly processed invoice cannot be technically corrected."""
    session, aes_key, iv = authed.open_online()
    original = invoice_xml("K/3")
    accepted = authed.send(session, aes_key, iv, original).json()["referenceNumber"]
    authed.invoice_status(session, accepted)
    body = _offline_body(authed, aes_key, iv, invoice_xml("K/4"), sha256_b64(original))
    response = authed.client.post(
        f"/sessions/online/{session}/invoices", headers=authed.auth, json=body
    )
    assert exception_code(response) == 21167


def test_subject_validation_feature_checks_nips(authed: Kit) -> None:
    """X-KSeF-Feature: subject-identifier-validation rejects a bad buyer NIP."""
    feature = {"X-KSeF-Feature": "subject-identifier-validation"}
    session, aes_key, iv = authed.open_online(headers=feature)
    invoice = invoice_xml("N/1").replace(b"7352765225", b"7352765226")
    sent = authed.send(session, aes_key, iv, invoice)
    status = authed.invoice_status(session, sent.json()["referenceNumber"])
    assert status["status"]["code"] == 450
    assert "7352765226" in status["status"]["details"][0]


def test_subject_validation_is_off_by_default(authed: Kit) -> None:
    """Without the feature header a bad buyer NIP is accepted (TEST behaviour)."""
    invoice = invoice_xml("N/2").replace(b"7352765225", b"7352765226")
    assert _send_and_wait(authed, invoice)["status"]["code"] == 200


def test_drop_after_send_leaves_the_invoice_findable(
    env: SimulatorEnv, authed: Kit
) -> None:
    """After a dropped send, the session's invoice list shows it by hash."""
    session, aes_key, iv = authed.open_online()
    invoice = invoice_xml("R/1")
    env.sim.faults.drop_after(1, route="send_online_invoice")
    with pytest.raises(httpx.RemoteProtocolError):
        authed.send(session, aes_key, iv, invoice)
    listed = authed.client.get(
        f"/sessions/{session}/invoices", headers=authed.auth
    ).json()
    assert [i["invoiceHash"] for i in listed["invoices"]] == [sha256_b64(invoice)]
