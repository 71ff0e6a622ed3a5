"""The KSeF client: authentication, encryption and online sessions in one object.

The taxpayer is the NIP of the current ``nip_context``; one client serves many NIPs.
Access tokens come from a TokenProvider, built here from a KSeF token (or a function
mapping each NIP to its KSeF token) unless one is passed in.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from functools import partial
from types import TracebackType
from typing import TypeVar

import httpx

from ksef_api.models import AuthenticationListItem
from ksef_facade import statuses
from ksef_facade._async.api import DEFAULT_TIMEOUT, AsyncKsefApi, async_pages
from ksef_facade._async.auth import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_POLL_TIMEOUT,
    AsyncAuthFacade,
)
from ksef_facade._async.batch import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PART_REUPLOADS,
    AsyncBatchSession,
    ProgressCallback,
    StateCallback,
    async_resume_batch,
    async_send_batch,
)
from ksef_facade._async.encryption import AsyncEncryptionService
from ksef_facade._async.online import AsyncOnlineSession
from ksef_facade._async.polling import async_poll
from ksef_facade._async.tokens import AsyncTokenProvider, TokenKind
from ksef_facade._clock import utc_now
from ksef_facade.attempts import RetryStats
from ksef_facade.batch_package import (
    BatchLimits,
    BatchPackage,
    CompressionType,
    InvoiceSource,
)
from ksef_facade.batch_state import BatchResult, BatchUploadState
from ksef_facade.context import current_nip, peek_nip
from ksef_facade.crypto import PublicKeyInfo
from ksef_facade.downloads import verified, verified_upo
from ksef_facade.environments import Environment
from ksef_facade.errors import (
    InvoiceHashMismatchError,
    KsefTimeoutError,
)
from ksef_facade.forms import FormCode
from ksef_facade.keys import DEFAULT_REFRESH_SKEW, KeyUsage
from ksef_facade.rate_limits import RateLimit
from ksef_facade.reconcile import DEFAULT_RECONCILE_POLICY, ReconcilePolicy
from ksef_facade.retry import DEFAULT_POLICY, RetryPolicy
from ksef_facade.secrets import Secret, SecretBytes
from ksef_facade.statuses import InvoiceStatus, SessionStatus
from ksef_facade.system_warnings import SystemWarning
from ksef_facade.throttle import Throttle
from ksef_facade.token_cache import TokenSet

__all__ = ["AsyncKsefClient", "KsefTokenSource"]

_log = logging.getLogger("ksef_facade.client")

KsefTokenSource = Secret | Callable[[str], Secret]
S = TypeVar("S", InvoiceStatus, SessionStatus)
TokenUpdateCallback = Callable[[str, TokenKind, TokenSet], Awaitable[None]]


class AsyncKsefClient:
    """A KSeF 2.0 client for the NIP of the current ``nip_context`` (asyncio).

    Pass ``ksef_token`` (a :class:`Secret`, or a function from NIP to Secret when
    several taxpayers are served) or a ready ``token_provider``. ``transport`` is
    the innermost httpx transport; requests are retried under ``retry_policy``
    (None switches retries off). An invoice send whose fate is unknown is looked
    up before it is sent again, under ``reconcile_policy`` (None: never looked up
    nor resent). ``throttle=True`` (or a :class:`Throttle`) spaces requests to stay
    under the documented rate limits of each NIP. ``on_warning`` receives KSeF's
    ``X-System-Warning`` headers. ``poll_interval`` and ``poll_timeout`` bound
    every wait for a final status; they are not skipped under ``retry.no_waits()``,
    since a poll without a pause would only hammer KSeF.
    """

    def __init__(
        self,
        environment: Environment,
        *,
        ksef_token: KsefTokenSource | None = None,
        token_provider: AsyncTokenProvider | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_policy: RetryPolicy | None = DEFAULT_POLICY,
        reconcile_policy: ReconcilePolicy | None = DEFAULT_RECONCILE_POLICY,
        throttle: Throttle | bool = False,
        on_warning: Callable[[SystemWarning], None] | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        preloaded_keys: Mapping[KeyUsage | str, PublicKeyInfo | str] | None = None,
        key_refresh_skew: timedelta = DEFAULT_REFRESH_SKEW,
        token_refresh_skew: timedelta = timedelta(seconds=60),
        on_token_update: TokenUpdateCallback | None = None,
        poll_interval: timedelta = DEFAULT_POLL_INTERVAL,
        poll_timeout: timedelta = DEFAULT_POLL_TIMEOUT,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if ksef_token is not None and token_provider is not None:
            raise ValueError("Pass either ksef_token or token_provider, not both.")
        if ksef_token is not None and not (
            isinstance(ksef_token, Secret) or callable(ksef_token)
        ):
            raise TypeError("ksef_token must be a Secret or a function NIP -> Secret.")

        if throttle is True:
            throttle = Throttle(context_key=peek_nip)
        elif throttle is not False and not isinstance(throttle, Throttle):
            raise TypeError("throttle must be True, False or a Throttle.")
        self.throttle: Throttle | None = throttle or None
        self.reconcile_policy = reconcile_policy

        self.api = AsyncKsefApi(
            environment,
            transport=transport,
            retry_policy=retry_policy,
            timeout=timeout,
            throttle=self.throttle,
            on_warning=on_warning,
        )
        self.encryption = AsyncEncryptionService(
            self.api.get_public_key_certificates,
            preloaded_keys=preloaded_keys,
            refresh_skew=key_refresh_skew,
            clock=clock,
        )
        self.auth = AsyncAuthFacade(
            self.api,
            self.encryption,
            poll_interval=poll_interval,
            poll_timeout=poll_timeout,
            clock=clock,
        )
        self._ksef_token = ksef_token
        self._interval = poll_interval
        self._timeout = poll_timeout
        self._clock = clock

        if token_provider is None and ksef_token is not None:
            token_provider = AsyncTokenProvider(
                self._authenticate,
                self._refresh,
                refresh_skew=token_refresh_skew,
                on_token_update=on_token_update,
            )
        self.tokens = token_provider
        if token_provider is not None:
            self.api.use_token_provider(token_provider)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.api.environment.name!r})"

    async def __aenter__(self) -> AsyncKsefClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self.api.aclose()

    @property
    def stats(self) -> RetryStats:
        """Counters of attempts, retries, 429s, waits and reconciled sends so far."""
        return self.api.stats

    async def refresh_rate_limits(self) -> dict[str, RateLimit]:
        """Read the current NIP's limits (``GET /rate-limits``) into the throttle.

        Returns the limits by endpoint group; without a throttle they are only read.
        """
        limits = await self.api.get_rate_limits()
        if self.throttle is not None:
            self.throttle.update_limits(limits)
        return limits

    # -- tokens -----------------------------------------------------------------------

    def _ksef_token_for(self, nip: str) -> Secret:
        source = self._ksef_token
        token = source if isinstance(source, Secret) or source is None else source(nip)
        if not isinstance(token, Secret):
            raise TypeError(f"The KSeF token source gave no Secret for NIP {nip}.")
        return token

    async def _authenticate(self) -> TokenSet:
        """Authenticate the current NIP with its KSeF token (for the provider)."""
        return await self.auth.authenticate_with_ksef_token(
            self._ksef_token_for(current_nip())
        )

    async def _refresh(self, refresh_token: Secret) -> TokenSet:
        """Trade the refresh token for a new access token (for the provider)."""
        cached = self.tokens.cached_tokens() if self.tokens is not None else None
        access = await self.auth.refresh_access_token(refresh_token)
        # The refresh endpoint returns only an access token; the refresh token and
        # its expiry stay as they were (uwierzytelnianie.md, section 5).
        refresh_until = (
            cached.refresh_valid_until if cached is not None else access.valid_until
        )
        return TokenSet(
            access_token=access.token,
            access_valid_until=access.valid_until,
            refresh_token=refresh_token,
            refresh_valid_until=refresh_until,
        )

    async def access_token(self) -> Secret:
        """Return a valid access token for the current NIP."""
        if self.tokens is None:
            raise RuntimeError("This client has no KSeF token or TokenProvider.")
        return await self.tokens.access_token()

    # -- online sessions --------------------------------------------------------------

    def online_session(self, form_code: FormCode) -> AsyncOnlineSession:
        """Return an online session to use in ``async with``; it opens on entry."""
        return AsyncOnlineSession(self, form_code)

    async def open_online_session(self, form_code: FormCode) -> AsyncOnlineSession:
        """Open an online session now for the current NIP; close it when done."""
        return await AsyncOnlineSession(self, form_code).open()

    # -- batch sessions ---------------------------------------------------------------

    async def send_batch(
        self,
        invoices: Iterable[InvoiceSource],
        form_code: FormCode,
        *,
        compression_type: CompressionType = CompressionType.ZIP,
        part_size: int | None = None,
        limits: BatchLimits | None = None,
        check_xml: bool = True,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_part_reuploads: int = DEFAULT_PART_REUPLOADS,
        on_progress: ProgressCallback | None = None,
        on_state: StateCallback | None = None,
        parts_dir: str | os.PathLike[str] | None = None,
        temp_dir: str | os.PathLike[str] | None = None,
        memory_threshold: int | None = None,
        offline_mode: bool = False,
        interval: timedelta | None = None,
        max_wait: timedelta | None = None,
    ) -> BatchResult:
        """Send invoices in one batch session for the current NIP; return outcomes.

        Builds the encrypted package (limits are checked before anything is sent),
        opens the session, uploads the parts ``concurrency`` at a time, closes it,
        waits for processing and returns an outcome per invoice and the session UPO.
        Parts over ``memory_threshold`` bytes are spooled to temporary files under
        ``temp_dir``. ``on_progress`` gets the parts and bytes done. To survive a
        crash, pass ``parts_dir`` (the parts stay there until the session is
        closed) and save every state ``on_state`` gets; hand the last one to
        :meth:`resume_batch`.
        """
        return await async_send_batch(
            self,
            invoices,
            form_code,
            compression_type=compression_type,
            part_size=part_size,
            limits=limits,
            check_xml=check_xml,
            concurrency=concurrency,
            max_part_reuploads=max_part_reuploads,
            on_progress=on_progress,
            on_state=on_state,
            parts_dir=parts_dir,
            temp_dir=temp_dir,
            memory_threshold=memory_threshold,
            offline_mode=offline_mode,
            interval=interval,
            max_wait=max_wait,
        )

    async def resume_batch(
        self,
        state: BatchUploadState,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_part_reuploads: int = DEFAULT_PART_REUPLOADS,
        on_progress: ProgressCallback | None = None,
        on_state: StateCallback | None = None,
        interval: timedelta | None = None,
        max_wait: timedelta | None = None,
    ) -> BatchResult:
        """Finish a batch upload from a saved state (the NIP comes from the state)."""
        return await async_resume_batch(
            self,
            state,
            concurrency=concurrency,
            max_part_reuploads=max_part_reuploads,
            on_progress=on_progress,
            on_state=on_state,
            interval=interval,
            max_wait=max_wait,
        )

    async def open_batch_session(
        self,
        package: BatchPackage,
        form_code: FormCode,
        *,
        key: SecretBytes,
        iv: bytes,
        offline_mode: bool = False,
    ) -> AsyncBatchSession:
        """Open a batch session declaring a package built with ``key`` and ``iv``."""
        return await AsyncBatchSession.open(
            self, package, form_code, key=key, iv=iv, offline_mode=offline_mode
        )

    # -- session status ---------------------------------------------------------------

    async def session_status(self, session_reference_number: str) -> SessionStatus:
        """Return a session's status, counts and UPO page references."""
        response = await self.api.get_session_status(session_reference_number)
        return statuses.session_status_from_model(session_reference_number, response)

    def session_invoices(
        self, session_reference_number: str, *, page_size: int | None = None
    ) -> AsyncIterator[InvoiceStatus]:
        """Iterate over every invoice of a session, page after page."""
        return self._invoices(
            session_reference_number, failed_only=False, page_size=page_size
        )

    def failed_session_invoices(
        self, session_reference_number: str, *, page_size: int | None = None
    ) -> AsyncIterator[InvoiceStatus]:
        """Iterate over the rejected invoices of a session, page after page."""
        return self._invoices(
            session_reference_number, failed_only=True, page_size=page_size
        )

    async def _invoices(
        self, reference: str, *, failed_only: bool, page_size: int | None
    ) -> AsyncIterator[InvoiceStatus]:
        fetch = partial(
            self.api.list_session_invoices,
            reference,
            failed_only=failed_only,
            page_size=page_size,
        )
        async for page in async_pages(fetch):
            for invoice in page.invoices:
                yield statuses.invoice_status_from_model(invoice)

    async def invoice_status(
        self, session_reference_number: str, invoice_reference_number: str
    ) -> InvoiceStatus:
        """Return the status of one invoice of a session."""
        response = await self.api.get_session_invoice_status(
            session_reference_number, invoice_reference_number
        )
        return statuses.invoice_status_from_model(response)

    async def wait_for_invoice(
        self,
        session_reference_number: str,
        invoice_reference_number: str,
        *,
        interval: timedelta | None = None,
        max_wait: timedelta | None = None,
    ) -> InvoiceStatus:
        """Poll an invoice until it is accepted or rejected; return that status."""
        return await self._poll(
            lambda: self.invoice_status(
                session_reference_number, invoice_reference_number
            ),
            invoice_reference_number,
            interval,
            max_wait,
        )

    async def wait_for_session(
        self,
        session_reference_number: str,
        *,
        interval: timedelta | None = None,
        max_wait: timedelta | None = None,
    ) -> SessionStatus:
        """Poll a session until it is processed with a UPO, or failed."""
        return await self._poll(
            lambda: self.session_status(session_reference_number),
            session_reference_number,
            interval,
            max_wait,
        )

    async def _poll(
        self,
        fetch: Callable[[], Awaitable[S]],
        reference: str,
        interval: timedelta | None,
        max_wait: timedelta | None,
    ) -> S:
        """Poll a status until its outcome is final; raise KsefTimeoutError after."""
        limit = max_wait or self._timeout

        def timed_out(status: S) -> KsefTimeoutError:
            return KsefTimeoutError(
                f"{reference} reached no final status within "
                f"{limit.total_seconds():g} s.",
                reference_number=reference,
            )

        return await async_poll(
            fetch,
            lambda status: status.outcome.is_final,
            clock=self._clock,
            interval=interval or self._interval,
            max_wait=limit,
            timed_out=timed_out,
        )

    # -- UPO and invoices --------------------------------------------------------------

    async def session_invoice_upo(
        self, session_reference_number: str, invoice_reference_number: str
    ) -> bytes:
        """Download an invoice's UPO by its reference number, hash verified."""
        download = await self.api.get_session_invoice_upo(
            session_reference_number, invoice_reference_number
        )
        return verified_upo(download, invoice_reference_number)

    async def session_invoice_upo_by_ksef_number(
        self, session_reference_number: str, ksef_number: str
    ) -> bytes:
        """Download an invoice's UPO by its KSeF number, hash verified."""
        download = await self.api.get_session_invoice_upo_by_ksef_number(
            session_reference_number, ksef_number
        )
        return verified_upo(download, ksef_number)

    async def session_upo(
        self, session_reference_number: str, upo_reference_number: str
    ) -> bytes:
        """Download one page of a session UPO, hash verified."""
        download = await self.api.get_session_upo(
            session_reference_number, upo_reference_number
        )
        return verified_upo(download, upo_reference_number)

    async def download_invoice(self, ksef_number: str) -> bytes:
        """Download an invoice's XML by its KSeF number, hash verified."""
        download = await self.api.get_invoice(ksef_number)
        return verified(download, ksef_number, InvoiceHashMismatchError)

    # -- auth sessions -----------------------------------------------------------------

    def auth_sessions(
        self, *, page_size: int | None = None
    ) -> AsyncIterator[AuthenticationListItem]:
        """Iterate over the current NIP's active authentication sessions."""
        return self.auth.list_sessions(page_size=page_size)

    async def revoke_auth_session(self, reference_number: str) -> None:
        """Revoke one authentication session of the current NIP."""
        await self.auth.revoke_session(reference_number)

    async def revoke_current_auth_session(self) -> None:
        """Revoke the authentication session behind the current access token."""
        await self.auth.revoke_current_session()
