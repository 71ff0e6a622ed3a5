"""Authentication: challenge, KSeF-token auth, status, redeem, refresh, sessions."""

from __future__ import annotations

import base64
from contextlib import ExitStack

from simkit import Kit, bearer, exception_code, kit_for

from ksef_facade.testing.clock import ManualClock
from ksef_facade.testing.pytest_plugin import SimulatorEnv


def test_challenge_shape(kit: Kit) -> None:
    """The challenge is 36 characters and timestampMs matches timestamp."""
    body = kit.client.post("/auth/challenge").json()
    assert len(body["challenge"]) == 36
    assert body["clientIp"]
    assert body["timestampMs"] % 1000 == int(body["timestamp"][20:23])


def test_valid_token_authenticates(env: SimulatorEnv, kit: Kit) -> None:
    """The provisioned token reaches status 200 and redeems to two tokens."""
    kit.authenticate(env.nip, env.ksef_token)
    assert kit.access_token.count(".") == 2
    assert kit.refresh_token != kit.access_token


def test_unknown_token_fails_with_450(env: SimulatorEnv, kit: Kit) -> None:
    """A token the simulator does not know ends in status 450."""
    status = kit.wait_auth(kit.start_auth(env.nip, "not-a-token"))
    assert status["status"]["code"] == 450
    assert status["status"]["details"] == ["Nieprawidłowy token"]


def test_token_for_another_context_fails_with_450(env: SimulatorEnv, kit: Kit) -> None:
    """A token used in a context it was not issued for is refused."""
    status = kit.wait_auth(kit.start_auth("7352765225", env.ksef_token))
    assert status["status"]["code"] == 450
    assert "7352765225" in status["status"]["details"][0]


def test_wrong_timestamp_fails_with_450(env: SimulatorEnv, kit: Kit) -> None:
    """Encrypting a timestamp other than the challenge's is refused."""
    started = kit.start_auth(env.nip, env.ksef_token, stamp_shift=1)
    status = kit.wait_auth(started)
    assert status["status"]["details"] == ["Nieprawidłowy czas tokena"]


def test_garbage_ciphertext_fails_with_450(env: SimulatorEnv, kit: Kit) -> None:
    """Ciphertext that does not decrypt is an encryption failure."""
    challenge = kit.client.post("/auth/challenge").json()
    started = kit.client.post(
        "/auth/ksef-token",
        json={
            "challenge": challenge["challenge"],
            "contextIdentifier": {"type": "Nip", "value": env.nip},
            "encryptedToken": base64.b64encode(b"\1" * 256).decode(),
        },
    ).json()
    assert kit.wait_auth(started)["status"]["details"] == [
        "Nieprawidłowe szyfrowanie tokena"
    ]


def test_unknown_challenge_gets_21111(env: SimulatorEnv, kit: Kit) -> None:
    """A challenge the simulator never issued is error 21111."""
    response = kit.client.post(
        "/auth/ksef-token",
        json={
            "challenge": "20260101-CR-0000000000-0000000000-00",
            "contextIdentifier": {"type": "Nip", "value": env.nip},
            "encryptedToken": base64.b64encode(b"x").decode(),
        },
    )
    assert response.status_code == 400
    assert exception_code(response) == 21111


def test_challenge_is_single_use(env: SimulatorEnv, kit: Kit) -> None:
    """Reusing a challenge is error 21111."""
    challenge = kit.client.post("/auth/challenge").json()
    body = {
        "challenge": challenge["challenge"],
        "contextIdentifier": {"type": "Nip", "value": env.nip},
        "encryptedToken": base64.b64encode(b"x").decode(),
    }
    assert kit.client.post("/auth/ksef-token", json=body).status_code == 202
    assert exception_code(kit.client.post("/auth/ksef-token", json=body)) == 21111


def test_challenge_expires_after_ten_minutes(make_env) -> None:
    """uwierzytelnianie.md: a challenge older than 10 minutes is refused."""
    clock = ManualClock()
    env = make_env(clock=clock)
    with ExitStack() as stack:
        kit = kit_for(env, stack)
        challenge = kit.client.post("/auth/challenge").json()
        clock.advance(601)
        response = kit.client.post(
            "/auth/ksef-token",
            json={
                "challenge": challenge["challenge"],
                "contextIdentifier": {"type": "Nip", "value": env.nip},
                "encryptedToken": base64.b64encode(b"x").decode(),
            },
        )
        assert exception_code(response) == 21111


