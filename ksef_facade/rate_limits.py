"""KSeF API rate limits as documented, and the endpoint group of every operation.

Values come from limity/limity-api.md and from the pinned spec (2.9.0): each operation's
`x-rate-limits` extension and the group named in its 429 description. Where the two
disagree (closing sessions: the docs say 10/30/120 and 10/20/60, the spec says
20/60/240 and 20/40/120 in the `onlineSessionClose` and `batchSessionClose` groups),
the spec is the newer source and wins. `tests/test_throttle.py` checks this table
against the spec.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import attrs

__all__ = [
    "ANONYMOUS",
    "GLOBAL",
    "GROUP_LIMITS",
    "OTHER",
    "ROUTES",
    "RateLimit",
    "Route",
    "api_path",
    "find_route",
    "limits_from_response",
]


def _positive_or_none(
    instance: object, attribute: attrs.Attribute[int | None], value: int | None
) -> None:
    if value is not None and value <= 0:
        raise ValueError(
            f"{attribute.name} must be a positive number of requests or None"
        )


@attrs.frozen
class RateLimit:
    """How many requests fit in the last second, minute and hour (None: no limit)."""

    per_second: int | None = attrs.field(default=None, validator=_positive_or_none)
    per_minute: int | None = attrs.field(default=None, validator=_positive_or_none)
    per_hour: int | None = attrs.field(default=None, validator=_positive_or_none)

    def windows(self) -> tuple[tuple[float, int], ...]:
        """Return (window length in seconds, request cap) for every set limit."""
        pairs = (
            (1.0, self.per_second),
            (60.0, self.per_minute),
            (3600.0, self.per_hour),
        )
        return tuple((window, cap) for window, cap in pairs if cap is not None)


@attrs.frozen
class Route:
    """One API operation: method, path template (relative to /v2) and limit group."""

    method: str
    template: str
    group: str
    segments: tuple[str, ...] = attrs.field(init=False, eq=False, repr=False)

    @segments.default
    def _split_template(self) -> tuple[str, ...]:
        return tuple(self.template.strip("/").split("/"))


# limity-api.md, "Pozostałe": public resources such as /auth/challenge are limited to
# 60 req/s per IP address, whatever the context. The spec names no group for them.
ANONYMOUS: Final = "anonymous"

# limity-api.md, "Pozostałe": endpoints without their own limits share these values,
# but "each such endpoint has its own counter".
OTHER: Final = "other"

# Spec, GET /rate-limits example: a 75 req/s ceiling named `global`. The docs do not
# describe it; the throttle applies it to all of a context's protected requests.
GLOBAL: Final = "global"

GROUP_LIMITS: Final[Mapping[str, RateLimit]] = MappingProxyType(
    {
        "onlineSession": RateLimit(10, 30, 120),
        "onlineSessionClose": RateLimit(20, 60, 240),
        "batchSession": RateLimit(10, 20, 60),
        "batchSessionClose": RateLimit(20, 40, 120),
        "invoiceSend": RateLimit(10, 30, 180),
        "invoiceStatus": RateLimit(30, 120, 1200),
        "sessionList": RateLimit(5, 10, 60),
        "sessionInvoiceList": RateLimit(10, 20, 200),
        "sessionMisc": RateLimit(10, 120, 1200),
        "invoiceMetadata": RateLimit(8, 16, 20),
        "invoiceExport": RateLimit(8, 16, 20),
        "invoiceExportStatus": RateLimit(10, 60, 600),
        "invoiceDownload": RateLimit(8, 16, 64),
        "collectiveIdentifier": RateLimit(20, 120, 240),
        OTHER: RateLimit(10, 30, 120),
        ANONYMOUS: RateLimit(60),
        GLOBAL: RateLimit(75),
    }
)

_OPERATIONS_BY_GROUP: Final[Mapping[str, tuple[str, ...]]] = {
    "onlineSession": ("POST /sessions/online",),
    "onlineSessionClose": ("POST /sessions/online/{referenceNumber}/close",),
    "batchSession": ("POST /sessions/batch",),
    "batchSessionClose": ("POST /sessions/batch/{referenceNumber}/close",),
    "invoiceSend": ("POST /sessions/online/{referenceNumber}/invoices",),
    "invoiceStatus": (
        "GET /sessions/{referenceNumber}/invoices/{invoiceReferenceNumber}",
    ),
    "sessionList": ("GET /sessions",),
    "sessionInvoiceList": (
        "GET /sessions/{referenceNumber}/invoices",
        "GET /sessions/{referenceNumber}/invoices/failed",
    ),
    "sessionMisc": (
        "GET /sessions/{referenceNumber}",
        "GET /sessions/{referenceNumber}/invoices/ksef/{ksefNumber}/upo",
        "GET /sessions/{referenceNumber}/invoices/{invoiceReferenceNumber}/upo",
        "GET /sessions/{referenceNumber}/upo/{upoReferenceNumber}",
    ),
    "invoiceMetadata": ("POST /invoices/query/metadata",),
    "invoiceExport": ("POST /invoices/exports",),
    "invoiceExportStatus": ("GET /invoices/exports/{referenceNumber}",),
    "invoiceDownload": ("GET /invoices/ksef/{ksefNumber}",),
    "collectiveIdentifier": (
        "POST /collective-identifiers",
        "POST /collective-identifiers/query",
        "POST /collective-identifiers/invoices",
        "GET /collective-identifiers/ksef/{ksefNumber}",
    ),
    ANONYMOUS: (
        "POST /auth/challenge",
        "POST /auth/xades-signature",
        "POST /auth/ksef-token",
        "GET /auth/{referenceNumber}",
        "POST /auth/token/redeem",
        "POST /auth/token/refresh",
        "GET /security/public-key-certificates",
        "GET /peppol/query",
        "POST /testdata/subject",
        "POST /testdata/subject/remove",
        "POST /testdata/person",
        "POST /testdata/person/remove",
        "POST /testdata/permissions",
        "POST /testdata/permissions/revoke",
        "POST /testdata/attachment",
        "POST /testdata/attachment/revoke",
    ),
    OTHER: (
        "GET /auth/sessions",
        "DELETE /auth/sessions/current",
        "DELETE /auth/sessions/{referenceNumber}",
        "GET /certificates/limits",
        "GET /certificates/enrollments/data",
        "POST /certificates/enrollments",
        "GET /certificates/enrollments/{referenceNumber}",
        "POST /certificates/retrieve",
        "POST /certificates/{certificateSerialNumber}/revoke",
        "POST /certificates/query",
        "PUT /testdata/certificates/{serialNumber}",
        "POST /testdata/context/block",
        "POST /testdata/context/unblock",
        "GET /limits/context",
        "GET /limits/subject",
        "GET /rate-limits",
        "POST /testdata/limits/context/session",
        "DELETE /testdata/limits/context/session",
        "POST /testdata/limits/subject/certificate",
        "DELETE /testdata/limits/subject/certificate",
        "POST /testdata/rate-limits",
        "DELETE /testdata/rate-limits",
        "POST /testdata/rate-limits/production",
        "POST /permissions/persons/grants",
        "POST /permissions/entities/grants",
        "POST /permissions/authorizations/grants",
        "POST /permissions/indirect/grants",
        "POST /permissions/subunits/grants",
        "POST /permissions/eu-entities/administration/grants",
        "POST /permissions/eu-entities/grants",
        "DELETE /permissions/common/grants/{permissionId}",
        "DELETE /permissions/authorizations/grants/{permissionId}",
        "GET /permissions/operations/{referenceNumber}",
        "GET /permissions/attachments/status",
        "POST /permissions/query/personal/grants",
        "POST /permissions/query/persons/grants",
        "POST /permissions/query/subunits/grants",
        "POST /permissions/query/entities/grants",
        "GET /permissions/query/entities/roles",
        "POST /permissions/query/subordinate-entities/roles",
        "POST /permissions/query/authorizations/grants",
        "POST /permissions/query/eu-entities/grants",
        "POST /tokens",
        "GET /tokens",
        "GET /tokens/{referenceNumber}",
        "DELETE /tokens/{referenceNumber}",
    ),
}


def _routes() -> tuple[Route, ...]:
    routes = []
    for group, operations in _OPERATIONS_BY_GROUP.items():
        for operation in operations:
            method, template = operation.split(" ", 1)
            routes.append(Route(method, template, group))
    return tuple(routes)


ROUTES: Final[tuple[Route, ...]] = _routes()


def _specificity(route: Route) -> int:
    return sum(not segment.startswith("{") for segment in route.segments)


def _pattern(route: Route) -> str:
    parts = ("[^/]+" if s.startswith("{") else re.escape(s) for s in route.segments)
    return "/" + "/".join(parts)


def _compile(
    routes: tuple[Route, ...],
) -> dict[str, tuple[re.Pattern[str], list[Route]]]:
    # One alternation per method, one group per route. Literal segments come first,
    # so /sessions/{ref}/invoices/failed is not read as an invoice named "failed".
    by_method: dict[str, list[Route]] = {}
    for route in sorted(routes, key=_specificity, reverse=True):
        by_method.setdefault(route.method, []).append(route)

    return {
        method: (re.compile("|".join(f"({_pattern(r)})" for r in group)), group)
        for method, group in by_method.items()
    }


_MATCHERS: Final = _compile(ROUTES)


def find_route(method: str, path: str) -> Route | None:
    """Return the operation a method and API path (or path template) belong to."""
    matcher = _MATCHERS.get(method.upper())
    if matcher is None:
        return None

    pattern, routes = matcher
    match = pattern.fullmatch("/" + path.strip("/"))
    if match is None or match.lastindex is None:
        return None
    return routes[match.lastindex - 1]


def api_path(url_path: str, base_path: str = "/v2") -> str | None:
    """Return a URL path relative to the API base path, or None if outside it."""
    base = "/" + base_path.strip("/") if base_path.strip("/") else ""
    if url_path == base or not url_path.startswith(base + "/"):
        return None
    return url_path[len(base) :]


def _limit_value(raw: object, field: str) -> int | None:
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise ValueError(f"rate limit field {field} is not an integer")
    # GET /rate-limits example: -1 stands for "no limit in this window".
    return raw if raw > 0 else None


def limits_from_response(payload: Mapping[str, object]) -> dict[str, RateLimit]:
    """Read the group limits from a GET /rate-limits response body."""
    limits = {}
    for group, values in payload.items():
        if not isinstance(values, Mapping):
            raise ValueError(f"rate limits for group {group!r} are not an object")

        limits[group] = RateLimit(
            per_second=_limit_value(values.get("perSecond"), "perSecond"),
            per_minute=_limit_value(values.get("perMinute"), "perMinute"),
            per_hour=_limit_value(values.get("perHour"), "perHour"),
        )
    return limits
