"""Table tests of the pure decisions behind reconciling a failed invoice send."""

from __future__ import annotations

import attrs
import httpx
import pytest

from ksef_facade import reconcile
from ksef_facade.errors import (
    BadRequestError,
    KsefApiError,
    KsefError,
    KsefTransportError,
    RateLimitError,
    ServerError,
)
from ksef_facade.reconcile import (
    Action,
    ReconcilePolicy,
    find_sent_invoice,
    may_have_arrived,
    next_step,
)
from ksef_facade.statuses import InvoiceStatus, Status

_REQUEST = httpx.Request("POST", "https://ksef.invalid/v2/sessions/online/R/invoices")


def _transport_error(cause: BaseException | None) -> KsefTransportError:
    error = KsefTransportError("No answer from KSeF.")
    error.__cause__ = cause
    return error


def _invoice(reference: str, invoice_hash: str, ordinal: int = 1) -> InvoiceStatus:
    return InvoiceStatus(
        reference_number=reference,
        ordinal_number=ordinal,
        status=Status(200, "Sukces"),
        invoice_hash=invoice_hash,
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_transport_error(httpx.ReadTimeout("slow", request=_REQUEST)), True),
        (
            _transport_error(httpx.RemoteProtocolError("dropped", request=_REQUEST)),
            True,
        ),
        (_transport_error(httpx.WriteError("broken pipe", request=_REQUEST)), True),
        (_transport_error(httpx.ConnectError("refused", request=_REQUEST)), False),
        (_transport_error(httpx.ConnectTimeout("no route", request=_REQUEST)), False),
        (_transport_error(httpx.PoolTimeout("no slot", request=_REQUEST)), False),
        (_transport_error(None), False),
        (ServerError("HTTP 503", status_code=503), True),
        (ServerError("HTTP 500", status_code=500), True),
        (ServerError("HTTP 501", status_code=501), False),
        (ServerError("HTTP 505", status_code=505), False),
        (KsefApiError("HTTP 408", status_code=408), True),
        (RateLimitError("HTTP 429", status_code=429, retry_after=30), False),
        (BadRequestError("HTTP 400", status_code=400, codes=(21405,)), False),
        (KsefError("something else"), False),
        (ValueError("not a KSeF error"), False),
    ],
)
def test_may_have_arrived(error: BaseException, expected: bool) -> None:
    """Only failures after which KSeF may have processed the send count as arrived."""
    assert may_have_arrived(error) is expected


def test_find_sent_invoice_by_hash() -> None:
    """The listed invoice with the same hash is found."""
    listed = [_invoice("R-1", "aaa"), _invoice("R-2", "bbb", 2)]

    found = find_sent_invoice(listed, "bbb", known=set())

    assert found is not None
    assert found.reference_number == "R-2"


def test_find_sent_invoice_skips_claimed_references() -> None:
    """An earlier send of the same document, already handed out, is not adopted."""
    listed = [_invoice("R-1", "aaa"), _invoice("R-2", "aaa", 2)]

    found = find_sent_invoice(listed, "aaa", known={"R-1"})

    assert found is not None
    assert found.reference_number == "R-2"


def test_find_sent_invoice_prefers_the_earliest() -> None:
    """Of two unclaimed candidates the lower ordinal number wins."""
    listed = [_invoice("R-9", "aaa", 9), _invoice("R-3", "aaa", 3)]

    found = find_sent_invoice(listed, "aaa", known=())

    assert found is not None
    assert found.reference_number == "R-3"


@pytest.mark.parametrize(
    ("listed", "known"),
    [
        ([], set()),
        ([_invoice("R-1", "other")], set()),
        ([_invoice("R-1", "aaa")], {"R-1"}),
    ],
)
def test_find_sent_invoice_finds_nothing(
    listed: list[InvoiceStatus], known: set[str]
) -> None:
    """No unclaimed invoice with the hash means nothing is found."""
    assert find_sent_invoice(listed, "aaa", known) is None


POLICY = ReconcilePolicy(lookup_delays=(0.0, 1.0, 3.0), max_sends=3)
FOUND = _invoice("R-1", "aaa")


@pytest.mark.parametrize(
    ("found", "lookups", "sends", "action", "wait"),
    [
        (FOUND, 1, 1, Action.ADOPT, 0.0),
        (FOUND, 3, 3, Action.ADOPT, 0.0),
        (None, 1, 1, Action.LOOK_AGAIN, 1.0),
        (None, 2, 1, Action.LOOK_AGAIN, 3.0),
        (None, 3, 1, Action.RESEND, 0.0),
        (None, 3, 2, Action.RESEND, 0.0),
        (None, 3, 3, Action.GIVE_UP, 0.0),
        (None, 2, 3, Action.LOOK_AGAIN, 3.0),
    ],
)
def test_next_step(
    found: InvoiceStatus | None, lookups: int, sends: int, action: Action, wait: float
) -> None:
    """Adopt when found; else look again, then resend, then give up."""
    step = next_step(found, lookups=lookups, sends=sends, policy=POLICY)

    assert (step.action, step.wait) == (action, wait)


def test_next_step_single_lookup_single_send_gives_up() -> None:
    """With one lookup and one send allowed, a missing invoice is not resent."""
    policy = ReconcilePolicy(lookup_delays=(0.0,), max_sends=1)

    step = next_step(None, lookups=1, sends=1, policy=policy)

    assert step.action is Action.GIVE_UP


def test_next_step_counts_from_one() -> None:
    """Lookup and send numbers below one are a programming error."""
    with pytest.raises(ValueError, match="count from 1"):
        next_step(None, lookups=0, sends=1, policy=POLICY)


@pytest.mark.parametrize(
    "options",
    [
        {"lookup_delays": ()},
        {"lookup_delays": (0.0, -1.0)},
        {"lookup_delays": (float("inf"),)},
        {"lookup_delays": (float("nan"),)},
        {"lookup_delays": [0.0]},
        {"max_sends": 0},
        {"max_sends": True},
        {"max_sends": 2.5},
    ],
)
def test_policy_rejects_bad_values(options: dict[str, object]) -> None:
    """Empty, negative, infinite or NaN delays and send counts below one are refused."""
    with pytest.raises(ValueError, match=r"lookup_delays|max_sends"):
        ReconcilePolicy(**options)  # type: ignore[arg-type]


_ORIGINAL = {
    "originalSessionReferenceNumber": "20261203-SO-0000000000-0000000000-00",
    "originalKsefNumber": "5265877635-20261203-010080DD2B5E-26",
}


@pytest.mark.parametrize(
    ("code", "extensions", "session", "expected"),
    [
        (440, _ORIGINAL, _ORIGINAL["originalSessionReferenceNumber"], True),
        (440, _ORIGINAL, "20261203-SO-1111111111-1111111111-11", False),
        (440, {}, _ORIGINAL["originalSessionReferenceNumber"], False),
        (430, _ORIGINAL, _ORIGINAL["originalSessionReferenceNumber"], False),
    ],
)
def test_original_of_duplicate(
    code: int, extensions: dict[str, str], session: str, expected: bool
) -> None:
    """Only a duplicate of an original in the same session names that original."""
    status = attrs.evolve(
        _invoice("R-2", "hash"), status=Status(code, "Duplikat"), extensions=extensions
    )

    original = reconcile.original_of_duplicate(status, session)

    assert original == (_ORIGINAL["originalKsefNumber"] if expected else None)
