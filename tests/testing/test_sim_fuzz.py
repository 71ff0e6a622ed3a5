"""Random and mutated requests to every route: 4xx at worst, never a 5xx."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from simkit import FA3, Kit, invoice_xml, zip_package

from ksef_facade.testing.operations import OPERATIONS
from ksef_facade.testing.pytest_plugin import SimulatorEnv
from ksef_facade.testing.ratelimit import OVERRIDABLE

ROUNDS_PER_OPERATION = 25
SEED = 20260115


def _random_scalar(rng: random.Random) -> Any:
    return rng.choice(
        [
            None,
            True,
            -1,
            0,
            2**63,
            1.5,
            "",
            "x" * rng.randint(1, 80),
            "20260101-SO-0000000000-0000000000-00",
            "5265877635-20250826-0100001AF629-AF",
            "AAAA",
            "!!not base64!!",
            [],
            {},
        ]
    )


def _mutate(value: Any, rng: random.Random, depth: int = 0) -> Any:
    if isinstance(value, dict) and value and depth < 4:
        copy = dict(value)
        key = rng.choice(list(copy))
        action = rng.random()
        if action < 0.3:
            del copy[key]
        elif action < 0.6:
            copy[key] = _random_scalar(rng)
        else:
            copy[key] = _mutate(copy[key], rng, depth + 1)
        return copy
    if isinstance(value, list) and value and depth < 4:
        copy = list(value)
        index = rng.randrange(len(copy))
        copy[index] = _mutate(copy[index], rng, depth + 1)
        return copy if rng.random() < 0.8 else copy * 60
    return _random_scalar(rng)


def _valid_bodies(kit: Kit) -> dict[str, Any]:
    aes_key, iv, info = kit.encryption()
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    return {
        "auth_ksef_token": {
            "challenge": "20260101-CR-0000000000-0000000000-00",
            "contextIdentifier": {"type": "Nip", "value": "5265877635"},
            "encryptedToken": "AAAA",
        },
        "open_online_session": {"formCode": FA3, "encryption": info},
        "send_online_invoice": kit.send_body(aes_key, iv, invoice_xml("Z/1")),
        "open_batch_session": {
            "formCode": FA3,
            "batchFile": {
                "fileSize": 10,
                "fileHash": "A" * 43 + "=",
                "fileParts": [
                    {"ordinalNumber": 1, "fileSize": 16, "fileHash": "A" * 43 + "="}
                ],
            },
            "encryption": info,
        },
        "query_invoice_metadata": {
            "subjectType": "Subject1",
            "dateRange": {"dateType": "Issue", "from": "2026-01-01T00:00:00Z"},
        },
        "start_export": {
            "encryption": info,
            "filters": {
                "subjectType": "Subject1",
                "dateRange": {"dateType": "PermanentStorage", "from": since},
            },
        },
        "tokens_generate": {"permissions": ["InvoiceRead"], "description": "fuzzing"},
        "set_test_rate_limits": {
            "rateLimits": {
                group: {"perSecond": 100, "perMinute": 1000, "perHour": -1}
                for group in OVERRIDABLE
            }
        },
    }


# Raw (non-JSON) bodies: XAdES documents and encrypted batch parts.
_RAW_BODIES = {
    "auth_xades_signature": (
        "application/xml",
        b'<?xml version="1.0"?><AuthTokenRequest><Challenge>x</Challenge>'
        b"</AuthTokenRequest>",
    ),
    "upload_part": ("application/octet-stream", bytes(range(256)) * 4),
}

# Query parameters the served operations declare, with plausible and odd values.
_QUERY_NAMES = (
    "pageSize",
    "pageOffset",
    "sortOrder",
    "sessionType",
    "statuses",
    "status",
    "referenceNumber",
    "dateCreatedFrom",
    "dateClosedTo",
    "dateModifiedFrom",
    "description",
    "authorIdentifier",
    "authorIdentifierType",
    "verifyCertificateChain",
)
_QUERY_VALUES = (
    "10",
    "-1",
    "5000",
    "0",
    "Online",
    "Batch",
    "Asc",
    "Desc",
    "Succeeded",
    "Active",
    "true",
    "2026-01-01T00:00:00Z",
    "not-a-date",
    "",
    "x" * 300,
)


def _body(rng: random.Random, valid: Any) -> bytes:
    choice = rng.random()
    if choice < 0.15:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
    if choice < 0.25:
        return b'{"unterminated": '
    if valid is None or choice < 0.35:
        return json.dumps(_random_scalar(rng)).encode()
    return json.dumps(_mutate(valid, rng)).encode()


def _raw_body(rng: random.Random, valid: bytes) -> bytes:
    choice = rng.random()
    if choice < 0.3:
        return valid
    if choice < 0.6:
        cut = rng.randrange(len(valid))
        return valid[:cut] + bytes([rng.getrandbits(8)]) + valid[cut + 1 :]
    if choice < 0.8:
        return valid[: rng.randrange(len(valid))]
    return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))


def _path(rng: random.Random, template: str, known: dict[str, list[str]]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in known and rng.random() < 0.7:
            return rng.choice(known[name])
        return rng.choice(
            ["x", "1", "%20", "A" * 36, "20260101-SO-0000000000-0000000000-00"]
        )

    return re.sub(r"\{(\w+)\}", fill, template)


def _query(rng: random.Random) -> dict[str, str] | None:
    if rng.random() < 0.5:
        return None
    names = rng.sample(_QUERY_NAMES, rng.randint(1, 4))
    return {name: rng.choice(_QUERY_VALUES) for name in names}


def _headers(rng: random.Random, bearers: list[str], presigned: bool) -> dict[str, str]:
    """Mostly the access token (pre-signed URLs: mostly none), sometimes others."""
    headers = {}
    if rng.random() < (0.1 if presigned else 0.95):
        weights = [75, 8, 8, 4]
        bearer = rng.choices(bearers, weights=weights)[0]
        headers["Authorization"] = f"Bearer {bearer}"
    if rng.random() < 0.3:
        headers["X-Error-Format"] = "problem-details"
    if rng.random() < 0.2:
        headers["x-continuation-token"] = rng.choice(
            ["garbage", "eyJzIjoieCIsIm8iOjF9", "e30=", "%%%", "A" * 200]
        )
    return headers


def _token(url: str) -> str:
    return url.rsplit("/", 1)[-1].split("?", 1)[0]


def _known_identifiers(
    kit: Kit,
) -> tuple[dict[str, list[str]], dict[str, Any], bytes]:
    """Real identifiers of every kind, so fuzzed paths also reach deep handlers.

    Also returns a batch part's upload request and its encrypted bytes.
    """
    closed, aes_key, iv = kit.open_online()
    invoice_ref = kit.send(closed, aes_key, iv, invoice_xml("Z/0")).json()[
        "referenceNumber"
    ]
    invoice = kit.invoice_status(closed, invoice_ref)
    kit.client.post(f"/sessions/online/{closed}/close", headers=kit.auth)
    upo_page = kit.session_status(closed)["upo"]["pages"][0]

    session, _, _ = kit.open_online()
    batch, requests, encrypted = kit.open_batch(
        zip_package({"a.xml": invoice_xml("Z/2")})
    )
    export = kit.client.post(
        "/invoices/exports", headers=kit.auth, json=_valid_bodies(kit)["start_export"]
    ).json()["referenceNumber"]
    parts = kit.client.get(f"/invoices/exports/{export}", headers=kit.auth).json()
    token = kit.client.post(
        "/tokens", headers=kit.auth, json=_valid_bodies(kit)["tokens_generate"]
    ).json()["referenceNumber"]
    auth = kit.client.get("/auth/sessions", headers=kit.auth).json()

    known = {
        "referenceNumber": [
            session,
            closed,
            batch,
            export,
            token,
            auth["items"][0]["referenceNumber"],
        ],
        "invoiceReferenceNumber": [invoice_ref],
        "upoReferenceNumber": [upo_page["referenceNumber"]],
        "ksefNumber": [invoice["ksefNumber"], "5265877635-20250826-0100001AF629-AF"],
        "ordinalNumber": ["1", "2"],
        "token": [
            _token(requests[0]["url"]),
            _token(invoice["upoDownloadUrl"]),
            _token(upo_page["downloadUrl"]),
            _token(parts["package"]["parts"][0]["url"]),
        ],
    }
    return known, requests[0], encrypted[0]


def test_no_server_errors_for_random_requests(env: SimulatorEnv, authed: Kit) -> None:
    """Every route answers random and mutated input without a 5xx."""
    env.allow_invalid_requests()
    rng = random.Random(SEED)
    known, upload, part = _known_identifiers(authed)
    started = authed.start_auth(env.nip, env.ksef_token)
    bearers = [
        authed.access_token,
        authed.refresh_token,
        started["authenticationToken"]["token"],
        "not.a.jwt",
    ]
    valid = _valid_bodies(authed)
    origin = str(authed.client.base_url).rsplit("/v2", 1)[0]

    # Shuffled, so that state changes (closing, revoking) land between other calls.
    plan = [op for op in OPERATIONS for _ in range(ROUNDS_PER_OPERATION)]
    rng.shuffle(plan)
    failures = []
    for operation in plan:
        path = origin + _path(rng, operation.full_path, known)
        headers = _headers(rng, bearers, operation.group == "presigned")
        params = _query(rng)
        if operation.name == "upload_part" and rng.random() < 0.6:
            # The real pre-signed URL and headers, so uploads get past the signature.
            path, params = upload["url"], None
            headers.update(upload["headers"])
            content = _raw_body(rng, part)
        elif operation.name in _RAW_BODIES:
            headers["Content-Type"], raw = _RAW_BODIES[operation.name]
            content = _raw_body(rng, raw)
        else:
            headers["Content-Type"] = "application/json"
            content = _body(rng, valid.get(operation.name))
        response = authed.client.request(
            operation.method,
            path,
            content=content,
            headers=headers,
            params=params,
        )
        if response.status_code >= 500:
            failures.append(f"{operation.method} {path}: {response.status_code}")

    assert failures == []
    assert env.sim.faults.history == []
    assert set(env.sim.request_counts) == {op.name for op in OPERATIONS}
