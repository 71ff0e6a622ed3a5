"""Glue to the generated client: one httpx client stack, typed calls, mapped errors.

Every operation goes through the generated ``asyncio_detailed`` function, so the
facade builds no URLs of its own. Non-2xx answers become :mod:`ksef_facade.errors`
exceptions; a body the generated parser cannot read (such as a Problem Details 429,
which the spec types as the legacy body) is still mapped from the raw response.

Two generated clients share one transport: ``public`` sends no token unless a call
names one (challenge, keys, and the auth steps that use the authentication or
refresh token), ``secured`` takes the access token from the TokenProvider.
"""

from __future__ import annotations

import logging
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
)
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx

from ksef_api.api.auth import (
    authenticate_with_ksef_token,
    create_auth_challenge,
    get_auth_status,
    redeem_auth_token,
    refresh_access_token,
)
from ksef_api.api.auth_sessions import (
    list_auth_sessions,
    revoke_auth_session,
    revoke_current_auth_session,
)
from ksef_api.api.batch_sessions import close_batch_session, open_batch_session
from ksef_api.api.invoices import get_invoice
from ksef_api.api.limits import get_rate_limits
from ksef_api.api.online_sessions import (
    close_online_session,
    open_online_session,
    send_online_invoice,
)
from ksef_api.api.security import get_public_key_certificates
from ksef_api.api.session_status import (
    get_session_invoice_status,
    get_session_invoice_upo,
    get_session_invoice_upo_by_ksef_number,
    get_session_status,
    get_session_upo,
    list_failed_session_invoices,
    list_session_invoices,
)
from ksef_api.client import AuthenticatedClient
from ksef_api.models import (
    AuthenticationChallengeResponse,
    AuthenticationInitResponse,
    AuthenticationListResponse,
    AuthenticationOperationStatusResponse,
    AuthenticationTokenRefreshResponse,
    AuthenticationTokensResponse,
    EffectiveApiRateLimits,
    InitTokenAuthenticationRequest,
    OpenBatchSessionRequest,
    OpenBatchSessionResponse,
    OpenOnlineSessionRequest,
    OpenOnlineSessionResponse,
    SendInvoiceRequest,
    SendInvoiceResponse,
    SessionInvoicesResponse,
    SessionInvoiceStatusResponse,
    SessionStatusResponse,
)
from ksef_api.types import Response
from ksef_facade._async.bearer import AsyncBearerAuth
from ksef_facade._async.tokens import AsyncTokenProvider
from ksef_facade._async.transport import AsyncRetryTransport
from ksef_facade._call_context import (
    ExplicitBearerAuth,
    bearer,
    mapped_errors,
    record_response,
)
from ksef_facade._paging import (
    AUTH_SESSIONS_PAGE,
    SESSION_INVOICES_PAGE,
    check_page_size,
)
from ksef_facade._redact import install_httpx_url_filter
from ksef_facade._responses import (
    checked,
    download,
    next_token,
    optional,
    parsed,
    published_certificate,
)
from ksef_facade.attempts import RetryStats
from ksef_facade.downloads import Download
from ksef_facade.environments import Environment
from ksef_facade.errors import (
    ERROR_FORMAT_HEADERS,
    KsefApiError,
    error_from_response,
)
from ksef_facade.keys import PublishedCertificate
from ksef_facade.rate_limits import RateLimit, limits_from_response
from ksef_facade.retry import DEFAULT_POLICY, RetryPolicy
from ksef_facade.secrets import Secret
from ksef_facade.system_warnings import SystemWarning
from ksef_facade.throttle import Throttle

__all__ = [
    "DEFAULT_TIMEOUT",
    "SESSION_INVOICES_MAX_PAGE",
    "AsyncKsefApi",
    "Download",
    "async_pages",
]

_log = logging.getLogger("ksef_facade.api")

DEFAULT_TIMEOUT = 30.0

SESSION_INVOICES_MAX_PAGE = SESSION_INVOICES_PAGE.maximum

# With retries switched off the retrying transport still throttles, counts and
# reports warnings; one attempt means it never resends.
_SEND_ONCE = RetryPolicy(max_attempts=1)

