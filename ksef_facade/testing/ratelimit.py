"""Optional enforcement of KSeF's request limits with sliding windows.

limity/limity-api.md: limits are counted per context and IP address, per endpoint
group, in sliding windows of one second, one minute and one hour, all at once; going
over answers 429 with ``Retry-After``. Values are the spec's ``x-rate-limits``.
A context's limits can be replaced through the test-data endpoints (limity-api.md,
"Środowisko TE"); ``GET /rate-limits`` reports the effective values.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from datetime import datetime

__all__ = ["LIMITS", "OVERRIDABLE", "Limits", "RateLimiter"]

Limits = tuple[int | None, int | None, int | None]

# group: (per second, per minute, per hour); None where the spec sets no limit.
# Groups are the last column of the spec's 429 tables, named as in the spec's
# EffectiveApiRateLimits; endpoints in "other" and "anonymous" each count on their
# own (limity-api.md, "Pozostałe"). "collectiveIdentifier" (not served) and
# "global" (75 per second and IP, spec's GET /rate-limits example) are reported by
# GET /rate-limits but not enforced.
# Where limity-api.md and the spec disagree (closing a session: the doc gives 10/30/120
# online and 10/20/60 batch), the spec's x-rate-limits win.
LIMITS: dict[str, Limits] = {
    "anonymous": (60, None, None),
    "other": (10, 30, 120),
    "onlineSession": (10, 30, 120),
    "onlineSessionClose": (20, 60, 240),
    "invoiceSend": (10, 30, 180),
    "batchSession": (10, 20, 60),
    "batchSessionClose": (20, 40, 120),
    "sessionList": (5, 10, 60),
    "sessionInvoiceList": (10, 20, 200),
    "invoiceStatus": (30, 120, 1200),
    "sessionMisc": (10, 120, 1200),
    "invoiceDownload": (8, 16, 64),
    "invoiceMetadata": (8, 16, 20),
    "invoiceExport": (8, 16, 20),
    "invoiceExportStatus": (10, 60, 600),
    "collectiveIdentifier": (20, 120, 240),
    "global": (75, None, None),
}
# spec: ApiRateLimitsOverride, the groups POST /testdata/rate-limits sets.
OVERRIDABLE = (
    "onlineSession",
    "batchSession",
    "invoiceSend",
    "invoiceStatus",
    "sessionList",
    "sessionInvoiceList",
    "sessionMisc",
    "invoiceMetadata",
    "invoiceExport",
    "invoiceExportStatus",
    "invoiceDownload",
    "collectiveIdentifier",
    "other",
)
_WINDOWS = (1.0, 60.0, 3600.0)
_OWN_COUNTER = frozenset({"other", "anonymous"})


class RateLimiter:
    """Sliding-window counters keyed by (context or IP, endpoint group).

    ``scale`` multiplies every default limit (below 1 to reach them quickly in
    tests); limits set for a context with :meth:`set_context_limits` apply as given.
    Going over a limit blocks the counter until the window frees up; with
    ``escalation`` above 1, each request sent while blocked multiplies the remaining
    block (limity-api.md: repeated violations lengthen the block), up to an hour.
    """

    def __init__(
        self, *, enabled: bool = False, scale: float = 1.0, escalation: float = 1.0
    ) -> None:
        self.enabled = enabled
        self.scale = scale
        self.escalation = escalation
        self._lock = threading.Lock()
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._blocked: dict[tuple[str, str], float] = {}
        self._overrides: dict[str, dict[str, Limits]] = {}

    def _scaled(self, limit: int | None) -> int | None:
        return None if limit is None else max(1, int(limit * self.scale))

    def effective(self, context: str | None = None) -> dict[str, Limits]:
        """Return every group's limits as they apply to ``context`` now."""
        with self._lock:
            overrides = dict(self._overrides.get(context or "", {}))
        result: dict[str, Limits] = {}
        for group, limits in LIMITS.items():
            second, minute, hour = (self._scaled(limit) for limit in limits)
            result[group] = overrides.get(group, (second, minute, hour))
        return result

    def set_context_limits(self, context: str, limits: dict[str, Limits]) -> None:
        """Replace the limits of the named groups for ``context`` (a NIP)."""
        unknown = set(limits) - set(LIMITS)
        if unknown:
            raise ValueError(f"unknown rate-limit groups: {', '.join(sorted(unknown))}")
        with self._lock:
            self._overrides.setdefault(context, {}).update(limits)

    def production_limits(self, context: str) -> None:
        """Give ``context`` the documented (production) limits, unscaled."""
        self.set_context_limits(context, dict(LIMITS))

    def reset_context_limits(self, context: str) -> None:
        """Return ``context`` to the default limits."""
        with self._lock:
            self._overrides.pop(context, None)

    def check(
        self,
        key: str,
        group: str,
        now: datetime,
        operation: str = "",
        *,
        context: str | None = None,
    ) -> int | None:
        """Record a request; return seconds to wait if it is over a limit."""
        if not self.enabled or group not in LIMITS:
            return None
        limits = self.effective(context)[group]
        counter = operation if group in _OWN_COUNTER and operation else group

        moment = now.timestamp()
        with self._lock:
            until = self._blocked.get((key, counter), 0.0)
            if moment < until:
                remaining = min((until - moment) * self.escalation, _WINDOWS[-1])
                self._blocked[(key, counter)] = moment + remaining
                return max(1, math.ceil(remaining))

            hits = self._hits.setdefault((key, counter), deque())
            while hits and hits[0] <= moment - _WINDOWS[-1]:
                hits.popleft()

            for limit, window in zip(limits, _WINDOWS, strict=True):
                if limit is None:
                    continue
                recent = [t for t in hits if t > moment - window]
                if len(recent) >= limit:
                    wait = recent[-limit] + window - moment
                    self._blocked[(key, counter)] = moment + wait
                    return max(1, math.ceil(wait))

            hits.append(moment)
            return None

    def reset(self) -> None:
        """Forget every counted request and every context's own limits."""
        with self._lock:
            self._hits.clear()
            self._blocked.clear()
            self._overrides.clear()
