"""API rate limits: read the context's effective limits, and change them (test data).

limity/limity-api.md, "Środowisko TE": ``POST /testdata/rate-limits`` sets a context's
own limits, ``POST /testdata/rate-limits/production`` gives it the production values
and ``DELETE /testdata/rate-limits`` restores the defaults; ``GET /rate-limits``
answers ``EffectiveApiRateLimits``, with -1 for a window without a limit (as in the
spec's example for ``anonymous`` and ``global``).
"""

from __future__ import annotations

from typing import Any

from .calls import Call, Reply
from .errors import ApiError
from .ratelimit import OVERRIDABLE, Limits

__all__ = [
    "get_rate_limits",
    "reset_test_rate_limits",
    "set_test_production_rate_limits",
    "set_test_rate_limits",
]

_WINDOWS = ("perSecond", "perMinute", "perHour")
# ApiRateLimitValuesOverride is an int32.
_MAX_LIMIT = 2**31 - 1


def _values_json(limits: Limits) -> dict[str, int]:
    return {
        name: -1 if limit is None else limit
        for name, limit in zip(_WINDOWS, limits, strict=True)
    }


def _read_values(group: str, value: Any) -> Limits:
    if not isinstance(value, dict):
        raise ApiError(21405, f"Pole 'rateLimits.{group}' musi być obiektem.")

    limits: list[int | None] = []
    for name in _WINDOWS:
        limit = value.get(name)
        if (
            not isinstance(limit, int)
            or isinstance(limit, bool)
            or not (limit == -1 or 1 <= limit <= _MAX_LIMIT)
        ):
            raise ApiError(
                21405,
                f"Pole 'rateLimits.{group}.{name}' musi być liczbą dodatnią "
                "lub -1 (bez limitu).",
            )
        limits.append(None if limit == -1 else limit)
    return limits[0], limits[1], limits[2]


def get_rate_limits(call: Call) -> Reply:
    """GET /rate-limits: the limits in force for the caller's context."""
    access = call.access()
    limits = call.sim.rate_limiter.effective(access.nip)
    return Reply(200, {group: _values_json(values) for group, values in limits.items()})


def set_test_rate_limits(call: Call) -> Reply:
    """POST /testdata/rate-limits: set the caller's context's own limits."""
    access = call.access()
    body = call.json()
    groups = body.get("rateLimits")
    if not isinstance(groups, dict):
        raise ApiError(21405, "Pole 'rateLimits' jest wymagane i musi być obiektem.")

    missing = [group for group in OVERRIDABLE if group not in groups]
    if missing:
        raise ApiError(
            21405, f"Brak wymaganych pól w 'rateLimits': {', '.join(missing)}."
        )
    limits = {group: _read_values(group, groups[group]) for group in OVERRIDABLE}

    call.sim.rate_limiter.set_context_limits(access.nip, limits)
    return Reply(200)


def reset_test_rate_limits(call: Call) -> Reply:
    """DELETE /testdata/rate-limits: back to the simulator's default limits."""
    access = call.access()
    call.sim.rate_limiter.reset_context_limits(access.nip)
    return Reply(200)


def set_test_production_rate_limits(call: Call) -> Reply:
    """POST /testdata/rate-limits/production: the documented production limits."""
    access = call.access()
    call.sim.rate_limiter.production_limits(access.nip)
    return Reply(200)
