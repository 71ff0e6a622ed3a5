"""Batch sessions: declared parts, pre-signed uploads, close and processing."""

from __future__ import annotations

import base64
from contextlib import ExitStack

from simkit import (
    FA3,
    Kit,
    aes_encrypt,
    exception_code,
    invoice_xml,
    kit_for,
    sha256_b64,
    targz_package,
    zip_package,
)

from ksef_facade.testing.clock import ManualClock
from ksef_facade.testing.pytest_plugin import SimulatorEnv


def _run(
    kit: Kit, package: bytes, *, parts: int = 1, compression: str | None = None
) -> dict:
    batch, requests, encrypted = kit.open_batch(
        package, parts=parts, compression=compression
    )
    for request, part in zip(requests, encrypted, strict=True):
        assert kit.upload(request, part).status_code == 201
    closed = kit.client.post(f"/sessions/batch/{batch}/close", headers=kit.auth)
    assert closed.status_code == 204, closed.text
    return {"reference": batch, **kit.session_status(batch)}


def _open_body(kit: Kit, parts: list[dict], size: int = 100) -> dict:
    return {
        "formCode": FA3,
        "batchFile": {
            "fileSize": size,
            "fileHash": sha256_b64(b"x"),
            "fileParts": parts,
        },
        "encryption": kit.encryption()[2],
    }


def _part(number: int, size: int = 32) -> dict:
    return {"ordinalNumber": number, "fileSize": size, "fileHash": sha256_b64(b"x")}


def test_zip_package_in_three_parts(authed: Kit) -> None:
    """Three invoices in a ZIP split three ways are all accepted."""
    files = {f"{n}.xml": invoice_xml(f"B/{n}") for n in range(3)}
    result = _run(authed, zip_package(files), parts=3)
    assert result["status"]["code"] == 200
    assert result["successfulInvoiceCount"] == 3


def test_targz_package(authed: Kit) -> None:
    """sesja-wsadowa.md: TarGz packages are accepted too."""
    result = _run(
        authed, targz_package({"a.xml": invoice_xml("T/1")}), compression="TarGz"
    )
    assert result["status"]["code"] == 200


def test_file_names_are_reported(authed: Kit) -> None:
    """Invoices from a package carry their file name."""
    result = _run(authed, zip_package({"faktura-7.xml": invoice_xml("N/7")}))
    listed = authed.client.get(
        f"/sessions/{result['reference']}/invoices", headers=authed.auth
    ).json()
    assert listed["invoices"][0]["invoiceFileName"] == "faktura-7.xml"


def test_mixed_package_counts_failures(authed: Kit) -> None:
    """A bad file fails alone; the session still succeeds."""
    result = _run(authed, zip_package({"ok.xml": invoice_xml("M/1"), "bad.xml": b"<x"}))
    assert (result["successfulInvoiceCount"], result["failedInvoiceCount"]) == (1, 1)
    failed = authed.client.get(
        f"/sessions/{result['reference']}/invoices/failed", headers=authed.auth
    ).json()
    assert [i["status"]["code"] for i in failed["invoices"]] == [430]


def test_upload_urls_need_no_bearer_and_use_put(authed: Kit) -> None:
    """partUploadRequests name PUT, a URL outside /v2 and the blob header."""
    _, requests, _ = authed.open_batch(zip_package({"a.xml": invoice_xml("U/1")}))
    assert requests[0]["method"] == "PUT"
    assert "/v2/" not in requests[0]["url"]
    assert requests[0]["headers"] == {"x-ms-blob-type": "BlockBlob"}


def test_upload_with_wrong_hash_is_400(authed: Kit) -> None:
    """A part that does not match its declaration is refused on receipt."""
    _, requests, encrypted = authed.open_batch(
        zip_package({"a.xml": invoice_xml("H/1")})
    )
    corrupted = bytes([encrypted[0][0] ^ 1]) + encrypted[0][1:]
    assert authed.upload(requests[0], corrupted).status_code == 400


def test_upload_with_tampered_signature_is_401(authed: Kit) -> None:
    """A URL whose signature was changed is refused."""
    _, requests, encrypted = authed.open_batch(
        zip_package({"a.xml": invoice_xml("S/1")})
    )
    request = dict(requests[0], url=requests[0]["url"][:-2] + "00")
    assert authed.upload(request, encrypted[0]).status_code == 401


