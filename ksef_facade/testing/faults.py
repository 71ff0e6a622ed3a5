"""Fault injection: make chosen requests slow, fail, get throttled or lose the link.

Faults are matched by operation name (see :mod:`.operations`, e.g.
``"send_online_invoice"`` or ``"upload_part"``) or apply to every request when
``route`` is ``None``. Each fault skips the first ``after`` matching requests, then
fires on the next ``count`` (``None``: on every one). Kinds:

``latency``
    wait ``seconds`` before handling the request (combines with other faults);
``server_error``
    answer ``status`` (5xx, or 408) without processing;
``rate_limit``
    answer 429 with ``Retry-After: retry_after`` without processing;
``drop_before``
    close the connection without processing and without a response;
``drop_after``
    process the request fully, then close the connection without a response;
``listing_lag``
    not a request fault: each invoice recorded while it is active (sent online or
    found in a batch) is left out of its session's invoice listings
    (``GET /sessions/{ref}/invoices`` and ``.../invoices/failed``) for the next
    ``calls`` listings of that session, as a lagging read model would; its own
    status (``GET /sessions/{ref}/invoices/{invoiceRef}``) stays reachable.
    ``count`` limits how many invoices lag.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .operations import operation_names

__all__ = ["KINDS", "Fault", "Faults"]

KINDS = (
    "latency",
    "server_error",
    "rate_limit",
    "drop_before",
    "drop_after",
    "listing_lag",
)


@dataclass
class Fault:
    """One fault rule and how often it has fired."""

    kind: str
    route: str | None = None
    count: int | None = 1
    after: int = 0
    status: int = 503
    seconds: float = 0.0
    retry_after: int = 1
    calls: int = 0
    seen: int = 0
    fired: int = 0

    def _claims(self, operation: str) -> bool:
        if self.route is not None and self.route != operation:
            return False
        self.seen += 1
        if self.seen <= self.after:
            return False
        if self.count is not None and self.fired >= self.count:
            return False
        self.fired += 1
        return True

    @property
    def exhausted(self) -> bool:
        """Whether the fault will not fire again."""
        return self.count is not None and self.fired >= self.count


class Faults:
    """The fault rules of one simulator; tests add them, the app consults them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rules: list[Fault] = []
        self.history: list[tuple[str, str]] = []

    def add(
        self,
        kind: str,
        *,
        route: str | None = None,
        count: int | None = 1,
        after: int = 0,
        status: int = 503,
        seconds: float = 0.0,
        retry_after: int = 1,
        calls: int = 0,
    ) -> Fault:
        """Add a fault rule and return it (its ``fired`` counts activations)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        if route is not None and route not in operation_names():
            raise ValueError(f"unknown route {route!r}; use an operation name")
        if kind == "server_error" and not (status == 408 or 500 <= status <= 599):
            raise ValueError("a server_error status must be 5xx or 408")
        if count is not None and count < 1:
            raise ValueError("count must be positive or None")
        if kind == "listing_lag" and (calls < 1 or route is not None):
            raise ValueError("a listing_lag needs calls >= 1 and no route")

        fault = Fault(kind, route, count, after, status, seconds, retry_after, calls)
        with self._lock:
            self.rules.append(fault)
        return fault

    def latency(
        self, seconds: float, *, route: str | None = None, count: int | None = None
    ) -> Fault:
        """Delay matching requests by ``seconds``."""
        return self.add("latency", route=route, count=count, seconds=seconds)

    def server_errors(
        self,
        count: int | None = 1,
        *,
        status: int = 503,
        route: str | None = None,
        after: int = 0,
    ) -> Fault:
        """Answer the next ``count`` matching requests with a 5xx ``status``."""
        return self.add(
            "server_error", route=route, count=count, after=after, status=status
        )

    def rate_limited(
        self,
        count: int | None = 1,
        *,
        retry_after: int = 1,
        route: str | None = None,
        after: int = 0,
    ) -> Fault:
        """Answer the next ``count`` matching requests with 429 and ``Retry-After``."""
        return self.add(
            "rate_limit", route=route, count=count, after=after, retry_after=retry_after
        )

    def drop_before(
        self, count: int | None = 1, *, route: str | None = None, after: int = 0
    ) -> Fault:
        """Drop the connection of the next ``count`` requests before processing."""
        return self.add("drop_before", route=route, count=count, after=after)

    def drop_after(
        self, count: int | None = 1, *, route: str | None = None, after: int = 0
    ) -> Fault:
        """Process the next ``count`` requests, then drop the connection unanswered."""
        return self.add("drop_after", route=route, count=count, after=after)

    def fail_part_uploads(
        self, count: int | None = 1, *, status: int = 503, after: int = 0
    ) -> Fault:
        """Fail the next ``count`` batch part uploads with ``status``."""
        return self.server_errors(
            count, status=status, route="upload_part", after=after
        )

    def listing_lag(
        self, calls: int = 1, *, count: int | None = None, after: int = 0
    ) -> Fault:
        """Hide each invoice recorded from now on from ``calls`` session listings."""
        return self.add("listing_lag", count=count, after=after, calls=calls)

    def claim_listing_lag(self) -> int:
        """Return how many listings a newly recorded invoice stays hidden from."""
        hidden = 0
        with self._lock:
            for fault in self.rules:
                if fault.kind == "listing_lag" and fault._claims("listing_lag"):
                    hidden = max(hidden, fault.calls)
        return hidden

    def note(self, operation: str, kind: str) -> None:
        """Record in ``history`` that a fault of ``kind`` affected ``operation``."""
        with self._lock:
            self.history.append((operation, kind))

    def clear(self) -> None:
        """Remove every fault rule (the history stays)."""
        with self._lock:
            self.rules.clear()

    def select(self, operation: str) -> tuple[float, Fault | None]:
        """Return the latency to add and the terminal fault (if any) for a request."""
        delay = 0.0
        terminal: Fault | None = None
        with self._lock:
            for fault in self.rules:
                if fault.kind == "listing_lag":
                    continue
                if fault.kind == "latency":
                    if fault._claims(operation):
                        delay += fault.seconds
                        self.history.append((operation, fault.kind))
                elif terminal is None and fault._claims(operation):
                    terminal = fault
                    self.history.append((operation, fault.kind))
        return delay, terminal
