"""Whether a failed invoice send may have reached KSeF, and what to do about it.

Sending an invoice in an online session (``POST /sessions/online/{ref}/invoices``)
creates it: a resend of a request KSeF already processed would be a second invoice
(rejected as a duplicate at best). So when a send fails in a way that leaves its fate
unknown (a dropped connection or read timeout after the request went out, a 5xx or
408), the session first looks for the invoice among its own invoices
(``GET /sessions/{ref}/invoices``, sesja-sprawdzenie-stanu-i-pobranie-upo.md,
section 3) by its SHA-256 ``invoiceHash``. Found: its reference number is adopted as
if the send had answered. Not found after a few bounded lookups: the invoice is sent
once more. The docs do not say how soon a sent invoice is listed (sending is queued,
limity-api.md, "Wysyłka faktur"), hence the lookups spaced by short waits.

A resend of an invoice that had reached KSeF after all ends as a duplicate (status
440, faktury/weryfikacja-faktury.md) naming the original in its ``extensions``
(api-changelog.md, InvoiceStatusInfo). When that original is in the same session and
carries the same hash, the original is the invoice's outcome, not the duplicate.

Everything here is pure; ``ksef_facade._async.online`` lists, waits and sends.
"""

from __future__ import annotations

import enum
from collections.abc import Container, Iterable

import attrs

from ksef_facade import retry
from ksef_facade.errors import KsefApiError, KsefTransportError, RateLimitError
from ksef_facade.statuses import InvoiceStatus

__all__ = [
    "DEFAULT_RECONCILE_POLICY",
    "Action",
    "ReconcilePolicy",
    "Reconciled",
    "Step",
    "find_sent_invoice",
    "may_have_arrived",
    "next_step",
    "original_of_duplicate",
]


def _delays(
    instance: object, attribute: attrs.Attribute[tuple[float, ...]], value: object
) -> None:
    if not isinstance(value, tuple) or not value:
        raise ValueError(f"{attribute.name} must be a non-empty tuple of seconds")
    if not all(isinstance(v, int | float) and 0 <= v < float("inf") for v in value):
        raise ValueError(f"{attribute.name} must hold finite numbers >= 0")


@attrs.frozen
class ReconcilePolicy:
    """How hard to look for an invoice whose send failed, and how often to resend.

    Each failed send is looked up once per entry of ``lookup_delays``, after waiting
    that many seconds. ``max_sends`` bounds the sends of one invoice, the first
    included.
    """

    lookup_delays: tuple[float, ...] = attrs.field(
        default=(0.0, 1.0, 3.0), validator=_delays
    )
    max_sends: int = attrs.field(default=3, validator=retry.positive_int)


DEFAULT_RECONCILE_POLICY = ReconcilePolicy()


def may_have_arrived(error: BaseException) -> bool:
    """Tell whether a send that raised ``error`` may have been processed by KSeF.

    A 429 never was (limity-api.md: the request is blocked), nor a request whose
    connection failed before it left; 4xx answers are KSeF's final word.
    """
    if isinstance(error, KsefTransportError):
        cause = error.__cause__
        return (
            cause is not None
            and retry.classify_error(cause) is retry.FailureStage.MAYBE_SENT
        )
    if isinstance(error, RateLimitError) or not isinstance(error, KsefApiError):
        return False

    return retry.is_transient_status(error.status_code)


def find_sent_invoice(
    invoices: Iterable[InvoiceStatus], invoice_hash: str, known: Container[str]
) -> InvoiceStatus | None:
    """Return the listed invoice with ``invoice_hash`` not yet claimed, if any.

    ``known`` holds the reference numbers this session already handed out, so an
    earlier send of the same document is not taken for the lost one. Of several
    candidates the earliest (lowest ordinal number) wins.
    """
    candidates = [
        invoice
        for invoice in invoices
        if invoice.invoice_hash == invoice_hash
        and invoice.reference_number not in known
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda invoice: invoice.ordinal_number)


# faktury/weryfikacja-faktury.md: "Duplikat faktury"; api-changelog.md names the
# extensions that point at the invoice accepted first.
DUPLICATE_STATUS = 440
_ORIGINAL_SESSION = "originalSessionReferenceNumber"
_ORIGINAL_KSEF_NUMBER = "originalKsefNumber"


def original_of_duplicate(status: InvoiceStatus, session_reference: str) -> str | None:
    """Return the KSeF number of the original that ``status`` duplicates, if any.

    Only an original accepted in the session ``session_reference`` counts: a resend
    never reaches another session.
    """
    if status.status.code != DUPLICATE_STATUS:
        return None
    if status.extensions.get(_ORIGINAL_SESSION) != session_reference:
        return None
    return status.extensions.get(_ORIGINAL_KSEF_NUMBER) or None


class Action(enum.Enum):
    """What to do after looking a failed send up."""

    ADOPT = "adopt"
    """KSeF has the invoice: use the listed reference number."""

    LOOK_AGAIN = "look again"
    """Not listed (yet): wait ``Step.wait`` seconds and list again."""

    RESEND = "resend"
    """Not listed after every lookup: send the invoice once more."""

    GIVE_UP = "give up"
    """Not listed and out of sends: raise the send's error."""


@attrs.frozen
class Step:
    """The next action after a lookup, with its wait and reason."""

    action: Action
    reason: str
    wait: float = 0.0


def next_step(
    found: InvoiceStatus | None, *, lookups: int, sends: int, policy: ReconcilePolicy
) -> Step:
    """Decide what follows lookup number ``lookups`` (from 1) after send ``sends``."""
    if lookups < 1 or sends < 1:
        raise ValueError("lookups and sends count from 1")

    if found is not None:
        return Step(Action.ADOPT, f"listed as {found.reference_number}")

    if lookups < len(policy.lookup_delays):
        wait = float(policy.lookup_delays[lookups])
        return Step(Action.LOOK_AGAIN, f"not listed after lookup {lookups}", wait)

    if sends < policy.max_sends:
        why = f"not listed after {lookups} lookups; send {sends + 1}"
        return Step(Action.RESEND, f"{why} of at most {policy.max_sends}")

    return Step(
        Action.GIVE_UP,
        f"not listed after {lookups} lookups and all {policy.max_sends} sends used",
    )


@attrs.frozen
class Reconciled:
    """How a failed send's reconciliation ended, and the adopted reference.

    ``action`` is ADOPT (``reference`` is the listed invoice's), RESEND or GIVE_UP;
    ``reference`` is empty unless adopted.
    """

    action: Action
    reference: str
