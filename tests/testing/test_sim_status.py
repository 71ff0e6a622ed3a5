"""Session lists, statuses, invoice lists with continuation tokens, and UPOs."""

from __future__ import annotations

import base64
import hashlib

from simkit import Kit, exception_code, invoice_xml

from ksef_facade.testing.pytest_plugin import SimulatorEnv


def _closed_session(kit: Kit, count: int) -> tuple[str, list[str]]:
    session, aes_key, iv = kit.open_online()
    references = [
        kit.send(session, aes_key, iv, invoice_xml(f"S/{n}")).json()["referenceNumber"]
        for n in range(count)
    ]
    kit.client.post(f"/sessions/online/{session}/close", headers=kit.auth)
    kit.session_status(session)
    return session, references


def test_session_status_counts_and_upo_pages(authed: Kit) -> None:
    """A processed session reports counts and one UPO page."""
    session, _ = _closed_session(authed, 2)
    body = authed.client.get(f"/sessions/{session}", headers=authed.auth).json()
    assert (body["invoiceCount"], body["successfulInvoiceCount"]) == (2, 2)
    assert len(body["upo"]["pages"]) == 1


def test_session_upo_by_bearer_endpoint_matches_download_url(authed: Kit) -> None:
    """GET /sessions/{ref}/upo/{upoRef} returns the same bytes as downloadUrl."""
    session, _ = _closed_session(authed, 1)
    page = authed.client.get(f"/sessions/{session}", headers=authed.auth).json()["upo"][
        "pages"
    ][0]
    via_api = authed.client.get(
        f"/sessions/{session}/upo/{page['referenceNumber']}", headers=authed.auth
    )
    via_link = authed.client.get(page["downloadUrl"])
    assert via_api.content == via_link.content
    digest = base64.b64encode(hashlib.sha256(via_api.content).digest()).decode()
    assert via_api.headers["x-ms-meta-hash"] == digest


def test_invoice_upo_by_reference(authed: Kit) -> None:
    """The invoice UPO names the invoice's KSeF number and the token used."""
    session, references = _closed_session(authed, 1)
    status = authed.invoice_status(session, references[0])
    upo = authed.client.get(
        f"/sessions/{session}/invoices/{references[0]}/upo", headers=authed.auth
    )
    assert upo.status_code == 200
    assert status["ksefNumber"].encode() in upo.content
    assert b"<NumerReferencyjnyTokenaKSeF>" in upo.content
    assert authed.client.get(status["upoDownloadUrl"]).content == upo.content


def test_unknown_upo_is_21178(authed: Kit) -> None:
    """A UPO reference that does not exist is 21178."""
    session, _ = _closed_session(authed, 1)
    response = authed.client.get(
        f"/sessions/{session}/upo/20260101-EU-0000000000-0000000000-00",
        headers=authed.auth,
    )
    assert exception_code(response) == 21178


def test_invoice_list_pages_with_continuation_token(authed: Kit) -> None:
    """Twelve invoices list as 10 then 2."""
    session, _ = _closed_session(authed, 12)
    first = authed.client.get(
        f"/sessions/{session}/invoices", headers=authed.auth
    ).json()
    headers = {**authed.auth, "x-continuation-token": first["continuationToken"]}
    second = authed.client.get(f"/sessions/{session}/invoices", headers=headers).json()
    assert [len(first["invoices"]), len(second["invoices"])] == [10, 2]
    ordinals = [i["ordinalNumber"] for i in first["invoices"] + second["invoices"]]
    assert ordinals == list(range(1, 13))


def test_bad_continuation_token_is_21418(authed: Kit) -> None:
    """A continuation token the simulator did not issue is 21418."""
    session, _ = _closed_session(authed, 1)
    headers = {**authed.auth, "x-continuation-token": "garbage"}
    response = authed.client.get(f"/sessions/{session}/invoices", headers=headers)
    assert exception_code(response) == 21418


def test_sessions_list_filters_by_type_and_status(authed: Kit) -> None:
    """GET /sessions lists online sessions and filters by status."""
    done, _ = _closed_session(authed, 1)
    open_session, _, _ = authed.open_online()
    listed = authed.client.get(
        "/sessions", headers=authed.auth, params={"sessionType": "Online"}
    ).json()
    assert [s["referenceNumber"] for s in listed["sessions"]] == [open_session, done]
    succeeded = authed.client.get(
        "/sessions",
        headers=authed.auth,
        params={"sessionType": "Online", "statuses": "Succeeded"},
    ).json()
    assert [s["referenceNumber"] for s in succeeded["sessions"]] == [done]
    batch = authed.client.get(
        "/sessions", headers=authed.auth, params={"sessionType": "Batch"}
    ).json()
    assert batch["sessions"] == []


def test_sessions_list_requires_session_type(env: SimulatorEnv, authed: Kit) -> None:
    """sessionType is a required query parameter."""
    env.allow_invalid_requests()
    assert exception_code(authed.client.get("/sessions", headers=authed.auth)) == 21405


def test_another_contexts_session_is_invisible(env: SimulatorEnv, authed: Kit) -> None:
    """A session of another NIP is 21173 for this context."""
    session, _ = _closed_session(authed, 1)
    other = Kit(authed.client)
    other.authenticate("7352765225", env.sim.add_ksef_token("7352765225"))
    response = other.client.get(f"/sessions/{session}", headers=other.auth)
    assert exception_code(response) == 21173


def test_missing_permission_is_403(env: SimulatorEnv, kit: Kit) -> None:
    """A token without InvoiceWrite cannot open a session: 403 missing-permissions."""
    token = env.sim.add_ksef_token("7352765225", permissions=["InvoiceRead"])
    kit.authenticate("7352765225", token)
    response = kit.post_open_online(kit.encryption()[2])
    assert response.status_code == 403
    assert response.json()["reasonCode"] == "missing-permissions"


def test_session_list_refuses_pef_invoice_write(env: SimulatorEnv, kit: Kit) -> None:
    """GET /sessions does not accept PefInvoiceWrite alone (the spec omits it)."""
    token = env.sim.add_ksef_token("7352765225", permissions=["PefInvoiceWrite"])
    kit.authenticate("7352765225", token)
    response = kit.client.get(
        "/sessions", headers=kit.auth, params={"sessionType": "Online"}
    )
    assert response.status_code == 403
    assert response.json()["reasonCode"] == "missing-permissions"
