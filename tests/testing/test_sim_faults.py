"""Fault injection switches, each proven to fire and to stop."""

from __future__ import annotations

import time

import httpx
import pytest
from simkit import Kit, invoice_xml, zip_package

from ksef_facade.testing.pytest_plugin import SimulatorEnv


def test_server_errors_fire_count_times(env: SimulatorEnv, kit: Kit) -> None:
    """server_errors(2) answers two 503s, then the route works again."""
    fault = env.sim.faults.server_errors(2, route="auth_challenge")
    codes = [kit.client.post("/auth/challenge").status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    assert fault.fired == 2
    assert fault.exhausted


def test_server_errors_do_not_process(env: SimulatorEnv, kit: Kit) -> None:
    """An injected 5xx happens before processing: no challenge is issued."""
    env.sim.faults.server_errors(1, status=500, route="auth_challenge")
    kit.client.post("/auth/challenge")
    assert env.sim.challenges == {}


def test_faults_only_hit_their_route(env: SimulatorEnv, kit: Kit) -> None:
    """A fault for one route leaves the others alone."""
    env.sim.faults.server_errors(1, route="auth_challenge")
    assert kit.client.get("/security/public-key-certificates").status_code == 200
    assert kit.client.post("/auth/challenge").status_code == 503


def test_after_skips_the_first_requests(env: SimulatorEnv, kit: Kit) -> None:
    """after=1 lets the first matching request through."""
    env.sim.faults.server_errors(1, route="auth_challenge", after=1)
    codes = [kit.client.post("/auth/challenge").status_code for _ in range(3)]
    assert codes == [200, 503, 200]


def test_rate_limited_storm_sends_retry_after(env: SimulatorEnv, kit: Kit) -> None:
    """rate_limited answers 429 with Retry-After in the legacy body."""
    env.sim.faults.rate_limited(2, retry_after=7)
    response = kit.client.post("/auth/challenge")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["status"]["code"] == 429


def test_rate_limited_in_problem_details(env: SimulatorEnv, kit: Kit) -> None:
    """The 429 follows X-Error-Format: problem-details."""
    env.sim.faults.rate_limited(1)
    response = kit.client.post(
        "/auth/challenge", headers={"X-Error-Format": "problem-details"}
    )
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 429


def test_latency_delays_requests(env: SimulatorEnv, kit: Kit) -> None:
    """latency adds the given delay to matching requests."""
    env.sim.faults.latency(0.2, route="auth_challenge", count=1)
    started = time.monotonic()
    assert kit.client.post("/auth/challenge").status_code == 200
    assert time.monotonic() - started >= 0.2


def test_drop_before_in_process_raises_and_does_nothing(
    env: SimulatorEnv, kit: Kit
) -> None:
    """drop_before loses the connection and processes nothing."""
    env.sim.faults.drop_before(1, route="auth_challenge")
    with pytest.raises(httpx.RemoteProtocolError):
        kit.client.post("/auth/challenge")
    assert env.sim.challenges == {}


def test_drop_after_in_process_processes_then_drops(
    env: SimulatorEnv, authed: Kit
) -> None:
    """drop_after opens the session, then loses the connection."""
    env.sim.faults.drop_after(1, route="open_online_session")
    with pytest.raises(httpx.RemoteProtocolError):
        authed.open_online()
    assert len(env.sim.session_records("Online")) == 1


def test_drop_after_over_loopback(ksef_simulator: SimulatorEnv) -> None:
    """Over a socket drop_after processes the request and closes the connection."""
    ksef_simulator.sim.faults.drop_after(1, route="auth_challenge")
    with ksef_simulator.client() as client:
        with pytest.raises(httpx.TransportError):
            client.post("/auth/challenge")
        assert len(ksef_simulator.sim.challenges) == 1
        assert client.post("/auth/challenge").status_code == 200


def test_drop_before_over_loopback(ksef_simulator: SimulatorEnv) -> None:
    """Over a socket drop_before closes the connection unprocessed."""
    ksef_simulator.sim.faults.drop_before(1, route="auth_challenge")
    with ksef_simulator.client() as client:
        with pytest.raises(httpx.TransportError):
            client.post("/auth/challenge")
        assert ksef_simulator.sim.challenges == {}


def test_failing_part_uploads(env: SimulatorEnv, authed: Kit) -> None:
    """fail_part_uploads fails the next upload; a retry succeeds."""
    env.sim.faults.fail_part_uploads(1)
    _, requests, parts = authed.open_batch(zip_package({"a.xml": invoice_xml("F/1")}))
    assert authed.upload(requests[0], parts[0]).status_code == 503
    assert authed.upload(requests[0], parts[0]).status_code == 201


def test_unknown_route_is_refused(env: SimulatorEnv) -> None:
    """A typo in the route name is a ValueError, not a silent no-op."""
    with pytest.raises(ValueError, match="unknown route"):
        env.sim.faults.server_errors(1, route="send_invoice_online")


def test_history_records_what_fired(env: SimulatorEnv, kit: Kit) -> None:
    """faults.history lists (operation, kind) of every activation."""
    env.sim.faults.server_errors(1, route="auth_challenge")
    kit.client.post("/auth/challenge")
    assert env.sim.faults.history == [("auth_challenge", "server_error")]


def test_clear_removes_rules(env: SimulatorEnv, kit: Kit) -> None:
    """After clear() no rule fires."""
    env.sim.faults.server_errors(None)
    env.sim.faults.clear()
    assert kit.client.post("/auth/challenge").status_code == 200


def test_request_timeout_status_is_allowed(env: SimulatorEnv, kit: Kit) -> None:
    """server_errors also injects 408 Request Timeout."""
    env.sim.faults.server_errors(1, status=408, route="auth_challenge")
    assert kit.client.post("/auth/challenge").status_code == 408


def test_client_error_statuses_are_refused(env: SimulatorEnv) -> None:
    """server_errors refuses statuses that are not server-side failures."""
    with pytest.raises(ValueError, match="5xx"):
        env.sim.faults.server_errors(1, status=404)


def _listed(kit: Kit, session: str, suffix: str = "") -> list[str]:
    response = kit.client.get(f"/sessions/{session}/invoices{suffix}", headers=kit.auth)
    assert response.status_code == 200, response.text
    return [invoice["referenceNumber"] for invoice in response.json()["invoices"]]


def test_listing_lag_hides_a_new_invoice_for_n_listings(
    env: SimulatorEnv, authed: Kit
) -> None:
    """listing_lag(calls=2): the invoice shows only on the third listing."""
    fault = env.sim.faults.listing_lag(calls=2)
    session, aes_key, iv = authed.open_online()
    reference = authed.send(session, aes_key, iv, invoice_xml("L/1")).json()[
        "referenceNumber"
    ]
    listings = [_listed(authed, session) for _ in range(3)]
    assert listings == [[], [], [reference]]
    assert fault.fired == 1
    assert env.sim.faults.history == [("session_invoices", "listing_lag")] * 2


def test_listing_lag_keeps_the_invoice_status_reachable(
    env: SimulatorEnv, authed: Kit
) -> None:
    """While an invoice is left out of listings, its own status answers 200."""
    env.sim.faults.listing_lag(calls=5)
    session, aes_key, iv = authed.open_online()
    reference = authed.send(session, aes_key, iv, invoice_xml("L/2")).json()[
        "referenceNumber"
    ]
    assert _listed(authed, session) == []
    assert authed.invoice_status(session, reference)["status"]["code"] == 200


def test_listing_lag_spares_earlier_invoices(env: SimulatorEnv, authed: Kit) -> None:
    """Invoices recorded before the fault was added stay listed."""
    session, aes_key, iv = authed.open_online()
    first = authed.send(session, aes_key, iv, invoice_xml("L/3")).json()
    env.sim.faults.listing_lag(calls=1)
    authed.send(session, aes_key, iv, invoice_xml("L/4"))
    assert _listed(authed, session) == [first["referenceNumber"]]
    assert len(_listed(authed, session)) == 2


def test_listing_lag_count_limits_lagging_invoices(
    env: SimulatorEnv, authed: Kit
) -> None:
    """count=1 makes only the next invoice lag; the one after is listed at once."""
    env.sim.faults.listing_lag(calls=1, count=1)
    session, aes_key, iv = authed.open_online()
    authed.send(session, aes_key, iv, invoice_xml("L/5"))
    second = authed.send(session, aes_key, iv, invoice_xml("L/6")).json()
    assert _listed(authed, session) == [second["referenceNumber"]]


def test_listing_lag_counts_failed_listings_too(env: SimulatorEnv, authed: Kit) -> None:
    """A rejected invoice is also missing from /invoices/failed while it lags."""
    env.sim.faults.listing_lag(calls=1)
    session, aes_key, iv = authed.open_online()
    rejected = authed.send(session, aes_key, iv, b"<not-an-invoice/>").json()
    assert _listed(authed, session, "/failed") == []
    assert _listed(authed, session, "/failed") == [rejected["referenceNumber"]]


def test_listing_lag_needs_a_positive_call_count(env: SimulatorEnv) -> None:
    """listing_lag(calls=0) is refused with a ValueError."""
    with pytest.raises(ValueError, match="calls"):
        env.sim.faults.listing_lag(calls=0)
