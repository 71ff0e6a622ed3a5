"""Tests for the rate-limit table (ksef_facade.rate_limits) and the throttle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ksef_facade import rate_limits
from ksef_facade.rate_limits import GROUP_LIMITS, RateLimit, Route, find_route
from ksef_facade.throttle import Throttle, bucket_names, next_allowed

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def _spec_operations(spec_path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    return [
        (method.upper(), path, operation)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if method in HTTP_METHODS
    ]


def _spec_group(operation: dict[str, Any]) -> str:
    # The 429 description ends with a table row whose last cell names the group.
    description = operation["responses"]["429"]["description"]
    row = [line for line in description.splitlines() if line.startswith("| **")][-1]
    group = row.rstrip().rsplit("|", 1)[-1].strip()
    return rate_limits.ANONYMOUS if group == "-" else group


def _limit_from_spec(values: dict[str, int]) -> RateLimit:
    return RateLimit(
        values.get("perSecond"), values.get("perMinute"), values.get("perHour")
    )


def test_routes_cover_every_spec_operation(pinned_spec_path: Path) -> None:
    """The route table lists exactly the spec's operations."""
    spec_ops = {
        (method, path) for method, path, _ in _spec_operations(pinned_spec_path)
    }

    table_ops = {(route.method, route.template) for route in rate_limits.ROUTES}

    assert table_ops == spec_ops


def test_route_groups_match_spec(pinned_spec_path: Path) -> None:
    """Each operation's group is the one its 429 description names."""
    for method, path, operation in _spec_operations(pinned_spec_path):
        route = find_route(method, path)

        assert route is not None, (method, path)
        assert (route.template, route.group) == (path, _spec_group(operation))


def test_group_limits_match_spec_extension(pinned_spec_path: Path) -> None:
    """Each operation's x-rate-limits equals its group's limits in the table."""
    for method, path, operation in _spec_operations(pinned_spec_path):
        route = find_route(method, path)
        assert route is not None

        expected = _limit_from_spec(operation["x-rate-limits"])
        assert GROUP_LIMITS[route.group] == expected, (method, path)


def test_group_limits_match_rate_limits_example(pinned_spec_path: Path) -> None:
    """The table equals the spec's example answer of GET /rate-limits."""
    spec = json.loads(pinned_spec_path.read_text(encoding="utf-8"))
    response = spec["paths"]["/rate-limits"]["get"]["responses"]["200"]
    example = response["content"]["application/json"]["example"]

    assert rate_limits.limits_from_response(example) == dict(GROUP_LIMITS)


def test_limits_from_response_rejects_non_integers() -> None:
    """A malformed GET /rate-limits body names the bad field."""
    with pytest.raises(ValueError, match="perMinute"):
        rate_limits.limits_from_response(
            {"other": {"perSecond": 1, "perMinute": "30", "perHour": 2}}
        )


def test_rate_limit_rejects_zero() -> None:
    """A zero cap is refused: use None for no limit."""
    with pytest.raises(ValueError, match="per_second"):
        RateLimit(per_second=0)


@pytest.mark.parametrize(
    ("method", "path", "template"),
    [
        (
            "GET",
            "/sessions/R1/invoices/failed",
            "/sessions/{referenceNumber}/invoices/failed",
        ),
        (
            "GET",
            "/sessions/R1/invoices/I1",
            "/sessions/{referenceNumber}/invoices/{invoiceReferenceNumber}",
        ),
        (
            "GET",
            "/sessions/R1/invoices/ksef/K1/upo",
            "/sessions/{referenceNumber}/invoices/ksef/{ksefNumber}/upo",
        ),
        ("GET", "/auth/sessions", "/auth/sessions"),
        ("GET", "/auth/20250101-AU-1", "/auth/{referenceNumber}"),
        ("POST", "/sessions/online", "/sessions/online"),
        (
            "post",
            "/sessions/online/R1/invoices/",
            "/sessions/online/{referenceNumber}/invoices",
        ),
        ("GET", "/sessions/online", "/sessions/{referenceNumber}"),
    ],
)
def test_find_route(method: str, path: str, template: str) -> None:
    """Concrete paths resolve to their template, literal segments first."""
    route = find_route(method, path)

    assert route is not None
    assert route.template == template


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/no/such/thing"),
        ("PUT", "/sessions/online"),
        ("GET", "/sessions//invoices"),
        ("GET", "/"),
    ],
)
def test_find_route_unknown(method: str, path: str) -> None:
    """Paths that are no spec operation resolve to None."""
    assert find_route(method, path) is None


