"""Public key certificates, rotation and withdrawal."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from simkit import Kit, exception_code

from ksef_facade.testing.pytest_plugin import SimulatorEnv


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_one_certificate_per_usage(kit: Kit) -> None:
    """Both usages are published, each with its own key."""
    entries = kit.client.get("/security/public-key-certificates").json()
    usages = sorted(u for e in entries for u in e["usage"])
    assert usages == ["KsefTokenEncryption", "SymmetricKeyEncryption"]
    assert entries[0]["publicKeyId"] != entries[1]["publicKeyId"]


def test_identifiers_are_hashes_of_certificate_and_key(kit: Kit) -> None:
    """certificateId hashes the DER, publicKeyId the SubjectPublicKeyInfo."""
    entry = kit.client.get("/security/public-key-certificates").json()[0]
    der = base64.b64decode(entry["certificate"])
    cert = x509.load_der_x509_certificate(der)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert entry["certificateId"] == _b64_sha256(der)
    assert entry["publicKeyId"] == _b64_sha256(spki)
    assert cert.public_key().key_size == 2048


def test_validity_dates_match_the_certificate(kit: Kit) -> None:
    """validFrom and validTo are the certificate's own dates."""
    entry = kit.client.get("/security/public-key-certificates").json()[0]
    cert = x509.load_der_x509_certificate(base64.b64decode(entry["certificate"]))
    assert datetime.fromisoformat(entry["validFrom"]) == cert.not_valid_before_utc
    assert datetime.fromisoformat(entry["validTo"]) == cert.not_valid_after_utc


def test_keys_are_deterministic_per_seed(make_env) -> None:
    """Two simulators with one seed publish the same keys."""
    first, second = make_env(seed=3), make_env(seed=3)
    ids = [[k.public_key_id for k in e.sim.keys.published()] for e in (first, second)]
    assert ids[0] == ids[1]


def test_rotation_publishes_a_newer_key_next_to_the_old(
    env: SimulatorEnv, kit: Kit
) -> None:
    """After rotate_keys both keys are listed and the new one is newest."""
    old = kit.key("SymmetricKeyEncryption").key_id
    (new,) = env.sim.rotate_keys("SymmetricKeyEncryption")
    listed = kit.client.get("/security/public-key-certificates").json()
    ids = [e["publicKeyId"] for e in listed if "SymmetricKeyEncryption" in e["usage"]]
    assert ids == [old, new]
    assert kit.key("SymmetricKeyEncryption").key_id == new


def test_old_key_still_works_during_transition(env: SimulatorEnv, authed: Kit) -> None:
    """A session opened with the old key id succeeds before withdrawal."""
    _, _, info = authed.encryption()
    env.sim.rotate_keys()
    response = authed.post_open_online(info)
    assert response.status_code == 201


def test_withdrawn_key_gets_21470(env: SimulatorEnv, authed: Kit) -> None:
    """Naming a withdrawn key is error 21470 (klucze-publiczne-do-szyfrowania.md)."""
    _, _, info = authed.encryption()
    env.sim.rotate_keys()
    env.sim.withdraw_old_keys()
    response = authed.post_open_online(info)
    assert response.status_code == 400
    assert exception_code(response) == 21470


def test_emergency_rotation_removes_the_old_key(env: SimulatorEnv, kit: Kit) -> None:
    """withdraw_old=True lists only the new key per usage."""
    new = env.sim.rotate_keys(withdraw_old=True)
    listed = kit.client.get("/security/public-key-certificates").json()
    assert sorted(e["publicKeyId"] for e in listed) == sorted(new)


def test_unknown_key_id_in_token_auth_gets_21470(env: SimulatorEnv, kit: Kit) -> None:
    """An unknown publicKeyId in KSeF-token auth is refused with 21470."""
    challenge = kit.client.post("/auth/challenge").json()
    key = kit.key("KsefTokenEncryption")
    response = kit.client.post(
        "/auth/ksef-token",
        json={
            "challenge": challenge["challenge"],
            "contextIdentifier": {"type": "Nip", "value": env.nip},
            "encryptedToken": base64.b64encode(key.wrap(b"x|1")).decode(),
            "publicKeyId": base64.b64encode(b"\0" * 32).decode(),
        },
    )
    assert response.status_code == 400
    assert exception_code(response) == 21470
