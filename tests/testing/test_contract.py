"""Contract validation: violations are found, described readably, and fail tests."""

from __future__ import annotations

import pytest
from simkit import Kit

from ksef_facade.testing import app as app_module
from ksef_facade.testing.calls import Reply
from ksef_facade.testing.contract import default_spec_path, shared_validator
from ksef_facade.testing.pytest_plugin import SimulatorEnv


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