@pytest.mark.parametrize(
    ("url_path", "base", "expected"),
    [
        ("/v2/sessions", "/v2", "/sessions"),
        ("/v2/sessions", "v2/", "/sessions"),
        ("/api/v2/sessions", "/api/v2", "/sessions"),
        ("/v2", "/v2", None),
        ("/v2x/sessions", "/v2", None),
        ("/upload/part-1", "/v2", None),
        ("/sessions", "", "/sessions"),
        ("/sessions", "/", "/sessions"),
    ],
)
def test_api_path(url_path: str, base: str, expected: str | None) -> None:
    """URL paths are made relative to the API base, or None outside it."""
    assert rate_limits.api_path(url_path, base) == expected


@pytest.mark.parametrize(
    ("now", "history", "limits", "expected"),
    [
        pytest.param(10.0, [], RateLimit(1, 1, 1), 0.0, id="empty"),
        pytest.param(10.6, [10.0], RateLimit(per_second=2), 0.0, id="under-cap"),
        pytest.param(
            10.6, [10.0, 10.5], RateLimit(per_second=2), 0.4, id="second-full"
        ),
        pytest.param(
            11.0, [10.0, 10.5], RateLimit(per_second=2), 0.0, id="oldest-left"
        ),
        pytest.param(2.5, [0.0, 1.0], RateLimit(per_second=2), 0.0, id="all-old"),
        pytest.param(
            55.0, [0.0, 30.0, 50.0], RateLimit(per_minute=3), 5.0, id="minute"
        ),
        pytest.param(
            55.0,
            [0.0, 30.0, 50.0],
            RateLimit(per_second=5, per_minute=3),
            5.0,
            id="max",
        ),
        pytest.param(
            10.0, [10.0, 10.25], RateLimit(per_second=2), 1.0, id="future-reservation"
        ),
        pytest.param(
            100.0, [0.0, 10.0, 20.0], RateLimit(per_hour=3), 3500.0, id="hour"
        ),
    ],
)
def test_next_allowed(
    now: float, history: list[float], limits: RateLimit, expected: float
) -> None:
    """The wait is until the request that breaks a window leaves it."""
    assert next_allowed(now, history, limits) == pytest.approx(expected)


def test_next_allowed_waits_out_a_block() -> None:
    """A block after a 429 holds requests until it ends."""
    assert next_allowed(10.0, [], RateLimit(10), blocked_until=15.0) == 5.0


def test_next_allowed_adds_margin_only_to_waits() -> None:
    """The safety margin lengthens waits but never creates one."""
    limits = RateLimit(per_second=1)

    assert next_allowed(10.0, [], limits, margin=0.1) == 0.0
    assert next_allowed(10.0, [9.5], limits, margin=0.1) == pytest.approx(0.6)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _route(method: str, path: str) -> Route:
    route = find_route(method, path)
    assert route is not None
    return route


def _counts_fit(times: list[float], limits: RateLimit) -> bool:
    for window, cap in limits.windows():
        for t in times:
            if sum(1 for other in times if t - window < other <= t) > cap:
                return False
    return True


def test_steady_use_stays_within_every_window() -> None:
    """Sending as fast as the throttle allows never breaks a documented limit."""
    clock = FakeClock()
    throttle = Throttle(clock=clock, margin=0.0)
    send = _route("POST", "/sessions/online/R/invoices")
    sent = []

    for _ in range(200):
        clock.now += throttle.reserve(send)
        sent.append(clock.now)

    assert _counts_fit(sent, GROUP_LIMITS["invoiceSend"])
    assert sent[-1] - sent[0] > 3600  # 180 per hour: the 181st waits for the hour


