"""Optional enforcement of KSeF's request limits with sliding windows.

limity/limity-api.md: limits are counted per context and IP address, per endpoint
group, in sliding windows of one second, one minute and one hour, all at once; going
over answers 429 with ``Retry-After``. Values are the spec's ``x-rate-limits``.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from datetime import datetime

__all__ = ["LIMITS", "RateLimiter"]

# group: (per second, per minute, per hour); None where the spec sets no limit.
# Groups are the last column of the spec's 429 tables; endpoints in "other" and
# "public" each count on their own (limity-api.md, "Pozostałe").
LIMITS: dict[str, tuple[int | None, int | None, int | None]] = {
    "public": (60, None, None),
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
}
_WINDOWS = (1.0, 60.0, 3600.0)
_OWN_COUNTER = frozenset({"other", "public"})


class RateLimiter:
    """Sliding-window counters keyed by (context or IP, endpoint group).

    ``scale`` multiplies every limit (below 1 to reach them quickly in tests).
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

    def check(
        self, key: str, group: str, now: datetime, operation: str = ""
    ) -> int | None:
        """Record a request; return seconds to wait if it is over a limit."""
        limits = LIMITS.get(group)
        if not self.enabled or limits is None:
            return None
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
                allowed = max(1, int(limit * self.scale))
                recent = [t for t in hits if t > moment - window]
                if len(recent) >= allowed:
                    wait = recent[-allowed] + window - moment
                    self._blocked[(key, counter)] = moment + wait
                    return max(1, math.ceil(wait))

            hits.append(moment)
            return None

    def reset(self) -> None:
        """Forget every counted request."""
        with self._lock:
            self._hits.clear()
            self._blocked.clear()