def test_close_with_missing_part_is_21205(authed: Kit) -> None:
    """Closing before every declared part arrived is 21205."""
    batch, _, _ = authed.open_batch(zip_package({"a.xml": invoice_xml("P/1")}))
    response = authed.client.post(f"/sessions/batch/{batch}/close", headers=authed.auth)
    assert exception_code(response) == 21205


def test_more_than_fifty_parts_is_21161(env: SimulatorEnv, authed: Kit) -> None:
    """sesja-wsadowa.md: at most 50 parts."""
    env.allow_invalid_requests()
    body = _open_body(authed, [_part(n) for n in range(1, 52)])
    response = authed.client.post("/sessions/batch", headers=authed.auth, json=body)
    assert exception_code(response) == 21161


def test_part_over_100_mb_is_21157(authed: Kit) -> None:
    """sesja-wsadowa.md: at most 100 MB per part before encryption."""
    body = _open_body(authed, [_part(1, size=100_000_100)], size=100_000_100)
    response = authed.client.post("/sessions/batch", headers=authed.auth, json=body)
    assert exception_code(response) == 21157


def test_part_numbers_must_run_from_one(authed: Kit) -> None:
    """Ordinal numbers 1..n are required."""
    body = _open_body(authed, [_part(2)])
    response = authed.client.post("/sessions/batch", headers=authed.auth, json=body)
    assert exception_code(response) == 21405


def test_package_hash_mismatch_fails_with_405(authed: Kit) -> None:
    """A joined package that does not match batchFile gives 405."""
    package = zip_package({"a.xml": invoice_xml("W/1")})
    aes_key, iv, info = authed.encryption()
    encrypted = aes_encrypt(aes_key, iv, package)
    body = {
        "formCode": FA3,
        "batchFile": {
            "fileSize": len(package),
            "fileHash": sha256_b64(b"something else"),
            "fileParts": [
                {
                    "ordinalNumber": 1,
                    "fileSize": len(encrypted),
                    "fileHash": sha256_b64(encrypted),
                }
            ],
        },
        "encryption": info,
    }
    opened = authed.client.post(
        "/sessions/batch", headers=authed.auth, json=body
    ).json()
    authed.upload(opened["partUploadRequests"][0], encrypted)
    batch = opened["referenceNumber"]
    authed.client.post(f"/sessions/batch/{batch}/close", headers=authed.auth)
    assert authed.session_status(batch)["status"]["code"] == 405


def test_corrupt_archive_fails_with_430(authed: Kit) -> None:
    """A package that is not a ZIP gives 430."""
    assert _run(authed, b"definitely not a zip file")["status"]["code"] == 430


def test_all_invoices_failing_ends_in_445(authed: Kit) -> None:
    """A package with no valid invoice ends in 445."""
    result = _run(authed, zip_package({"bad.xml": b"<nope"}))
    assert result["status"]["code"] == 445


def test_upload_window_closes(make_env) -> None:
    """sesja-wsadowa.md: 20 minutes per part, then uploads get 403."""
    clock = ManualClock()
    env = make_env(clock=clock, access_token_ttl=7200)
    with ExitStack() as stack:
        kit = kit_for(env, stack)
        kit.authenticate(env.nip, env.ksef_token)
        batch, requests, encrypted = kit.open_batch(
            zip_package({"a.xml": invoice_xml("T/9")})
        )
        clock.advance(20 * 60 + 1)
        assert kit.upload(requests[0], encrypted[0]).status_code == 403
        closed = kit.client.post(f"/sessions/batch/{batch}/close", headers=kit.auth)
        assert exception_code(closed) == 21208


def test_wrapped_key_that_does_not_decrypt_gives_415(authed: Kit) -> None:
    """A batch session with an undecryptable key fails with 415."""
    body = _open_body(authed, [_part(1)])
    body["encryption"]["encryptedSymmetricKey"] = base64.b64encode(b"\4" * 256).decode()
    opened = authed.client.post(
        "/sessions/batch", headers=authed.auth, json=body
    ).json()
    assert authed.session_status(opened["referenceNumber"])["status"]["code"] == 415
