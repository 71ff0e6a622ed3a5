"""Status codes and polling decisions (spec 2.9.0 StatusInfo tables)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ksef_api.models import SessionInvoiceStatusResponse, SessionStatusResponse
from ksef_facade.statuses import (
    Outcome,
    auth_outcome,
    invoice_outcome,
    invoice_status_from_model,
    next_poll_delay,
    session_outcome,
    session_status_from_model,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("code", "outcome"),
    [(100, Outcome.PENDING), (200, Outcome.SUCCEEDED), (450, Outcome.FAILED)],
)
def test_auth_outcome(code: int, outcome: Outcome) -> None:
    """100 is in progress, 200 success, 4xx a failed authentication."""
    assert auth_outcome(code) is outcome


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (100, Outcome.PENDING),
        (150, Outcome.PENDING),
        (200, Outcome.SUCCEEDED),
        (440, Outcome.FAILED),
        (550, Outcome.FAILED),
    ],
)
def test_invoice_outcome(code: int, outcome: Outcome) -> None:
    """Invoice codes below 200 are pending; 4xx and 5xx are rejections."""
    assert invoice_outcome(code) is outcome


def test_closed_session_is_pending() -> None:
    """An online session closed (170) but not processed is still pending."""
    assert session_outcome(170, has_upo=False) is Outcome.PENDING


def test_processed_session_waits_for_upo() -> None:
    """A processed session (200) is final only once its UPO is listed."""
    assert session_outcome(200, has_upo=False) is Outcome.PENDING
    assert session_outcome(200, has_upo=True) is Outcome.SUCCEEDED


def test_failed_session_is_final_without_upo() -> None:
    """A session with no valid invoices (445) is final and failed."""
    assert session_outcome(445, has_upo=False) is Outcome.FAILED


def test_poll_delay_is_the_interval() -> None:
    """Far from the deadline the next poll is one interval away."""
    delay = next_poll_delay(
        started=T0,
        now=T0 + timedelta(seconds=1),
        interval=timedelta(seconds=2),
        timeout=timedelta(seconds=60),
    )
    assert delay == 2.0


def test_poll_delay_is_cut_at_the_deadline() -> None:
    """The last wait ends at the deadline, not after it."""
    delay = next_poll_delay(
        started=T0,
        now=T0 + timedelta(seconds=59.5),
        interval=timedelta(seconds=2),
        timeout=timedelta(seconds=60),
    )
    assert delay == 0.5


def test_poll_gives_up_after_the_deadline() -> None:
    """At or past the deadline there is no next poll."""
    delay = next_poll_delay(
        started=T0,
        now=T0 + timedelta(seconds=60),
        interval=timedelta(seconds=2),
        timeout=timedelta(seconds=60),
    )
    assert delay is None


def test_invoice_status_from_spec_example() -> None:
    """The spec's duplicate-invoice example converts with its extensions."""
    model = SessionInvoiceStatusResponse.from_dict(
        {
            "ordinalNumber": 2,
            "referenceNumber": "20250626-EE-2F20AD2000-242386DF86-52",
            "invoiceHash": "mkht+3m5trnfxlTYhq3QFn74LkEO69MFNlsMAkCDSPA=",
            "invoicingDate": "2025-07-11T12:23:56.0154302+00:00",
            "status": {
                "code": 440,
                "description": "Duplikat faktury",
                "details": ["Duplikat faktury."],
                "extensions": {
                    "originalKsefNumber": "5265877635-20250626-010080DD2B5E-26"
                },
            },
        }
    )

    status = invoice_status_from_model(model)

    assert status.outcome is Outcome.FAILED
    assert status.status.details == ("Duplikat faktury.",)
    assert status.extensions["originalKsefNumber"].startswith("5265877635")
    assert status.ksef_number is None


def test_session_status_lists_upo_pages() -> None:
    """A processed session's UPO page references are kept in order."""
    model = SessionStatusResponse.from_dict(
        {
            "status": {"code": 200, "description": "ok"},
            "dateCreated": "2025-09-18T15:00:30+00:00",
            "dateUpdated": "2025-09-18T15:01:20+00:00",
            "upo": {
                "pages": [
                    {
                        "referenceNumber": f"20250918-EU-2EBD6FA000-242EB9B66D-4{n}",
                        "downloadUrl": "https://example.invalid/upo",
                        "downloadUrlExpirationDate": "2025-09-21T15:00:50+00:00",
                    }
                    for n in (1, 2)
                ]
            },
            "invoiceCount": 10,
        }
    )

    status = session_status_from_model("20250918-SO-0000000000-0000000000-00", model)

    assert status.outcome is Outcome.SUCCEEDED
    assert [ref[-1] for ref in status.upo_reference_numbers] == ["1", "2"]
    assert status.invoice_count == 10
    assert status.failed_invoice_count is None