def test_concurrent_reservations_queue_up() -> None:
    """Reservations made at the same instant get successive slots."""
    clock = FakeClock()
    throttle = Throttle({"sessionList": RateLimit(per_second=1)}, clock=clock, margin=0)
    route = _route("GET", "/sessions")

    waits = [throttle.reserve(route) for _ in range(3)]

    assert waits == [0.0, 1.0, 2.0]


def test_contexts_are_counted_apart() -> None:
    """Two NIPs each get their own budget; one NIP is held back."""
    clock = FakeClock()
    nip = ["1111111111"]
    limits = {"sessionList": RateLimit(per_second=1)}
    throttle = Throttle(limits, clock=clock, margin=0, context_key=lambda: nip[0])
    route = _route("GET", "/sessions")

    first = throttle.reserve(route)
    nip[0] = "2222222222"
    other_nip = throttle.reserve(route)
    same_nip = throttle.reserve(route)

    assert (first, other_nip, same_nip) == (0.0, 0.0, 1.0)


def test_anonymous_endpoints_ignore_the_context() -> None:
    """Public endpoints are counted per client, whatever the NIP."""
    clock = FakeClock()
    nip = ["1111111111"]
    limits = {rate_limits.ANONYMOUS: RateLimit(per_second=1)}
    throttle = Throttle(limits, clock=clock, margin=0, context_key=lambda: nip[0])
    route = _route("POST", "/auth/challenge")

    throttle.reserve(route)
    nip[0] = "2222222222"

    assert throttle.reserve(route) == 1.0


def test_other_endpoints_have_their_own_counters() -> None:
    """Endpoints in the default group do not share a counter (limity-api.md)."""
    clock = FakeClock()
    throttle = Throttle(
        {rate_limits.OTHER: RateLimit(per_second=1)}, clock=clock, margin=0
    )

    throttle.reserve(_route("GET", "/tokens"))
    other_endpoint = throttle.reserve(_route("GET", "/limits/context"))
    same_endpoint = throttle.reserve(_route("GET", "/tokens"))

    assert (other_endpoint, same_endpoint) == (0.0, 1.0)


def test_global_limit_spans_groups() -> None:
    """The global ceiling counts requests of every group in a context."""
    clock = FakeClock()
    throttle = Throttle(
        {rate_limits.GLOBAL: RateLimit(per_second=2)}, clock=clock, margin=0
    )

    throttle.reserve(_route("GET", "/sessions"))
    throttle.reserve(_route("GET", "/tokens"))

    assert throttle.reserve(_route("GET", "/invoices/ksef/K")) == 1.0


def test_bucket_names() -> None:
    """Group routes count in their group and the global bucket."""
    assert bucket_names(_route("GET", "/sessions")) == ("sessionList", "global")
    assert bucket_names(_route("POST", "/auth/challenge")) == ("anonymous",)
    assert bucket_names(_route("GET", "/tokens")) == ("other GET /tokens", "global")


def test_block_holds_back_the_group() -> None:
    """After block(), the group's requests wait until the block ends."""
    clock = FakeClock()
    throttle = Throttle(clock=clock, margin=0)
    send = _route("POST", "/sessions/online/R/invoices")

    throttle.block(send, 30.0)

    assert throttle.reserve(send) == 30.0
    assert throttle.reserve(_route("GET", "/sessions")) == 0.0


def test_update_limits_replaces_group_values() -> None:
    """Limits read from GET /rate-limits replace the documented ones."""
    clock = FakeClock()
    throttle = Throttle(clock=clock, margin=0)
    route = _route("GET", "/sessions")
    throttle.update_limits({"sessionList": RateLimit(per_second=1)})

    throttle.reserve(route)

    assert throttle.reserve(route) == 1.0


def test_reserve_over_max_wait_books_nothing() -> None:
    """A slot further away than max_wait is reported but not booked."""
    clock = FakeClock()
    throttle = Throttle({"sessionList": RateLimit(per_second=1)}, clock=clock, margin=0)
    route = _route("GET", "/sessions")
    throttle.reserve(route)

    refused = throttle.reserve(route, max_wait=0.5)

    assert refused == 1.0
    assert throttle.reserve(route) == 1.0