P = TypeVar("P")
P_co = TypeVar("P_co", covariant=True)
_Sent = Response[Any]


class _SharedTransport(httpx.AsyncBaseTransport):
    """Another client's transport, borrowed: closing it is the owner's job."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send through the shared transport."""
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Leave the shared transport open."""


async def _record_response(response: httpx.Response) -> None:
    record_response(response)


class AsyncKsefApi:
    """The generated KSeF client behind one httpx stack, with errors mapped.

    ``transport`` is the innermost httpx transport (default: a real HTTP one); it
    is wrapped in the retrying transport (:mod:`ksef_facade.transport`), which
    resends under ``retry_policy`` (None: every request is sent once), waits for
    ``throttle`` and reports ``X-System-Warning`` headers to ``on_warning``.
    Closing this object closes the transport.
    """

    def __init__(
        self,
        environment: Environment,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_policy: RetryPolicy | None = DEFAULT_POLICY,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        throttle: Throttle | None = None,
        on_warning: Callable[[SystemWarning], None] | None = None,
    ) -> None:
        if not isinstance(environment, Environment):
            raise TypeError("environment must be an Environment (TEST, DEMO, ...).")

        # Pre-signed part URLs would otherwise reach httpx's own INFO log lines.
        install_httpx_url_filter(environment.api_base_url)

        self.environment = environment
        self.retry_policy = retry_policy
        self.stats = RetryStats()
        inner = transport if transport is not None else httpx.AsyncHTTPTransport()
        base_path = urlsplit(environment.api_base_url).path or "/"
        inner = AsyncRetryTransport(
            inner,
            policy=retry_policy if retry_policy is not None else _SEND_ONCE,
            throttle=throttle,
            on_warning=on_warning,
            api_base_path=base_path,
            stats=self.stats,
        )
        self._transport = inner
        self._timeout = timeout
        self._http: list[httpx.AsyncClient] = []
        self._public = self._generated(inner, ExplicitBearerAuth())
        self._secured: AuthenticatedClient | None = None
        # Pre-signed part URLs carry their own key: no auth, no base URL.
        self._uploads = httpx.AsyncClient(
            transport=_SharedTransport(inner), timeout=timeout
        )
        self._http.append(self._uploads)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.environment.name!r})"

    def use_token_provider(self, provider: AsyncTokenProvider) -> None:
        """Authorise secured operations with ``provider``'s access tokens."""
        shared = _SharedTransport(self._transport)
        self._secured = self._generated(shared, AsyncBearerAuth(provider))

    async def aclose(self) -> None:
        """Close the httpx clients and the transport."""
        for http in reversed(self._http):
            await http.aclose()

    def _generated(
        self, transport: httpx.AsyncBaseTransport, auth: httpx.Auth
    ) -> AuthenticatedClient:
        """Build a generated client whose httpx client we made (no token inside)."""
        base_url = self.environment.api_base_url
        # The generated class prints its token in repr: it stays empty, and the
        # httpx auth sets the real header per request.
        client = AuthenticatedClient(base_url=base_url, token="")
        http = httpx.AsyncClient(
            base_url=base_url,
            auth=auth,
            transport=transport,
            headers=dict(ERROR_FORMAT_HEADERS),
            timeout=self._timeout,
            event_hooks={"response": [_record_response]},
        )
        client.set_async_httpx_client(http)
        self._http.append(http)
        return client

    def _secured_client(self) -> AuthenticatedClient:
        if self._secured is None:
            raise RuntimeError(
                "This operation needs an access token; build the client with a "
                "KSeF token or a TokenProvider."
            )
        return self._secured

    async def _call(
        self, operation: str, send: Callable[[], Awaitable[_Sent]]
    ) -> _Sent:
        started = time.monotonic()
        with mapped_errors(operation):
            response = await send()

        _log.debug(
            "%s -> HTTP %d in %.3f s",
            operation,
            response.status_code,
            time.monotonic() - started,
        )
        return response

    # -- auth ---------------------------------------------------------------------

    async def create_auth_challenge(self) -> AuthenticationChallengeResponse:
        """``POST /auth/challenge``."""
        op = "POST /auth/challenge"
        response = await self._call(
            op, lambda: create_auth_challenge.asyncio_detailed(client=self._public)
        )
        return parsed(op, response, AuthenticationChallengeResponse)

    async def authenticate_with_ksef_token(
        self, body: InitTokenAuthenticationRequest
    ) -> AuthenticationInitResponse:
        """``POST /auth/ksef-token``."""
        op = "POST /auth/ksef-token"
        response = await self._call(
            op,
            lambda: authenticate_with_ksef_token.asyncio_detailed(
                client=self._public, body=body
            ),
        )
        return parsed(op, response, AuthenticationInitResponse)

    async def get_auth_status(
        self, reference_number: str, authentication_token: Secret
    ) -> AuthenticationOperationStatusResponse:
        """``GET /auth/{referenceNumber}`` with the authentication token."""
        op = "GET /auth/{referenceNumber}"
        with bearer(authentication_token):
            response = await self._call(
                op,
                lambda: get_auth_status.asyncio_detailed(
                    reference_number, client=self._public
                ),
            )
        return parsed(op, response, AuthenticationOperationStatusResponse)

    async def redeem_auth_token(
        self, authentication_token: Secret
    ) -> AuthenticationTokensResponse:
        """``POST /auth/token/redeem`` with the authentication token."""
        op = "POST /auth/token/redeem"
        with bearer(authentication_token):
            response = await self._call(
                op, lambda: redeem_auth_token.asyncio_detailed(client=self._public)
            )
        return parsed(op, response, AuthenticationTokensResponse)

    async def refresh_access_token(
        self, refresh_token: Secret
    ) -> AuthenticationTokenRefreshResponse:
        """``POST /auth/token/refresh`` with the refresh token."""
        op = "POST /auth/token/refresh"
        with bearer(refresh_token):
            response = await self._call(
                op, lambda: refresh_access_token.asyncio_detailed(client=self._public)
            )
        return parsed(op, response, AuthenticationTokenRefreshResponse)

    def _session_client(self, access_token: Secret | None) -> AuthenticatedClient:
        return self._public if access_token is not None else self._secured_client()

    async def list_auth_sessions(
        self,
        continuation_token: str | None,
        *,
        page_size: int | None = None,
        access_token: Secret | None = None,
    ) -> tuple[AuthenticationListResponse, str | None]:
        """``GET /auth/sessions``: one page and the next continuation token."""
        check_page_size(page_size, AUTH_SESSIONS_PAGE)
        op = "GET /auth/sessions"
        client = self._session_client(access_token)
        with bearer(access_token):
            response = await self._call(
                op,
                lambda: list_auth_sessions.asyncio_detailed(
                    client=client,
                    page_size=optional(page_size),
                    x_continuation_token=optional(continuation_token),
                ),
            )
        page = parsed(op, response, AuthenticationListResponse)
        return page, next_token(page.continuation_token, response)

    async def revoke_auth_session(
        self, reference_number: str, *, access_token: Secret | None = None
    ) -> None:
        """``DELETE /auth/sessions/{referenceNumber}``."""
        op = "DELETE /auth/sessions/{referenceNumber}"
        client = self._session_client(access_token)
        with bearer(access_token):
            response = await self._call(
                op,
                lambda: revoke_auth_session.asyncio_detailed(
                    reference_number, client=client
                ),
            )
        checked(response)

    async def revoke_current_auth_session(
        self, *, access_token: Secret | None = None
    ) -> None:
        """``DELETE /auth/sessions/current``."""
        op = "DELETE /auth/sessions/current"
        client = self._session_client(access_token)
        with bearer(access_token):
            response = await self._call(
                op, lambda: revoke_current_auth_session.asyncio_detailed(client=client)
            )
        checked(response)

    # -- security -----------------------------------------------------------------

    async def get_public_key_certificates(self) -> list[PublishedCertificate]:
        """``GET /security/public-key-certificates``."""
        op = "GET /security/public-key-certificates"
        response = await self._call(
            op,
            lambda: get_public_key_certificates.asyncio_detailed(client=self._public),
        )
        entries = parsed(op, response, list)
        return [published_certificate(entry) for entry in entries]

    # -- online sessions ------------------------------------------------------------

    async def open_online_session(
        self, body: OpenOnlineSessionRequest
    ) -> OpenOnlineSessionResponse:
        """``POST /sessions/online``."""
        op = "POST /sessions/online"
        client = self._secured_client()
        response = await self._call(
            op, lambda: open_online_session.asyncio_detailed(client=client, body=body)
        )
        return parsed(op, response, OpenOnlineSessionResponse)

    async def send_online_invoice(
        self, reference_number: str, body: SendInvoiceRequest
    ) -> SendInvoiceResponse:
        """``POST /sessions/online/{referenceNumber}/invoices``."""
        op = "POST /sessions/online/{referenceNumber}/invoices"
        client = self._secured_client()
        response = await self._call(
            op,
            lambda: send_online_invoice.asyncio_detailed(
                reference_number, client=client, body=body
            ),
        )
        return parsed(op, response, SendInvoiceResponse)

    async def close_online_session(self, reference_number: str) -> None:
        """``POST /sessions/online/{referenceNumber}/close``."""
        op = "POST /sessions/online/{referenceNumber}/close"
        client = self._secured_client()
        response = await self._call(
            op,
            lambda: close_online_session.asyncio_detailed(
                reference_number, client=client
            ),
        )
        checked(response)

    # -- batch sessions ---------------------------------------------------------------

    async def open_batch_session(
        self, body: OpenBatchSessionRequest
    ) -> OpenBatchSessionResponse:
        """``POST /sessions/batch``."""
        op = "POST /sessions/batch"
        client = self._secured_client()
        response = await self._call(
            op, lambda: open_batch_session.asyncio_detailed(client=client, body=body)
        )
        return parsed(op, response, OpenBatchSessionResponse)

    async def close_batch_session(self, reference_number: str) -> None:
        """``POST /sessions/batch/{referenceNumber}/close``."""
        op = "POST /sessions/batch/{referenceNumber}/close"
        client = self._secured_client()
        response = await self._call(
            op,
            lambda: close_batch_session.asyncio_detailed(
                reference_number, client=client
            ),
        )
        checked(response)

    async def upload_batch_part(
        self, method: str, url: Secret, headers: Mapping[str, str], content: bytes
    ) -> None:
        """Send one encrypted part to its pre-signed URL, with no bearer token.

        sesja-wsadowa.md, section 5: the method and headers of ``partUploadRequests``,
        the raw bytes as body, never the access token. The URL holds its own key,
        so it appears in no log line or message.
        """
        op = "a batch part upload"
        started = time.monotonic()
        with mapped_errors(op):
            response = await self._uploads.request(
                method, url.reveal(), headers=dict(headers), content=content
            )

        _log.debug(
            "%s <pre-signed part URL> -> HTTP %d in %.3f s",
            method,
            response.status_code,
            time.monotonic() - started,
        )
        if not response.is_success:
            raise error_from_response(
                response.status_code, response.headers, response.content
            )

    # -- session status and UPO -------------------------------------------------------

    async def get_session_status(self, reference_number: str) -> SessionStatusResponse:
        """``GET /sessions/{referenceNumber}``."""
        op = "GET /sessions/{referenceNumber}"
        client = self._secured_client()
        response = await self._call(
            op,
            lambda: get_session_status.asyncio_detailed(
                reference_number, client=client
            ),
        )
        return parsed(op, response, SessionStatusResponse)

    async def list_session_invoices(
        self,
        reference_number: str,
        continuation_token: str | None,
        *,
        failed_only: bool = False,
        page_size: int | None = None,
    ) -> tuple[SessionInvoicesResponse, str | None]:
        """``GET /sessions/{referenceNumber}/invoices[/failed]``: one page."""
        check_page_size(page_size, SESSION_INVOICES_PAGE)
        module = list_failed_session_invoices if failed_only else list_session_invoices
        op = "GET /sessions/{referenceNumber}/invoices" + (
            "/failed" if failed_only else ""
        )
        client = self._secured_client()
        response = await self._call(
            op,
            lambda: module.asyncio_detailed(
                reference_number,
                client=client,
                page_size=optional(page_size),
                x_continuation_token=optional(continuation_token),
            ),
        )
        page = parsed(op, response, SessionInvoicesResponse)
        return page, next_token(page.continuation_token, response)

    async def get_session_invoice_status(
        self, reference_number: str, invoice_reference_number: str
    ) -> SessionInvoiceStatusResponse:
        """``GET /sessions/{referenceNumber}/invoices/{invoiceReferenceNumber}``."""
        op = "GET /sessions/{referenceNumber}/invoices/{invoiceReferenceNumber}"
        client = self._secured_client()
        response = await self._call(
            op,
            lambda: get_session_invoice_status.asyncio_detailed(
                reference_number, invoice_reference_number, client=client
            ),
        )
        return parsed(op, response, SessionInvoiceStatusResponse)

    async def get_session_invoice_upo(
        self, reference_number: str, invoice_reference_number: str
    ) -> Download:
        """``GET /sessions/{referenceNumber}/invoices/{invoiceReferenceNumber}/upo``."""
        op = "GET /sessions/{referenceNumber}/invoices/{invoiceReferenceNumber}/upo"
        client = self._secured_client()
        response = await self._call(
            op,
            lambda: get_session_invoice_upo.asyncio_detailed(
                reference_number, invoice_reference_number, client=client
            ),
        )
        return download(response)

    async def get_session_invoice_upo_by_ksef_number(
        self, reference_number: str, ksef_number: str
    ) -> Download:
        """``GET /sessions/{referenceNumber}/invoices/ksef/{ksefNumber}/upo``."""
        op = "GET /sessions/{referenceNumber}/invoices/ksef/{ksefNumber}/upo"
        client = self._secured_client()
        response = await self._call(
            op,
            lambda: get_session_invoice_upo_by_ksef_number.asyncio_detailed(
                reference_number, ksef_number, client=client
            ),
        )
        return download(response)

    async def get_session_upo(
        self, reference_number: str, upo_reference_number: str
    ) -> Download:
        """``GET /sessions/{referenceNumber}/upo/{upoReferenceNumber}``."""
        op = "GET /sessions/{referenceNumber}/upo/{upoReferenceNumber}"
        client = self._secured_client()
        response = await self._call(
            op,
            lambda: get_session_upo.asyncio_detailed(
                reference_number, upo_reference_number, client=client
            ),
        )
        return download(response)

    # -- invoices -------------------------------------------------------------------

    async def get_invoice(self, ksef_number: str) -> Download:
        """``GET /invoices/ksef/{ksefNumber}``."""
        op = "GET /invoices/ksef/{ksefNumber}"
        client = self._secured_client()
        response = await self._call(
            op, lambda: get_invoice.asyncio_detailed(ksef_number, client=client)
        )
        return download(response)

    # -- limits ---------------------------------------------------------------------

    async def get_rate_limits(self) -> dict[str, RateLimit]:
        """``GET /rate-limits``: the current context's limits by endpoint group."""
        op = "GET /rate-limits"
        client = self._secured_client()
        response = await self._call(
            op, lambda: get_rate_limits.asyncio_detailed(client=client)
        )
        limits = parsed(op, response, EffectiveApiRateLimits)
        try:
            return limits_from_response(limits.to_dict())
        except ValueError as error:
            raise KsefApiError(
                f"KSeF answered {op} with limits that cannot be read ({error}).",
                status_code=int(response.status_code),
            ) from error


class _PageFetch(Protocol[P_co]):
    """Fetches one page of a listing and the continuation token after it."""

    async def __call__(self, continuation: str | None, /) -> tuple[P_co, str | None]:
        """Return the page after ``continuation`` (None: the first page)."""
        ...


async def async_pages(fetch: _PageFetch[P]) -> AsyncIterator[P]:
    """Yield every page of a listing, passing each continuation token to ``fetch``.

    ``fetch(None)`` gets the first page; the listing ends with a page that carries
    no continuation token.
    """
    continuation: str | None = None
    while True:
        page, continuation = await fetch(continuation)
        yield page
        if not continuation:
            return
