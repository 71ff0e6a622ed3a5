"""Optional enforcement of the spec's x-rate-limits."""

from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

from simkit import exception_code, kit_for

from ksef_facade.testing.clock import ManualClock
from ksef_facade.testing.operations import OPERATIONS
from ksef_facade.testing.ratelimit import LIMITS, OVERRIDABLE, RateLimiter

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_disabled_limiter_never_limits() -> None:
    """Without enforcement every request passes."""
    limiter = RateLimiter(enabled=False)
    assert all(limiter.check("k", "sessionList", T0) is None for _ in range(100))


def test_per_second_limit_and_retry_after() -> None:
    """sessionList allows 5 per second; the sixth waits one second."""
    limiter = RateLimiter(enabled=True)
    results = [limiter.check("k", "sessionList", T0) for _ in range(6)]
    assert results[:5] == [None] * 5
    assert results[5] == 1


def test_per_minute_window_slides() -> None:
    """sessionList allows 10 per minute; the window slides rather than resets."""
    limiter = RateLimiter(enabled=True)
    for n in range(10):
        assert limiter.check("k", "sessionList", T0 + timedelta(seconds=n)) is None
    wait = limiter.check("k", "sessionList", T0 + timedelta(seconds=10))
    assert wait == 50
    assert limiter.check("k", "sessionList", T0 + timedelta(seconds=60.5)) is None


def test_other_endpoints_count_on_their_own() -> None:
    """limity-api.md: each default-limited endpoint has its own counter."""
    limiter = RateLimiter(enabled=True)
    for _ in range(10):
        limiter.check("k", "other", T0, "tokens_list")
    assert limiter.check("k", "other", T0, "tokens_list") == 1
    assert limiter.check("k", "other", T0, "token_status") is None


def test_keys_are_counted_separately() -> None:
    """Different context/IP keys have separate windows (limity-api.md)."""
    limiter = RateLimiter(enabled=True)
    for _ in range(5):
        limiter.check("a", "sessionList", T0)
    assert limiter.check("b", "sessionList", T0) is None


def test_enforced_over_http_with_retry_after(make_env) -> None:
    """With enforce_rate_limits the sixth session list in a second is 429."""
    clock = ManualClock()
    env = make_env(clock=clock, enforce_rate_limits=True)
    with ExitStack() as stack:
        kit = kit_for(env, stack)
        kit.authenticate(env.nip, env.ksef_token)
        params = {"sessionType": "Online"}
        codes = [
            kit.client.get("/sessions", headers=kit.auth, params=params).status_code
            for _ in range(6)
        ]
        assert codes == [200] * 5 + [429]
        limited = kit.client.get("/sessions", headers=kit.auth, params=params)
        assert int(limited.headers["retry-after"]) >= 1
        clock.advance(1)
        assert (
            kit.client.get("/sessions", headers=kit.auth, params=params).status_code
            == 200
        )


def test_limits_match_the_spec(pinned_spec_path) -> None:
    """Every served operation's group carries the spec's x-rate-limits."""
    spec = json.loads(pinned_spec_path.read_text(encoding="utf-8"))
    for operation in OPERATIONS:
        if operation.group == "presigned":
            continue
        declared = spec["paths"][operation.path][operation.method.lower()][
            "x-rate-limits"
        ]
        expected = tuple(declared.get(k) for k in ("perSecond", "perMinute", "perHour"))
        assert LIMITS[operation.group] == expected, operation.name


def test_pushing_while_blocked_lengthens_the_block() -> None:
    """With escalation, each request during a block doubles what is left of it."""
    limiter = RateLimiter(enabled=True, escalation=2.0)
    for _ in range(5):
        limiter.check("k", "sessionList", T0)
    assert limiter.check("k", "sessionList", T0) == 1
    assert limiter.check("k", "sessionList", T0) == 2
    assert limiter.check("k", "sessionList", T0) == 4
    assert limiter.check("k", "sessionList", T0 + timedelta(seconds=5)) is None


def test_scale_lowers_the_limits() -> None:
    """scale=0.2 turns sessionList's 5 per second into 1."""
    limiter = RateLimiter(enabled=True, scale=0.2)
    assert limiter.check("k", "sessionList", T0) is None
    assert limiter.check("k", "sessionList", T0) == 1


def _spec_example(pinned_spec_path) -> dict:
    spec = json.loads(pinned_spec_path.read_text(encoding="utf-8"))
    answer = spec["paths"]["/rate-limits"]["get"]["responses"]["200"]
    return answer["content"]["application/json"]["example"]


def _override_body(per_second: int) -> dict:
    values = {"perSecond": per_second, "perMinute": -1, "perHour": 1000}
    return {"rateLimits": {group: dict(values) for group in OVERRIDABLE}}


def test_get_rate_limits_matches_the_spec_example(pinned_spec_path, authed) -> None:
    """GET /rate-limits answers the spec's example values, -1 for no limit."""
    response = authed.client.get("/rate-limits", headers=authed.auth)
    assert response.status_code == 200
    assert response.json() == _spec_example(pinned_spec_path)


