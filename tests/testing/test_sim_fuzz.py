"""Random and mutated requests to every route: 4xx at worst, never a 5xx."""

from __future__ import annotations

import json
import random
import re
from typing import Any

from simkit import FA3, Kit, invoice_xml, zip_package

from ksef_facade.testing.operations import OPERATIONS
from ksef_facade.testing.pytest_plugin import SimulatorEnv

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
        "tokens_generate": {"permissions": ["InvoiceRead"], "description": "fuzzing"},
    }


def _body(rng: random.Random, valid: Any) -> bytes:
    choice = rng.random()
    if choice < 0.15:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
    if choice < 0.25:
        return b'{"unterminated": '
    if valid is None or choice < 0.35:
        return json.dumps(_random_scalar(rng)).encode()
    return json.dumps(_mutate(valid, rng)).encode()


def _path(rng: random.Random, template: str, known: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in known and rng.random() < 0.6:
            return known[name]
        return rng.choice(
            ["x", "1", "%20", "A" * 36, "20260101-SO-0000000000-0000000000-00"]
        )

    return re.sub(r"\{(\w+)\}", fill, template)


def test_no_server_errors_for_random_requests(env: SimulatorEnv, authed: Kit) -> None:
    """Every route answers random and mutated input without a 5xx."""
    env.allow_invalid_requests()
    rng = random.Random(SEED)
    session, _, _ = authed.open_online()
    batch, requests, _ = authed.open_batch(zip_package({"a.xml": invoice_xml("Z/2")}))
    known = {
        "referenceNumber": session,
        "ordinalNumber": "1",
        "ksefNumber": "5265877635-20250826-0100001AF629-AF",
        "token": requests[0]["url"].rsplit("=", 1)[-1],
    }
    valid = _valid_bodies(authed)
    origin = str(authed.client.base_url).rsplit("/v2", 1)[0]

    failures = []
    for operation in OPERATIONS:
        for _ in range(ROUNDS_PER_OPERATION):
            path = origin + _path(rng, operation.full_path, known)
            headers = dict(authed.auth) if rng.random() < 0.8 else {}
            if rng.random() < 0.3:
                headers["X-Error-Format"] = "problem-details"
            headers["Content-Type"] = "application/json"
            response = authed.client.request(
                operation.method,
                path,
                content=_body(rng, valid.get(operation.name)),
                headers=headers,
                params={"pageSize": str(rng.choice([5, 10, 5000, -1]))}
                if rng.random() < 0.3
                else None,
            )
            if response.status_code >= 500:
                failures.append(f"{operation.method} {path}: {response.status_code}")

    assert failures == []
    assert env.sim.faults.history == []
    assert set(env.sim.request_counts) == {op.name for op in OPERATIONS}
    assert batch