def test_auth_status_in_progress_until_delay_passes(make_env) -> None:
    """With a processing delay the status is 100, then 200."""
    clock = ManualClock()
    env = make_env(clock=clock, processing_delay=2.0)
    with ExitStack() as stack:
        kit = kit_for(env, stack)
        started = kit.start_auth(env.nip, env.ksef_token)
        headers = bearer(started["authenticationToken"]["token"])
        url = f"/auth/{started['referenceNumber']}"
        assert kit.client.get(url, headers=headers).json()["status"]["code"] == 100
        redeem = kit.client.post("/auth/token/redeem", headers=headers)
        assert exception_code(redeem) == 21301
        clock.advance(2)
        assert kit.client.get(url, headers=headers).json()["status"]["code"] == 200


def test_redeem_only_once(env: SimulatorEnv, kit: Kit) -> None:
    """A second redeem with the same authentication token is 21301."""
    started = kit.start_auth(env.nip, env.ksef_token)
    headers = bearer(started["authenticationToken"]["token"])
    assert kit.client.post("/auth/token/redeem", headers=headers).status_code == 200
    assert (
        exception_code(kit.client.post("/auth/token/redeem", headers=headers)) == 21301
    )


def test_status_needs_the_matching_authentication_token(
    env: SimulatorEnv, kit: Kit
) -> None:
    """Another operation's reference is 21304."""
    first = kit.start_auth(env.nip, env.ksef_token)
    second = kit.start_auth(env.nip, env.ksef_token)
    headers = bearer(first["authenticationToken"]["token"])
    response = kit.client.get(f"/auth/{second['referenceNumber']}", headers=headers)
    assert exception_code(response) == 21304


