"""The simulator's state and control surface: the object tests hold on to."""

from __future__ import annotations

import hashlib
import random
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import jwt
from .calls import Access
from .clock import Clock, SystemClock
from .errors import Gone, Unauthorized
from .faults import Faults
from .identifiers import is_valid_nip, reference_number
from .keys import USAGES, KeyStore
from .ratelimit import RateLimiter
from .state import (
    AuthOperation,
    Challenge,
    InvoiceRecord,
    IssuedToken,
    KsefTokenRecord,
    SessionRecord,
)

if TYPE_CHECKING:
    import httpx

    from .contract import ContractValidator
    from .exports import ExportRecord

__all__ = ["DEFAULT_PERMISSIONS", "ReceivedInvoice", "Simulator"]

# spec: TokenPermissionType; a provisioned token gets all that invoicing needs.
DEFAULT_PERMISSIONS = (
    "InvoiceRead",
    "InvoiceWrite",
    "CredentialsRead",
    "CredentialsManage",
    "Introspection",
)


@dataclass(frozen=True)
class ReceivedInvoice:
    """An invoice as the simulator received it, for inspection by tests."""

    reference_number: str
    session_reference: str
    context_nip: str
    content: bytes | None
    status_code: int
    ksef_number: str | None
    file_name: str | None


