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
LIMITS: dict[str, tuple[int | None, int | None, int | None]] = {
    "public": (60, None, None),
    "other": (10, 30, 120),
    "onlineSession": (10, 30, 120),
    "invoiceSend": (10, 30, 180),
    "batchSession": (10, 20, 60),
    "sessionList": (5, 10, 60),
    "sessionInvoiceList": (10, 20, 200),
    "invoiceStatus": (30, 120, 1200),
    "sessionMisc": (10, 120, 1200),
    "invoiceDownload": (8, 16, 64),
    "invoiceMetadata": (8, 16, 20),
}
_WINDOWS = (1.0, 60.0, 3600.0)


class RateLimiter:
    """Sliding-window counters keyed by (context or IP, endpoint group)."""

    def __init__(self, *, enabled: bool = False, scale: float = 1.0) -> None:
        self.enabled = enabled
        self.scale = scale
        self._lock = threading.Lock()
        self._hits: dict[tuple[str, str], deque[float]] = {}

    def check(self, key: str, group: str, now: datetime) -> int | None:
        """Record a request; return seconds to wait if it is over a limit."""
        limits = LIMITS.get(group)
        if not self.enabled or limits is None:
            return None

        moment = now.timestamp()
        with self._lock:
            hits = self._hits.setdefault((key, group), deque())
            while hits and hits[0] <= moment - _WINDOWS[-1]:
                hits.popleft()

            for limit, window in zip(limits, _WINDOWS, strict=True):
                if limit is None:
                    continue
                allowed = max(1, int(limit * self.scale))
                recent = [t for t in hits if t > moment - window]
                if len(recent) >= allowed:
                    oldest = recent[-allowed]
                    return max(1, math.ceil(oldest + window - moment))

            hits.append(moment)
            return None

    def reset(self) -> None:
        """Forget every counted request."""
        with self._lock:
            self._hits.clear()