def test_get_rate_limits_applies_the_scale(make_env) -> None:
    """rate_limit_scale shrinks the reported limits as it shrinks the enforced."""
    env = make_env(rate_limit_scale=0.5)
    with ExitStack() as stack:
        kit = kit_for(env, stack)
        kit.authenticate(env.nip, env.ksef_token)
        body = kit.client.get("/rate-limits", headers=kit.auth).json()
    assert body["sessionList"] == {"perSecond": 2, "perMinute": 5, "perHour": 30}
    assert body["anonymous"] == {"perSecond": 30, "perMinute": -1, "perHour": -1}


def test_get_rate_limits_needs_a_bearer(env, kit) -> None:
    """Without an access token GET /rate-limits is 401."""
    env.allow_invalid_requests()
    assert kit.client.get("/rate-limits").status_code == 401


def test_testdata_rate_limits_are_reported(authed) -> None:
    """POST /testdata/rate-limits changes what GET /rate-limits reports."""
    posted = authed.client.post(
        "/testdata/rate-limits", headers=authed.auth, json=_override_body(3)
    )
    body = authed.client.get("/rate-limits", headers=authed.auth).json()
    assert posted.status_code == 200
    assert body["invoiceSend"] == {"perSecond": 3, "perMinute": -1, "perHour": 1000}
    # Groups outside ApiRateLimitsOverride keep their values.
    assert body["onlineSessionClose"] == {
        "perSecond": 20,
        "perMinute": 60,
        "perHour": 240,
    }


def test_testdata_rate_limits_are_enforced(make_env) -> None:
    """A context's own limit of 1 per second makes the second session list 429."""
    env = make_env(clock=ManualClock(), enforce_rate_limits=True)
    with ExitStack() as stack:
        kit = kit_for(env, stack)
        kit.authenticate(env.nip, env.ksef_token)
        kit.client.post(
            "/testdata/rate-limits", headers=kit.auth, json=_override_body(1)
        )
        params = {"sessionType": "Online"}
        codes = [
            kit.client.get("/sessions", headers=kit.auth, params=params).status_code
            for _ in range(2)
        ]
    assert codes == [200, 429]


def test_testdata_rate_limits_are_per_context(make_env) -> None:
    """Limits set for one NIP leave another NIP's limits alone."""
    env = make_env()
    other_nip = "7352765225"
    other_token = env.sim.add_ksef_token(other_nip)
    with ExitStack() as stack:
        mine, theirs = kit_for(env, stack), kit_for(env, stack)
        mine.authenticate(env.nip, env.ksef_token)
        theirs.authenticate(other_nip, other_token)
        mine.client.post(
            "/testdata/rate-limits", headers=mine.auth, json=_override_body(2)
        )
        body = theirs.client.get("/rate-limits", headers=theirs.auth).json()
    assert body["invoiceSend"]["perSecond"] == LIMITS["invoiceSend"][0]


def test_delete_testdata_rate_limits_restores_defaults(
    pinned_spec_path, authed
) -> None:
    """DELETE /testdata/rate-limits brings back the default limits."""
    authed.client.post(
        "/testdata/rate-limits", headers=authed.auth, json=_override_body(2)
    )
    deleted = authed.client.delete("/testdata/rate-limits", headers=authed.auth)
    body = authed.client.get("/rate-limits", headers=authed.auth).json()
    assert deleted.status_code == 200
    assert body == _spec_example(pinned_spec_path)


def test_production_rate_limits_ignore_the_scale(pinned_spec_path, make_env) -> None:
    """POST /testdata/rate-limits/production sets the documented values, unscaled."""
    env = make_env(rate_limit_scale=0.1)
    with ExitStack() as stack:
        kit = kit_for(env, stack)
        kit.authenticate(env.nip, env.ksef_token)
        before = kit.client.get("/rate-limits", headers=kit.auth).json()
        kit.client.post("/testdata/rate-limits/production", headers=kit.auth)
        after = kit.client.get("/rate-limits", headers=kit.auth).json()
    assert before["invoiceSend"]["perSecond"] == 1
    assert after == _spec_example(pinned_spec_path)


def test_testdata_rate_limits_reject_incomplete_bodies(env, authed) -> None:
    """A body missing a group or with a zero limit is 400 with code 21405."""
    env.allow_invalid_requests()
    body = _override_body(5)
    del body["rateLimits"]["other"]
    missing = authed.client.post(
        "/testdata/rate-limits", headers=authed.auth, json=body
    )
    zero = authed.client.post(
        "/testdata/rate-limits", headers=authed.auth, json=_override_body(0)
    )
    assert missing.status_code == zero.status_code == 400
    assert exception_code(missing) == (21405)
    assert "other" in json.dumps(missing.json(), ensure_ascii=False)
    assert "perSecond" in json.dumps(zero.json(), ensure_ascii=False)


def test_escalation_option_reaches_the_limiter(make_env) -> None:
    """Simulator(rate_limit_escalation=2) doubles the block on each push."""
    env = make_env(
        clock=ManualClock(), enforce_rate_limits=True, rate_limit_escalation=2.0
    )
    with ExitStack() as stack:
        kit = kit_for(env, stack)
        kit.authenticate(env.nip, env.ksef_token)
        params = {"sessionType": "Online"}
        waits = [
            kit.client.get("/sessions", headers=kit.auth, params=params).headers.get(
                "retry-after"
            )
            for _ in range(7)
        ]
    assert waits[5:] == ["1", "2"]