class Simulator:
    """A local KSeF 2.0: state, an ASGI app, and controls for tests.

    All times come from ``clock`` (a :class:`~.clock.ManualClock` lets tests move
    time); every identifier and key derives from ``seed``. Invoice, session and auth
    processing completes ``processing_delay`` seconds after the request.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        processing_delay: float = 0.0,
        access_token_ttl: float = 900.0,
        refresh_token_ttl: float = 7 * 86400.0,
        authentication_token_ttl: float = 3600.0,
        challenge_ttl: float = 600.0,
        online_session_ttl: float = 12 * 3600.0,
        max_invoices_per_session: int = 10_000,
        metadata_query_limit: int = 10_000,
        export_part_size: int = 50_000_000,
        status_retention: float = 7 * 86400.0,
        enforce_rate_limits: bool = False,
        rate_limit_scale: float = 1.0,
        rate_limit_escalation: float = 1.0,
        validate_contract: bool = False,
        spec_path: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.clock: Clock = clock or SystemClock()
        self.seed = seed
        self.rng = random.Random(f"ksef-sim:{seed}")
        self.processing_delay = processing_delay
        self.access_token_ttl = access_token_ttl
        self.refresh_token_ttl = refresh_token_ttl
        self.authentication_token_ttl = authentication_token_ttl
        self.challenge_ttl = challenge_ttl
        self.online_session_ttl = online_session_ttl
        self.max_invoices_per_session = max_invoices_per_session
        self.metadata_query_limit = metadata_query_limit
        self.export_part_size = export_part_size
        self.status_retention = status_retention

        self.keys = KeyStore(seed, self.clock.now())
        self.faults = Faults()
        self.rate_limiter = RateLimiter(
            enabled=enforce_rate_limits,
            scale=rate_limit_scale,
            escalation=rate_limit_escalation,
        )
        self.validate_contract = validate_contract
        self.spec_path = spec_path
        self.contract_violations: list[str] = []
        self.contract_request_violations: list[str] = []
        self.request_counts: Counter[str] = Counter()
        if validate_contract:
            # Fail here, readably, rather than on the first request.
            self.contract()

        self.ksef_tokens: dict[str, KsefTokenRecord] = {}
        self.challenges: dict[str, Challenge] = {}
        self.auth_operations: dict[str, AuthOperation] = {}
        self.issued_tokens: dict[str, IssuedToken] = {}
        self.sessions: dict[str, SessionRecord] = {}
        self.invoices_by_ksef_number: dict[str, InvoiceRecord] = {}
        self.accepted_invoice_keys: dict[tuple[str, str, str], InvoiceRecord] = {}
        self.exports: dict[str, ExportRecord] = {}

        self._jwt_secret = hashlib.sha256(f"ksef-sim-jwt:{seed}".encode()).digest()
        self.presign_secret = hashlib.sha256(f"ksef-sim-url:{seed}".encode()).digest()
        self._app: Any = None

    def __repr__(self) -> str:
        return f"Simulator(seed={self.seed}, sessions={len(self.sessions)})"

    # -- time and identifiers -------------------------------------------------

    def now(self) -> datetime:
        """Return the simulator's current time."""
        return self.clock.now()

    def check_retention(self, started: datetime) -> None:
        """Raise 410 Gone when an operation started at ``started`` is past retention.

        api-changelog.md (2.4.0): the statuses of authentication (GET
        /auth/{referenceNumber}) and of exports are kept 7 days, then answer 410.
        """
        if self.now() >= started + timedelta(seconds=self.status_retention):
            raise Gone("Operacja wygasła i nie jest już dostępna.")

    def ready_at(self) -> datetime:
        """Return when work submitted now finishes processing."""
        return self.now() + timedelta(seconds=self.processing_delay)

    def new_reference(self, kind: str) -> str:
        """Return a fresh reference number of two-letter ``kind``."""
        return reference_number(kind, self.now(), self.rng)

    def random_hex(self, nbytes: int) -> str:
        """Return ``nbytes`` of seeded randomness as uppercase hex."""
        return f"{self.rng.getrandbits(nbytes * 8):0{nbytes * 2}X}"

    # -- the app and transports ------------------------------------------------

    @property
    def app(self) -> Any:
        """The ASGI application serving ``/v2`` and the pre-signed URLs."""
        if self._app is None:
            from .app import build_app

            self._app = build_app(self)
        return self._app

    def async_transport(self) -> httpx.ASGITransport:
        """Return an httpx transport that calls the app in-process (async only)."""
        import httpx

        return httpx.ASGITransport(app=self.app)

    def sync_transport(self) -> httpx.BaseTransport:
        """Return a blocking httpx transport running the app on a private loop."""
        from .transport import SyncASGITransport

        return SyncASGITransport(self.app)

    def contract(self) -> ContractValidator:
        """Return the process-wide contract validator for the pinned spec."""
        from .contract import shared_validator

        return shared_validator(self.spec_path)

    # -- provisioning and controls ---------------------------------------------

    def add_ksef_token(
        self,
        nip: str,
        token: str | None = None,
        *,
        permissions: tuple[str, ...] | list[str] = DEFAULT_PERMISSIONS,
        description: str = "Token provisioned by the simulator",
    ) -> str:
        """Provision a KSeF token for context ``nip`` and return its secret."""
        if not is_valid_nip(nip):
            raise ValueError("nip must be a ten-digit NIP with a valid check digit")

        with self.lock:
            reference = self.new_reference("TK")
            secret = token or f"{reference}|nip-{nip}|{self.random_hex(32).lower()}"
            if any(record.secret == secret for record in self.ksef_tokens.values()):
                raise ValueError("this token is already provisioned")
            self.ksef_tokens[reference] = KsefTokenRecord(
                reference_number=reference,
                secret=secret,
                nip=nip,
                permissions=list(permissions),
                description=description,
                created=self.now(),
                author_nip=nip,
                active_from=self.now(),
            )
            return secret

    def revoke_ksef_token(self, token: str) -> None:
        """Revoke the KSeF token whose secret is ``token``."""
        with self.lock:
            for record in self.ksef_tokens.values():
                if record.secret == token:
                    record.revoked = True
                    return
        raise KeyError("no such KSeF token")

    def rotate_keys(
        self, usage: str | None = None, *, withdraw_old: bool = False
    ) -> list[str]:
        """Publish a new key per usage (or for ``usage``); return the new key ids.

        With ``withdraw_old`` this is an emergency rotation: the old keys stop being
        listed and accepted at once (klucze-publiczne-do-szyfrowania.md, 3.2.2).
        """
        if usage is not None and usage not in USAGES:
            raise ValueError(f"usage must be one of {', '.join(USAGES)}")

        with self.lock:
            keys = self.keys.rotate(self.now(), usage)
            if withdraw_old:
                self.keys.withdraw_old(usage)
            return [key.public_key_id for key in keys]

    def withdraw_old_keys(self, usage: str | None = None) -> None:
        """End the transition: only the newest key of each usage stays accepted."""
        with self.lock:
            self.keys.withdraw_old(usage)

    def expire_tokens(self, kind: str = "access") -> int:
        """Expire every issued token of ``kind`` now; return how many were live."""
        if kind not in ("access", "refresh", "authentication"):
            raise ValueError("kind must be access, refresh or authentication")

        with self.lock:
            live = [
                record
                for record in self.issued_tokens.values()
                if record.kind == kind and not record.expired_early
            ]
            for record in live:
                record.expired_early = True
            return len(live)

    # -- tokens ----------------------------------------------------------------

    def issue_token(
        self, kind: str, operation: AuthOperation, ttl: float
    ) -> tuple[str, datetime]:
        """Sign a JWT of ``kind`` for ``operation``; return it and its expiry."""
        issued = self.now()
        expires = issued + timedelta(seconds=ttl)
        jti = self.random_hex(16)
        claims = {
            "jti": jti,
            "typ": kind,
            "ref": operation.reference_number,
            "ctx": operation.nip,
            "per": operation.permissions,
            "iat": int(issued.timestamp()),
            "exp": int(expires.timestamp()),
        }
        self.issued_tokens[jti] = IssuedToken(
            jti, kind, operation.reference_number, expires
        )
        return jwt.encode(claims, self._jwt_secret), expires

    def verify_token(self, token: str, kinds: tuple[str, ...]) -> Access:
        """Check a bearer JWT of one of ``kinds``; raise 401 when it is not valid."""
        try:
            claims = jwt.decode(token, self._jwt_secret)
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("Nieprawidłowy token.") from exc

        with self.lock:
            record = self.issued_tokens.get(str(claims.get("jti")))
            if record is None or record.kind not in kinds:
                raise Unauthorized("Nieprawidłowy rodzaj tokena dla tej operacji.")
            if record.expired_early or self.now() >= record.expires:
                raise Unauthorized("Token wygasł.")

            operation = self.auth_operations[record.auth_reference]
            if record.kind == "refresh" and operation.revoked:
                raise Unauthorized("Sesja uwierzytelnienia została unieważniona.")
            return Access(
                nip=operation.nip,
                auth_reference=operation.reference_number,
                permissions=tuple(operation.permissions),
                token_kind=record.kind,
            )

    def record_contract_violation(self, kind: str, message: str) -> None:
        """Record a contract violation found in a ``request`` or a ``response``."""
        with self.lock:
            if kind == "request":
                self.contract_request_violations.append(message)
            else:
                self.contract_violations.append(message)

    # -- inspection ------------------------------------------------------------

    def contract_problems(self, *, requests: bool = True) -> list[str]:
        """Return the contract violations recorded so far.

        Response violations always count; request violations unless ``requests``
        is false (for tests that send bad requests on purpose).
        """
        with self.lock:
            problems = list(self.contract_violations)
            if requests:
                problems += self.contract_request_violations
            return problems

    def check_contract(self, *, requests: bool = True) -> None:
        """Raise ``ContractViolation`` listing :meth:`contract_problems`, if any."""
        from .contract import ContractViolation

        problems = self.contract_problems(requests=requests)
        if problems:
            raise ContractViolation(
                f"{len(problems)} KSeF contract violation(s):\n" + "\n".join(problems)
            )

    def received_invoices(self, nip: str | None = None) -> list[ReceivedInvoice]:
        """Return every invoice received (decrypted bytes), optionally for ``nip``."""
        from .processing import invoice_status

        with self.lock:
            result = []
            for session in self.sessions.values():
                if nip is not None and session.nip != nip:
                    continue
                for invoice in session.invoices:
                    status = invoice_status(self, invoice)
                    result.append(
                        ReceivedInvoice(
                            reference_number=invoice.reference_number,
                            session_reference=session.reference_number,
                            context_nip=session.nip,
                            content=invoice.content,
                            status_code=status.code,
                            ksef_number=invoice.ksef_number
                            if status.code == 200
                            else None,
                            file_name=invoice.file_name,
                        )
                    )
            return result

    def session_records(self, kind: str | None = None) -> list[SessionRecord]:
        """Return the session records (``Online``/``Batch`` or all), oldest first."""
        with self.lock:
            return [s for s in self.sessions.values() if kind is None or s.kind == kind]
