"""The online (interactive) session workflow: open, send invoices, close, get UPO.

sesja-interaktywna.md: a session is opened with a form code and an AES-256 key
encrypted with KSeF's SymmetricKeyEncryption key; each invoice is sent encrypted
with that key (AES-256-CBC, PKCS#7) together with the SHA-256 and size of both the
plain and the encrypted document; closing the session starts the session UPO.
Each session remembers the NIP it was opened for and uses it for every call.
A send that fails after it may have reached KSeF is looked up among the session's
invoices by its hash before it is sent again (:mod:`ksef_facade.reconcile`).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from ksef_api.models import (
    OpenOnlineSessionRequest,
    SendInvoiceRequest,
)
from ksef_facade import crypto, reconcile
from ksef_facade._async.api import SESSION_INVOICES_MAX_PAGE
from ksef_facade._async.encryption import async_send_with_session_key
from ksef_facade._concurrency import async_sleep
from ksef_facade.context import current_nip, nip_context
from ksef_facade.corrections import check_technical_correction
from ksef_facade.errors import InvoiceRejectedError, KsefError
from ksef_facade.forms import FormCode
from ksef_facade.retry import DEFAULT_POLICY, waits_enabled
from ksef_facade.secrets import SecretBytes
from ksef_facade.statuses import InvoiceStatus, Outcome, SessionStatus

if TYPE_CHECKING:
    from datetime import datetime, timedelta
    from types import TracebackType

    from ksef_facade._async.client import AsyncKsefClient

__all__ = ["AsyncInvoiceHandle", "AsyncOnlineSession"]

_log = logging.getLogger("ksef_facade.online")


class AsyncInvoiceHandle:
    """One invoice sent in an online session; ask it for its status or result."""

    def __init__(
        self,
        session: AsyncOnlineSession,
        reference_number: str,
        invoice_hash: str,
        *,
        resent: bool = False,
    ) -> None:
        self._session = session
        self.reference_number = reference_number
        self.invoice_hash = invoice_hash
        # Sent again after a failure it may have survived (ksef_facade.reconcile).
        self.resent = resent

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.reference_number!r}, "
            f"session={self._session.reference_number!r})"
        )

    async def status(self) -> InvoiceStatus:
        """Return the invoice's current status."""
        return await self._session.invoice_status(self.reference_number)

    async def wait(
        self, *, interval: timedelta | None = None, max_wait: timedelta | None = None
    ) -> InvoiceStatus:
        """Wait until KSeF accepts or rejects the invoice; return that status."""
        return await self._session.wait_for_invoice(
            self.reference_number, interval=interval, max_wait=max_wait
        )

    async def result(
        self, *, interval: timedelta | None = None, max_wait: timedelta | None = None
    ) -> str:
        """Return the KSeF number; raise InvoiceRejectedError when rejected."""
        status = await self.wait(interval=interval, max_wait=max_wait)
        if status.outcome is Outcome.FAILED and self.resent:
            original = await self._session.original_of_resend(status, self.invoice_hash)
            if original is not None:
                return original
        if status.outcome is Outcome.FAILED or status.ksef_number is None:
            raise InvoiceRejectedError(
                status_code=status.status.code,
                description=status.status.description,
                invoice_reference=self.reference_number,
                details=status.status.details,
            )
        return status.ksef_number

    async def upo(self) -> bytes:
        """Download this invoice's UPO, verified against its announced hash."""
        return await self._session.invoice_upo(self.reference_number)


