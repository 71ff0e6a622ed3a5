"""Contract validation: violations are found, described readably, and fail tests."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from simkit import Kit, invoice_xml

from ksef_facade.testing import app as app_module
from ksef_facade.testing.calls import Reply
from ksef_facade.testing.contract import (
    ContractViolation,
    default_spec_path,
    shared_validator,
)
from ksef_facade.testing.pytest_plugin import SimulatorEnv
from ksef_facade.testing.simulator import Simulator


def test_spec_path_honours_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """KSEF_SPEC_FILE overrides the default spec location."""
    monkeypatch.setenv("KSEF_SPEC_FILE", str(tmp_path / "spec.json"))
    assert default_spec_path() == tmp_path / "spec.json"


def test_validator_is_built_once(pinned_spec_path) -> None:
    """The validator is cached per process."""
    assert shared_validator(pinned_spec_path) is shared_validator(pinned_spec_path)


def test_wrong_response_shape_is_recorded(
    env: SimulatorEnv, kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A response missing required fields is a readable violation."""
    monkeypatch.setitem(
        app_module.HANDLERS, "auth_challenge", lambda call: Reply(200, {"challenge": 1})
    )
    kit.client.post("/auth/challenge")
    (violation,) = env.sim.contract_violations
    assert violation.startswith("POST /v2/auth/challenge (auth_challenge) -> 200")
    assert "required" in violation or "type" in violation
    env.sim.contract_violations.clear()


def test_invalid_request_is_recorded_separately(env: SimulatorEnv, kit: Kit) -> None:
    """A request breaking the spec lands in contract_request_violations."""
    kit.client.post("/auth/ksef-token", json={})
    assert env.sim.contract_request_violations
    assert env.sim.contract_violations == []
    assert env.contract_problems()
    env.allow_invalid_requests()
    assert env.contract_problems() == []


def test_valid_traffic_records_nothing(env: SimulatorEnv, authed: Kit) -> None:
    """Authentication and an online session produce no violations."""
    session, _, _ = authed.open_online()
    authed.client.get(f"/sessions/{session}", headers=authed.auth)
    assert env.sim.validate_contract
    assert env.contract_problems() == []


def _forbid_extra_fields(node: object) -> None:
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _forbid_extra_fields(value)
    elif isinstance(node, list):
        for value in node:
            _forbid_extra_fields(value)


def test_responses_carry_no_undeclared_fields(pinned_spec_path, tmp_path) -> None:
    """Against a copy of the spec that forbids extra fields, a full flow stays clean."""
    spec = json.loads(pinned_spec_path.read_text(encoding="utf-8"))
    _forbid_extra_fields(spec["components"]["schemas"])
    strict = tmp_path / "strict-spec.json"
    strict.write_text(json.dumps(spec), encoding="utf-8")

    sim = Simulator(validate_contract=True, spec_path=str(strict))
    token = sim.add_ksef_token("5265877635")
    with httpx.Client(
        transport=sim.sync_transport(), base_url="http://sim/v2"
    ) as client:
        kit = Kit(client)
        kit.authenticate("5265877635", token)
        session, aes_key, iv = kit.open_online()
        reference = kit.send(session, aes_key, iv, invoice_xml("C/1")).json()[
            "referenceNumber"
        ]
        kit.invoice_status(session, reference)
        client.post(f"/sessions/online/{session}/close", headers=kit.auth)
        kit.session_status(session)
        client.get(f"/sessions/{session}/invoices", headers=kit.auth)
        client.get("/sessions", headers=kit.auth, params={"sessionType": "Online"})
        client.get("/auth/sessions", headers=kit.auth)
        client.get("/tokens", headers=kit.auth)
        since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        query = client.post(
            "/invoices/query/metadata",
            headers=kit.auth,
            json={
                "subjectType": "Subject1",
                "dateRange": {"dateType": "PermanentStorage", "from": since},
            },
        )
    assert len(query.json()["invoices"]) == 1
    assert sim.contract_violations == []


def test_missing_spec_fails_at_construction(tmp_path) -> None:
    """validate_contract=True with no spec file raises at once, naming the path."""
    missing = tmp_path / "nowhere.json"
    with pytest.raises(FileNotFoundError, match="KSEF_SPEC_FILE") as raised:
        Simulator(validate_contract=True, spec_path=str(missing))
    assert str(missing) in str(raised.value)


def test_missing_openapi_core_names_the_extra(
    pinned_spec_path, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without openapi-core the switch raises ImportError naming the extra."""
    copy = tmp_path / "spec.json"
    copy.write_bytes(pinned_spec_path.read_bytes())
    monkeypatch.setitem(sys.modules, "openapi_core", None)
    with pytest.raises(ImportError, match=r"ksef-facade\[contract\]"):
        Simulator(validate_contract=True, spec_path=str(copy))


def test_check_contract_raises_readably(
    env: SimulatorEnv, kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """check_contract() raises ContractViolation naming the operation and problem."""
    monkeypatch.setitem(
        app_module.HANDLERS, "auth_challenge", lambda call: Reply(200, {"x": 1})
    )
    env.sim.check_contract()
    kit.client.post("/auth/challenge")
    with pytest.raises(ContractViolation, match=r"1 KSeF contract violation") as raised:
        env.sim.check_contract()
    assert "POST /v2/auth/challenge (auth_challenge) -> 200" in str(raised.value)
    env.sim.contract_violations.clear()


def test_check_contract_can_skip_request_violations(
    env: SimulatorEnv, kit: Kit
) -> None:
    """requests=False ignores bad requests but not bad responses."""
    env.allow_invalid_requests()
    kit.client.post("/auth/ksef-token", json={})
    env.sim.check_contract(requests=False)
    with pytest.raises(ContractViolation, match="auth_ksef_token"):
        env.sim.check_contract()
