"""KSeF token management over the API."""

from __future__ import annotations

import pytest
from simkit import Kit, exception_code

from ksef_facade.testing.pytest_plugin import SimulatorEnv


def _generate(kit: Kit, permissions: list[str]) -> dict:
    response = kit.client.post(
        "/tokens",
        headers=kit.auth,
        json={"permissions": permissions, "description": "Token from a test"},
    )
    assert response.status_code == 202, response.text
    return response.json()


def test_generated_token_authenticates(env: SimulatorEnv, authed: Kit) -> None:
    """POST /tokens gives a token that works for KSeF-token auth."""
    token = _generate(authed, ["InvoiceRead"])["token"]
    fresh = Kit(authed.client)
    fresh.authenticate(env.nip, token)
    assert fresh.access_token


def test_generated_token_is_listed_and_has_status(authed: Kit) -> None:
    """The new token shows up in GET /tokens and GET /tokens/{ref}."""
    reference = _generate(authed, ["InvoiceRead"])["referenceNumber"]
    listed = authed.client.get("/tokens", headers=authed.auth).json()["tokens"]
    assert reference in [t["referenceNumber"] for t in listed]
    status = authed.client.get(f"/tokens/{reference}", headers=authed.auth).json()
    assert status["status"] == "Active"
    assert status["requestedPermissions"] == ["InvoiceRead"]


def test_revoked_token_no_longer_authenticates(env: SimulatorEnv, authed: Kit) -> None:
    """After DELETE /tokens/{ref} auth with that token fails with 450."""
    created = _generate(authed, ["InvoiceRead"])
    response = authed.client.delete(
        f"/tokens/{created['referenceNumber']}", headers=authed.auth
    )
    assert response.status_code == 204
    status = authed.wait_auth(authed.start_auth(env.nip, created["token"]))
    assert status["status"]["details"] == ["Token unieważniony"]


def test_cannot_grant_permissions_not_held(env: SimulatorEnv, kit: Kit) -> None:
    """Asking for permissions the caller lacks is 26001."""
    token = env.sim.add_ksef_token(
        "7352765225", permissions=["CredentialsManage", "InvoiceRead"]
    )
    kit.authenticate("7352765225", token)
    response = kit.client.post(
        "/tokens",
        headers=kit.auth,
        json={"permissions": ["InvoiceWrite"], "description": "Token from a test"},
    )
    assert exception_code(response) == 26001


def test_provisioning_rejects_invalid_nip(env: SimulatorEnv) -> None:
    """add_ksef_token checks the NIP's check digit."""
    with pytest.raises(ValueError, match="NIP"):
        env.sim.add_ksef_token("1234567890")
