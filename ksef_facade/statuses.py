"""What KSeF status codes mean, and when to stop polling.

The codes come from the ``StatusInfo`` tables of the pinned spec (2.9.0):

* authentication (``AuthenticationOperationStatusResponse.status``): 100 in
  progress, 200 success, 4xx/5xx failure;
* an invoice in a session (``SessionInvoiceStatusResponse.status``): 100 accepted
  for processing, 150 processing, 200 success, 4xx/5xx rejected;
* a session (``SessionStatusResponse.status``): 100 open, 150 processing (batch),
  170 closed (online), 200 processed, 4xx/5xx failed.

Everything here is a pure function of its arguments; ``now`` is passed in.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TypeVar

import attrs

from ksef_api.models import (
    InvoiceStatusInfo,
    SessionInvoiceStatusResponse,
    SessionStatusResponse,
    StatusInfo,
)
from ksef_api.types import Unset

__all__ = [
    "SESSION_OPEN",
    "SUCCESS",
    "InvoiceStatus",
    "Outcome",
    "SessionStatus",
    "Status",
    "auth_outcome",
    "invoice_outcome",
    "invoice_status_from_model",
    "next_poll_delay",
    "session_outcome",
    "session_status_from_model",
    "status_from_model",
]

SUCCESS = 200

# SessionStatusResponse.status: 100 means the session is open (batch: it takes parts).
SESSION_OPEN = 100

T = TypeVar("T")


class Outcome(enum.Enum):
    """Whether an operation is still running, succeeded or failed for good."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        """True once the status will not change any more."""
        return self is not Outcome.PENDING


def _outcome(code: int) -> Outcome:
    # Every table lists its in-progress codes below 200 and failures from 400 up.
    if code == SUCCESS:
        return Outcome.SUCCEEDED
    if code < SUCCESS:
        return Outcome.PENDING
    return Outcome.FAILED


def auth_outcome(code: int) -> Outcome:
    """Return what an authentication status code means."""
    return _outcome(code)


def invoice_outcome(code: int) -> Outcome:
    """Return what a session invoice status code means."""
    return _outcome(code)


def session_outcome(code: int, *, has_upo: bool) -> Outcome:
    """Return what a session status code means.

    A processed session (200) counts as final only once its UPO is listed, since
    the UPO is what callers wait for (sesja-sprawdzenie-stanu-i-pobranie-upo.md,
    section 7).
    """
    outcome = _outcome(code)
    if outcome is Outcome.SUCCEEDED and not has_upo:
        return Outcome.PENDING
    return outcome


def next_poll_delay(
    *, started: datetime, now: datetime, interval: timedelta, timeout: timedelta
) -> float | None:
    """Return seconds to wait before the next poll, or None once ``timeout`` is up.

    The last wait is cut short so that the final poll happens at the deadline.
    """
    remaining = (started + timeout - now).total_seconds()
    if remaining <= 0:
        return None
    return max(0.0, min(interval.total_seconds(), remaining))


@attrs.frozen
class Status:
    """A KSeF ``StatusInfo``: code, description and details."""

    code: int
    description: str
    details: tuple[str, ...] = ()


@attrs.frozen
class InvoiceStatus:
    """Where one invoice of a session stands, and its KSeF number once assigned."""

    reference_number: str
    ordinal_number: int
    status: Status
    invoice_hash: str
    ksef_number: str | None = None
    invoice_number: str | None = None
    invoicing_mode: str | None = None
    extensions: Mapping[str, str | None] = attrs.field(factory=dict)

    @property
    def outcome(self) -> Outcome:
        """Pending, accepted (with a KSeF number) or rejected."""
        return invoice_outcome(self.status.code)


@attrs.frozen
class SessionStatus:
    """Where a session stands: its status, counts and the session UPO pages."""

    reference_number: str
    status: Status
    invoice_count: int | None = None
    successful_invoice_count: int | None = None
    failed_invoice_count: int | None = None
    upo_reference_numbers: tuple[str, ...] = ()
    valid_until: datetime | None = None

    @property
    def outcome(self) -> Outcome:
        """Pending until processed with a UPO, or failed."""
        return session_outcome(
            self.status.code, has_upo=bool(self.upo_reference_numbers)
        )


def _given(value: T | Unset | None) -> T | None:
    """Return None for an absent optional field of a generated model."""
    return None if isinstance(value, Unset) else value


def status_from_model(model: StatusInfo | InvoiceStatusInfo) -> Status:
    """Return a :class:`Status` from a generated ``StatusInfo``."""
    details = _given(model.details) or []
    return Status(model.code, model.description, tuple(details))


def invoice_status_from_model(model: SessionInvoiceStatusResponse) -> InvoiceStatus:
    """Return an :class:`InvoiceStatus` from ``SessionInvoiceStatusResponse``."""
    extensions = _given(model.status.extensions)
    return InvoiceStatus(
        reference_number=model.reference_number,
        ordinal_number=model.ordinal_number,
        status=status_from_model(model.status),
        invoice_hash=model.invoice_hash,
        ksef_number=_given(model.ksef_number),
        invoice_number=_given(model.invoice_number),
        invoicing_mode=str(mode) if (mode := _given(model.invoicing_mode)) else None,
        extensions=dict(extensions.additional_properties) if extensions else {},
    )


def session_status_from_model(
    reference_number: str, model: SessionStatusResponse
) -> SessionStatus:
    """Return a :class:`SessionStatus` from ``SessionStatusResponse``."""
    upo = _given(model.upo)
    pages = upo.pages if upo is not None else []
    return SessionStatus(
        reference_number=reference_number,
        status=status_from_model(model.status),
        invoice_count=_given(model.invoice_count),
        successful_invoice_count=_given(model.successful_invoice_count),
        failed_invoice_count=_given(model.failed_invoice_count),
        upo_reference_numbers=tuple(page.reference_number for page in pages),
        valid_until=_given(model.valid_until),
    )