class AsyncOnlineSession:
    """An online session for one form code, used as ``async with`` block.

    Entering opens the session (unless :meth:`open` was awaited already); leaving
    closes it, even when the block raised. The session UPO can be fetched after.
    """

    def __init__(self, client: AsyncKsefClient, form_code: FormCode) -> None:
        if not isinstance(form_code, FormCode):
            raise TypeError("form_code must be a FormCode, such as FormCode.FA3.")

        self._client = client
        self.form_code = form_code
        self._key = SecretBytes(crypto.random_aes_key())
        self._iv = crypto.random_iv()
        self._nip: str | None = None
        self._reference: str | None = None
        self.valid_until: datetime | None = None
        self.closed = False
        # Reference numbers handed out by this session, never adopted twice.
        self._claimed: set[str] = set()
        self._claim_lock = threading.Lock()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open" if self._reference else "new"
        return (
            f"{type(self).__name__}({self.form_code.system_code!r}, "
            f"{self._reference!r}, {state})"
        )

    @property
    def reference_number(self) -> str:
        """The session's reference number; the session must be open."""
        if self._reference is None:
            raise RuntimeError("The online session has not been opened yet.")
        return self._reference

    @property
    def nip(self) -> str:
        """The NIP the session was opened for."""
        if self._nip is None:
            raise RuntimeError("The online session has not been opened yet.")
        return self._nip

    async def __aenter__(self) -> AsyncOnlineSession:
        if self._reference is None:
            await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.closed or self._reference is None:
            return
        if exc is None:
            await self.close()
            return

        # The block failed: still close, but never hide the original error.
        try:
            await self.close()
        except Exception as close_error:
            _log.warning(
                "Closing online session %s after an error failed too: %s",
                self._reference,
                type(close_error).__name__,
            )

    async def open(self) -> AsyncOnlineSession:
        """Open the session for the current NIP (once); return it."""
        if self._reference is not None:
            raise RuntimeError("The online session is already open.")
        self._nip = current_nip()

        opened = await async_send_with_session_key(
            self._client.encryption,
            self._key,
            self._iv,
            lambda encryption: self._client.api.open_online_session(
                OpenOnlineSessionRequest(
                    form_code=self.form_code.to_model(), encryption=encryption
                )
            ),
        )

        self._reference = opened.reference_number
        self.valid_until = opened.valid_until
        _log.info(
            "Online session %s opened (%s)",
            opened.reference_number,
            self.form_code.system_code,
        )
        return self

    async def send(
        self,
        invoice: bytes | str,
        *,
        offline_mode: bool = False,
        hash_of_corrected_invoice: str | None = None,
    ) -> AsyncInvoiceHandle:
        """Encrypt and send one invoice XML; return a handle to follow it.

        ``offline_mode`` declares an invoice issued offline. A technical correction
        of a rejected offline invoice is sent with ``offline_mode=True`` and the
        SHA-256 (Base64) of the rejected invoice in ``hash_of_corrected_invoice``
        (offline/korekta-techniczna.md).
        """
        if self.closed:
            raise RuntimeError("The online session is closed.")
        content = invoice.encode("utf-8") if isinstance(invoice, str) else invoice
        if not isinstance(content, bytes) or not content:
            raise ValueError("invoice must be non-empty XML as bytes or str.")
        if hash_of_corrected_invoice is not None:
            check_technical_correction(
                hash_of_corrected_invoice, offline_mode=offline_mode
            )

        encrypted = crypto.aes_encrypt(content, self._key.reveal(), self._iv)
        invoice_hash = crypto.sha256_b64(content)
        body = SendInvoiceRequest(
            invoice_hash=invoice_hash,
            invoice_size=len(content),
            encrypted_invoice_hash=crypto.sha256_b64(encrypted),
            encrypted_invoice_size=len(encrypted),
            encrypted_invoice_content=crypto.b64(encrypted),
            offline_mode=offline_mode,
        )
        if hash_of_corrected_invoice is not None:
            body.hash_of_corrected_invoice = hash_of_corrected_invoice

        with nip_context(self.nip):
            reference, sends = await self._send_reconciled(body)

        _log.debug("Invoice %s sent in session %s", reference, self._reference)
        return AsyncInvoiceHandle(self, reference, invoice_hash, resent=sends > 1)

    async def _send_reconciled(self, body: SendInvoiceRequest) -> tuple[str, int]:
        """Send ``body``; after a failure KSeF may have acted on, look it up first.

        Returns the invoice's reference number, from KSeF's answer or, when the
        answer was lost, from the session's list of invoices (ksef_facade.reconcile),
        and how many times it was sent.
        """
        policy = self._client.reconcile_policy
        sends = 0
        while True:
            sends += 1
            try:
                sent = await self._client.api.send_online_invoice(
                    self.reference_number, body
                )
            except KsefError as error:
                if policy is None or not reconcile.may_have_arrived(error):
                    raise
                step = await self._reconcile(body.invoice_hash, sends, policy, error)
                if step.action is reconcile.Action.ADOPT:
                    return step.reference, sends
                if step.action is reconcile.Action.GIVE_UP:
                    raise
                continue

            with self._claim_lock:
                self._claimed.add(sent.reference_number)
            return sent.reference_number, sends

    async def _reconcile(
        self,
        invoice_hash: str,
        sends: int,
        policy: reconcile.ReconcilePolicy,
        error: KsefError,
    ) -> reconcile.Reconciled:
        """Look a failed send up by hash until found or the lookups run out."""
        _log.info(
            "Invoice send %d in session %s failed (%s); looking it up by its hash",
            sends,
            self._reference,
            type(error).__name__,
        )
        wait = policy.lookup_delays[0]
        lookups = 0
        while True:
            await self._pause(wait)
            lookups += 1
            try:
                found = await self._find_sent(invoice_hash)
            except KsefError as lookup_error:
                # Neither adopt nor resend what cannot be looked up: the caller
                # gets the send's own error and the invoice's fate stays open.
                _log.warning(
                    "Invoice send %d in session %s could not be looked up (%s)",
                    sends,
                    self._reference,
                    type(lookup_error).__name__,
                )
                self._client.stats.note_reconciliation(adopted=False, resent=False)
                return reconcile.Reconciled(reconcile.Action.GIVE_UP, "")

            step = reconcile.next_step(
                found, lookups=lookups, sends=sends, policy=policy
            )
            if step.action is not reconcile.Action.LOOK_AGAIN:
                break
            wait = step.wait

        adopted = found is not None
        resent = step.action is reconcile.Action.RESEND
        self._client.stats.note_reconciliation(adopted=adopted, resent=resent)
        log = _log.info if adopted else _log.warning
        log(
            "Invoice send %d in session %s reconciled: %s",
            sends,
            self._reference,
            step.reason,
        )
        return reconcile.Reconciled(
            step.action, found.reference_number if found else ""
        )

    async def _find_sent(self, invoice_hash: str) -> InvoiceStatus | None:
        """List the session's invoices; claim and return the one with the hash."""
        listed = [
            invoice
            async for invoice in self._client.session_invoices(
                self.reference_number, page_size=SESSION_INVOICES_MAX_PAGE
            )
        ]
        with self._claim_lock:
            found = reconcile.find_sent_invoice(listed, invoice_hash, self._claimed)
            if found is not None:
                self._claimed.add(found.reference_number)
        return found

    async def original_of_resend(
        self, status: InvoiceStatus, invoice_hash: str
    ) -> str | None:
        """Return the KSeF number of a resent invoice's first copy, if KSeF kept it.

        A resend whose first copy had arrived after all is rejected as a duplicate
        of it; the first copy, listed in this session with the same hash, is then
        the invoice's real outcome.
        """
        original = reconcile.original_of_duplicate(status, self.reference_number)
        if original is None:
            return None

        with nip_context(self.nip):
            async for listed in self._client.session_invoices(
                self.reference_number, page_size=SESSION_INVOICES_MAX_PAGE
            ):
                if (
                    listed.ksef_number == original
                    and listed.invoice_hash == invoice_hash
                ):
                    _log.info(
                        "Resent invoice %s in session %s was a duplicate of its first "
                        "copy, accepted as %s",
                        status.reference_number,
                        self._reference,
                        original,
                    )
                    return original
        return None

    async def _pause(self, seconds: float) -> None:
        """Sleep between lookups, unless waits are switched off (tests)."""
        policy = self._client.api.retry_policy or DEFAULT_POLICY
        if seconds > 0 and waits_enabled(policy):
            await async_sleep(seconds)

    async def close(self) -> None:
        """Close the session; KSeF then prepares the session UPO."""
        if self.closed:
            return

        with nip_context(self.nip):
            await self._client.api.close_online_session(self.reference_number)
        self.closed = True
        _log.info("Online session %s closed", self._reference)

    async def status(self) -> SessionStatus:
        """Return the session's current status."""
        with nip_context(self.nip):
            return await self._client.session_status(self.reference_number)

    async def invoice_status(self, invoice_reference_number: str) -> InvoiceStatus:
        """Return the status of one invoice of this session."""
        with nip_context(self.nip):
            return await self._client.invoice_status(
                self.reference_number, invoice_reference_number
            )

    async def wait_for_invoice(
        self,
        invoice_reference_number: str,
        *,
        interval: timedelta | None = None,
        max_wait: timedelta | None = None,
    ) -> InvoiceStatus:
        """Wait until one invoice of this session reaches a final status."""
        with nip_context(self.nip):
            return await self._client.wait_for_invoice(
                self.reference_number,
                invoice_reference_number,
                interval=interval,
                max_wait=max_wait,
            )

    async def wait_until_processed(
        self, *, interval: timedelta | None = None, max_wait: timedelta | None = None
    ) -> SessionStatus:
        """Wait until the closed session is processed (UPO ready) or failed."""
        with nip_context(self.nip):
            return await self._client.wait_for_session(
                self.reference_number, interval=interval, max_wait=max_wait
            )

    async def invoice_upo(self, invoice_reference_number: str) -> bytes:
        """Download the UPO of one accepted invoice of this session."""
        with nip_context(self.nip):
            return await self._client.session_invoice_upo(
                self.reference_number, invoice_reference_number
            )

    async def upo(
        self, *, interval: timedelta | None = None, max_wait: timedelta | None = None
    ) -> dict[str, bytes]:
        """Wait for the closed session's UPO; return its pages by reference number."""
        if not self.closed:
            raise RuntimeError(
                "The session UPO exists only once the session is closed."
            )

        status = await self.wait_until_processed(interval=interval, max_wait=max_wait)

        pages: dict[str, bytes] = {}
        with nip_context(self.nip):
            for upo_reference in status.upo_reference_numbers:
                pages[upo_reference] = await self._client.session_upo(
                    self.reference_number, upo_reference
                )
        return pages
