"""Optional enforcement of the spec's x-rate-limits."""

from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

from simkit import kit_for

from ksef_facade.testing.clock import ManualClock
from ksef_facade.testing.operations import OPERATIONS
from ksef_facade.testing.ratelimit import LIMITS, RateLimiter

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
