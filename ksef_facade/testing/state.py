"""Records the simulator keeps: tokens, auth operations, sessions and invoices."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "AuthOperation",
    "BatchPackage",
    "Challenge",
    "InvoiceRecord",
    "IssuedToken",
    "KsefTokenRecord",
    "SessionRecord",
    "Status",
    "UpoPage",
]


@dataclass(frozen=True)
class Status:
    """A status code with its description and details, as ``StatusInfo``."""

    code: int
    description: str
    details: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Return the ``StatusInfo`` object."""
        body: dict[str, Any] = {"code": self.code, "description": self.description}
        if self.details:
            body["details"] = list(self.details)
        return body


@dataclass
class KsefTokenRecord:
    """A KSeF token that authenticates in the context of ``nip``."""

    reference_number: str
    secret: str = field(repr=False)
    nip: str
    permissions: list[str]
    description: str
    created: datetime
    author_nip: str
    active_from: datetime
    revoked: bool = False
    last_use: datetime | None = None


@dataclass
class Challenge:
    """An auth challenge and when it was issued."""

    value: str
    issued: datetime
    used: bool = False


@dataclass
class AuthOperation:
    """One authentication: its pending outcome, and the session it opens."""

    reference_number: str
    nip: str
    started: datetime
    ready_at: datetime
    outcome: Status
    permissions: list[str]
    token_reference: str | None
    redeemed: bool = False
    revoked: bool = False
    last_refresh: datetime | None = None
    refresh_valid_until: datetime | None = None
    allowed_ips: list[tuple[int, int]] | None = None


@dataclass
class IssuedToken:
    """A JWT the simulator issued, tracked so it can be expired or revoked early."""

    jti: str
    kind: str
    auth_reference: str
    expires: datetime
    expired_early: bool = False


@dataclass
class InvoiceRecord:
    """One invoice received in a session, with its (eventual) processing result."""

    ordinal: int
    reference_number: str
    session_reference: str
    context_nip: str
    received: datetime
    ready_at: datetime
    invoice_hash: str
    outcome: Status
    content: bytes | None = field(default=None, repr=False)
    file_name: str | None = None
    ksef_number: str | None = None
    invoice_number: str | None = None
    offline: bool = False
    metadata: dict[str, Any] | None = None
    extensions: dict[str, str] | None = None
    upo: bytes | None = field(default=None, repr=False)
    hash_of_corrected: str | None = None
    corrected_by: str | None = None
    # Session listings this invoice is still left out of (the listing_lag fault).
    hidden_listings: int = 0


@dataclass
class BatchPackage:
    """What a batch session declared at open, and the parts uploaded so far."""

    file_size: int
    file_hash: str
    compression: str
    parts: dict[int, tuple[int, str]]
    upload_deadline: datetime
    uploaded: dict[int, bytes] = field(default_factory=dict, repr=False)


@dataclass
class UpoPage:
    """One page of a session's collective UPO."""

    reference_number: str
    content: bytes = field(repr=False)


@dataclass
class SessionRecord:
    """An online or batch session and the invoices sent in it."""

    reference_number: str
    kind: str
    nip: str
    auth_reference: str
    form_code: dict[str, str]
    created: datetime
    updated: datetime
    valid_until: datetime | None
    aes_key: bytes | None = field(default=None, repr=False)
    iv: bytes | None = field(default=None, repr=False)
    closed: datetime | None = None
    ready_at: datetime | None = None
    final_status: Status | None = None
    invoices: list[InvoiceRecord] = field(default_factory=list)
    batch: BatchPackage | None = None
    upo_pages: list[UpoPage] = field(default_factory=list)
    offline: bool = False
    validate_subjects: bool = False