def test_missing_bearer_is_401_problem(env: SimulatorEnv, kit: Kit) -> None:
    """No Authorization header: 401 in Problem Details."""
    env.allow_invalid_requests()
    response = kit.client.get("/sessions", params={"sessionType": "Online"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401


def test_refresh_gives_a_working_access_token(authed: Kit) -> None:
    """The refresh token yields a new, usable access token."""
    response = authed.client.post(
        "/auth/token/refresh", headers=bearer(authed.refresh_token)
    )
    assert response.status_code == 200
    authed.access_token = response.json()["accessToken"]["token"]
    assert authed.client.get("/auth/sessions", headers=authed.auth).status_code == 200


def test_access_token_expires(make_env) -> None:
    """After access_token_ttl the access token gets 401."""
    clock = ManualClock()
    env = make_env(clock=clock, access_token_ttl=60)
    with ExitStack() as stack:
        kit = kit_for(env, stack)
        kit.authenticate(env.nip, env.ksef_token)
        clock.advance(61)
        assert kit.client.get("/auth/sessions", headers=kit.auth).status_code == 401
        refreshed = kit.client.post(
            "/auth/token/refresh", headers=bearer(kit.refresh_token)
        )
        assert refreshed.status_code == 200


def test_expire_tokens_control_call(env: SimulatorEnv, authed: Kit) -> None:
    """sim.expire_tokens() makes live access tokens fail with 401 at once."""
    assert env.sim.expire_tokens("access") == 1
    assert authed.client.get("/auth/sessions", headers=authed.auth).status_code == 401


def test_access_token_cannot_refresh(authed: Kit) -> None:
    """Refreshing with an access token is 401."""
    response = authed.client.post("/auth/token/refresh", headers=authed.auth)
    assert response.status_code == 401


def test_auth_sessions_list_marks_current(env: SimulatorEnv, authed: Kit) -> None:
    """The calling session is listed with isCurrent."""
    items = authed.client.get("/auth/sessions", headers=authed.auth).json()["items"]
    assert len(items) == 1
    assert items[0]["isCurrent"] is True
    assert items[0]["authenticationMethodInfo"]["category"] == "Token"


def test_auth_sessions_list_pages(env: SimulatorEnv, authed: Kit) -> None:
    """Eleven sessions come back as 10 plus 1 with a continuation token."""
    for _ in range(10):
        Kit(authed.client).authenticate(env.nip, env.ksef_token)
    first = authed.client.get("/auth/sessions", headers=authed.auth).json()
    headers = {**authed.auth, "x-continuation-token": first["continuationToken"]}
    second = authed.client.get("/auth/sessions", headers=headers).json()
    assert len(first["items"]) == 10
    assert len(second["items"]) == 1
    assert "continuationToken" not in second


def test_revoking_current_session_stops_refresh(authed: Kit) -> None:
    """auth/sesje.md: after revocation the refresh token no longer works."""
    assert (
        authed.client.delete("/auth/sessions/current", headers=authed.auth).status_code
        == 204
    )
    refresh = authed.client.post(
        "/auth/token/refresh", headers=bearer(authed.refresh_token)
    )
    assert refresh.status_code == 401
    assert authed.client.get("/auth/sessions", headers=authed.auth).status_code == 200


def test_revoke_other_session(env: SimulatorEnv, authed: Kit) -> None:
    """DELETE /auth/sessions/{ref} revokes that session, status becomes 425."""
    other = Kit(authed.client)
    started = other.start_auth(env.nip, env.ksef_token)
    reference = started["referenceNumber"]
    headers = bearer(started["authenticationToken"]["token"])
    other.client.post("/auth/token/redeem", headers=headers)
    response = authed.client.delete(f"/auth/sessions/{reference}", headers=authed.auth)
    assert response.status_code == 204
    status = authed.client.get(f"/auth/{reference}", headers=headers).json()
    assert status["status"]["code"] == 425


def test_xades_is_not_supported_yet(env: SimulatorEnv, kit: Kit) -> None:
    """XAdES auth answers a clear 400 until it is implemented."""
    env.allow_invalid_requests()
    response = kit.client.post(
        "/auth/xades-signature",
        content=b"<AuthTokenRequest/>",
        headers={"Content-Type": "application/xml"},
    )
    assert response.status_code == 400
    assert (
        "XAdES" in response.json()["exception"]["exceptionDetailList"][0]["details"][0]
    )


def _auth_with_policy(kit: Kit, env: SimulatorEnv, allowed: dict) -> None:
    policy = {"authorizationPolicy": {"allowedIps": allowed}}
    started = kit.start_auth(env.nip, env.ksef_token, extra=policy)
    headers = bearer(started["authenticationToken"]["token"])
    kit.wait_auth(started)
    kit.access_token = kit.client.post("/auth/token/redeem", headers=headers).json()[
        "accessToken"
    ]["token"]


def test_ip_policy_allows_listed_addresses(env: SimulatorEnv, kit: Kit) -> None:
    """An access token limited to a mask covering the client works."""
    _auth_with_policy(kit, env, {"ip4Masks": ["127.0.0.0/8"]})
    assert kit.client.get("/auth/sessions", headers=kit.auth).status_code == 200


def test_ip_policy_refuses_other_addresses(env: SimulatorEnv, kit: Kit) -> None:
    """Using the token from another IP is 403 ip-not-allowed."""
    _auth_with_policy(kit, env, {"ip4Ranges": ["10.0.0.1-10.0.0.9"]})
    response = kit.client.get("/auth/sessions", headers=kit.auth)
    assert response.status_code == 403
    assert response.json()["reasonCode"] == "ip-not-allowed"


def test_auth_status_is_gone_after_retention(make_env) -> None:
    """api-changelog.md 2.4.0: past retention GET /auth/{ref} answers 410 Gone."""
    clock = ManualClock()
    env = make_env(clock=clock, status_retention=60)
    with ExitStack() as stack:
        kit = kit_for(env, stack)
        started = kit.start_auth(env.nip, env.ksef_token)
        url = f"/auth/{started['referenceNumber']}"
        headers = bearer(started["authenticationToken"]["token"])
        kept = kit.client.get(url, headers=headers)
        clock.advance(60)
        gone = kit.client.get(url, headers=headers)
    assert kept.status_code == 200
    assert gone.status_code == 410
    assert gone.headers["content-type"] == "application/problem+json"
    assert gone.json()["instance"] == f"/v2{url}"


def test_token_without_permissions_fails_with_415(env: SimulatorEnv, kit: Kit) -> None:
    """A KSeF token with no permissions ends authentication with status 415."""
    nip = "7352765225"
    token = env.sim.add_ksef_token(nip, permissions=())
    status = kit.wait_auth(kit.start_auth(nip, token))["status"]
    assert status["code"] == 415
    assert status["details"] == ["Brak przypisanych uprawnień"]
