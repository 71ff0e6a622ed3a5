"""Invoice exports: an encrypted package of invoices and _metadata.json."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from simkit import Kit, exception_code, invoice_xml, kit_for

from ksef_facade.testing.clock import ManualClock
from ksef_facade.testing.pytest_plugin import SimulatorEnv


def _decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def _start(
    kit: Kit, now: datetime | None = None, **extra: object
) -> tuple[str, bytes, bytes]:
    aes_key, iv, info = kit.encryption()
    since = ((now or datetime.now(UTC)) - timedelta(days=1)).isoformat()
    response = kit.client.post(
        "/invoices/exports",
        headers=kit.auth,
        json={
            "encryption": info,
            "filters": {
                "subjectType": "Subject1",
                "dateRange": {"dateType": "PermanentStorage", "from": since},
            },
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["referenceNumber"], aes_key, iv


def _package(kit: Kit, reference: str, aes_key: bytes, iv: bytes) -> tuple[dict, bytes]:
    status = kit.client.get(f"/invoices/exports/{reference}", headers=kit.auth).json()
    assert status["status"]["code"] == 200, status
    joined = b""
    for part in status["package"]["parts"]:
        download = kit.client.request(part["method"], part["url"])
        digest = base64.b64encode(hashlib.sha256(download.content).digest()).decode()
        assert download.headers["x-ms-meta-hash"] == digest == part["encryptedPartHash"]
        joined += _decrypt(aes_key, iv, download.content)
    return status, joined


def test_export_contains_invoices_and_metadata(authed: Kit) -> None:
    """The decrypted ZIP holds {ksefNumber}.xml byte for byte and _metadata.json."""
    numbers = authed.send_invoices(["E/1", "E/2"])
    reference, aes_key, iv = _start(authed)
    status, package = _package(authed, reference, aes_key, iv)
    assert status["package"]["invoiceCount"] == 2
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        assert archive.read(f"{numbers[0]}.xml") == invoice_xml("E/1")
        metadata = json.loads(archive.read("_metadata.json"))
    assert [i["ksefNumber"] for i in metadata["invoices"]] == numbers


def test_only_metadata(authed: Kit) -> None:
    """onlyMetadata leaves the invoice files out."""
    authed.send_invoices(["E/3"])
    reference, aes_key, iv = _start(authed, onlyMetadata=True)
    _, package = _package(authed, reference, aes_key, iv)
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        assert archive.namelist() == ["_metadata.json"]


def test_small_parts(make_env) -> None:
    """A package larger than the part size comes in several encrypted parts."""
    env = make_env(export_part_size=1024)
    with ExitStack() as stack:
        kit = kit_for(env, stack)
        kit.authenticate(env.nip, env.ksef_token)
        kit.send_invoices([f"E/P{n}" for n in range(4)])
        reference, aes_key, iv = _start(kit)
        status, package = _package(kit, reference, aes_key, iv)
        assert len(status["package"]["parts"]) > 1
        assert len(package) == status["package"]["size"]


def test_export_in_progress_until_delay(make_env) -> None:
    """With a processing delay the export reports 100 first."""
    clock = ManualClock()
    env = make_env(clock=clock, processing_delay=3.0)
    with ExitStack() as stack:
        kit = kit_for(env, stack)
        started = kit.start_auth(env.nip, env.ksef_token)
        clock.advance(3)
        kit.redeem(started)
        reference, _, _ = _start(kit, clock.now())
        status = kit.client.get(
            f"/invoices/exports/{reference}", headers=kit.auth
        ).json()
        assert status["status"]["code"] == 100
        clock.advance(3)
        status = kit.client.get(
            f"/invoices/exports/{reference}", headers=kit.auth
        ).json()
        assert status["status"]["code"] == 200


def test_unknown_export_is_21175(authed: Kit) -> None:
    """An export reference that does not exist is 21175."""
    response = authed.client.get(
        "/invoices/exports/20260101-EX-0000000000-0000000000-00", headers=authed.auth
    )
    assert exception_code(response) == 21175


def test_undecryptable_key_gives_415(env: SimulatorEnv, authed: Kit) -> None:
    """An export key that does not decrypt ends in status 415."""
    info = authed.encryption()[2]
    info["encryptedSymmetricKey"] = base64.b64encode(b"\5" * 256).decode()
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    reference = authed.client.post(
        "/invoices/exports",
        headers=authed.auth,
        json={
            "encryption": info,
            "filters": {
                "subjectType": "Subject1",
                "dateRange": {"dateType": "Invoicing", "from": since},
            },
        },
    ).json()["referenceNumber"]
    status = authed.client.get(
        f"/invoices/exports/{reference}", headers=authed.auth
    ).json()
    assert status["status"]["code"] == 415


def test_export_status_is_gone_after_retention(make_env) -> None:
    """api-changelog.md 2.4.0: past retention an export's status answers 410 Gone."""
    clock = ManualClock()
    env = make_env(clock=clock, status_retention=60, access_token_ttl=3600)
    with ExitStack() as stack:
        kit = kit_for(env, stack)
        kit.authenticate(env.nip, env.ksef_token)
        reference, _, _ = _start(kit, clock.now())
        url = f"/invoices/exports/{reference}"
        kept = kit.client.get(url, headers=kit.auth)
        clock.advance(59)
        still = kit.client.get(url, headers=kit.auth)
        clock.advance(1)
        gone = kit.client.get(url, headers=kit.auth)
    assert (kept.status_code, still.status_code, gone.status_code) == (200, 200, 410)
    assert gone.json()["title"] == "Gone"
