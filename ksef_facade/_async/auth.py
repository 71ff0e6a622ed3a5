"""Authentication with a KSeF token: challenge, submit, poll, redeem, refresh.

uwierzytelnianie.md: ``POST /auth/challenge`` gives a challenge and its timestamp;
``POST /auth/ksef-token`` takes the token encrypted as ``token|timestampMs`` with the
context (here the NIP from :func:`ksef_facade.context.current_nip`) and answers with
an authentication token and a reference number; ``GET /auth/{referenceNumber}`` is
polled until the status is final; ``POST /auth/token/redeem`` returns the access and
refresh tokens once; ``POST /auth/token/refresh`` trades the refresh token for a new
access token. Active authentications are listed and revoked under auth/sesje.md.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from functools import partial

from ksef_api.models import (
    AuthenticationChallengeResponse,
    AuthenticationContextIdentifier,
    AuthenticationContextIdentifierType,
    AuthenticationListItem,
    InitTokenAuthenticationRequest,
)
from ksef_facade import statuses
from ksef_facade._async.api import AsyncKsefApi, async_pages
from ksef_facade._async.encryption import AsyncEncryptionService
from ksef_facade._async.polling import async_poll
from ksef_facade._clock import utc_now
from ksef_facade.auth_types import AccessToken, AuthOperation, authentication_failed
from ksef_facade.context import current_nip
from ksef_facade.crypto import b64
from ksef_facade.errors import (
    KsefApiError,
    KsefTimeoutError,
)
from ksef_facade.keys import KeyUsage, is_unknown_key_error
from ksef_facade.secrets import Secret
from ksef_facade.statuses import Outcome, Status
from ksef_facade.token_cache import TokenSet

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_POLL_TIMEOUT",
    "AccessToken",
    "AsyncAuthFacade",
    "AuthOperation",
]

_log = logging.getLogger("ksef_facade.auth")

DEFAULT_POLL_INTERVAL = timedelta(seconds=1)
DEFAULT_POLL_TIMEOUT = timedelta(minutes=2)


class AsyncAuthFacade:
    """The steps of KSeF-token authentication, and the one call that runs them all.

    The context identifier is the NIP set with ``nip_context``. ``poll_interval``
    and ``poll_timeout`` bound the wait for the authentication status.
    """

    def __init__(
        self,
        api: AsyncKsefApi,
        encryption: AsyncEncryptionService,
        *,
        poll_interval: timedelta = DEFAULT_POLL_INTERVAL,
        poll_timeout: timedelta = DEFAULT_POLL_TIMEOUT,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if poll_interval <= timedelta(0) or poll_timeout <= timedelta(0):
            raise ValueError("poll_interval and poll_timeout must be positive.")

        self._api = api
        self._encryption = encryption
        self._interval = poll_interval
        self._timeout = poll_timeout
        self._clock = clock

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._api.environment.name!r})"

    async def challenge(self) -> AuthenticationChallengeResponse:
        """Fetch a fresh authentication challenge (uwierzytelnianie.md: 10 minutes)."""
        return await self._api.create_auth_challenge()

    async def start_ksef_token_authentication(
        self, ksef_token: Secret
    ) -> AuthOperation:
        """Submit ``ksef_token`` for the current NIP; return the pending operation.

        When KSeF rejects the encryption key (21470), the keys are fetched again and
        the submission is repeated once with a new challenge.
        """
        if not isinstance(ksef_token, Secret):
            raise TypeError("ksef_token must be a Secret.")
        nip = current_nip()

        for attempt in (1, 2):
            challenge = await self.challenge()
            encrypted = await self._encryption.encrypt_ksef_token(
                ksef_token, challenge.timestamp_ms
            )
            body = InitTokenAuthenticationRequest(
                challenge=challenge.challenge,
                context_identifier=AuthenticationContextIdentifier(
                    type_=AuthenticationContextIdentifierType.NIP, value=nip
                ),
                encrypted_token=b64(encrypted.ciphertext),
                public_key_id=encrypted.public_key_id,
            )

            try:
                started = await self._api.authenticate_with_ksef_token(body)
            except KsefApiError as error:
                if attempt == 2 or not is_unknown_key_error(error):
                    raise
                await self._encryption.refresh_if_current(
                    KeyUsage.KSEF_TOKEN, encrypted.public_key_id
                )
                continue

            _log.debug("Authentication %s started", started.reference_number)
            return AuthOperation(
                reference_number=started.reference_number,
                authentication_token=Secret(started.authentication_token.token),
            )

        raise AssertionError("unreachable: the second attempt returns or raises")

    async def status(self, operation: AuthOperation) -> Status:
        """Return the current status of an authentication."""
        response = await self._api.get_auth_status(
            operation.reference_number, operation.authentication_token
        )
        return statuses.status_from_model(response.status)

    async def wait_until_authenticated(
        self,
        operation: AuthOperation,
        *,
        interval: timedelta | None = None,
        max_wait: timedelta | None = None,
    ) -> Status:
        """Poll until the authentication succeeds; raise when it fails or times out.

        A failed authentication raises :class:`AuthenticationFailedError` (a
        :class:`KsefApiError`) carrying the status code (for example 450, an
        invalid KSeF token) in ``codes``.
        """
        timeout = max_wait or self._timeout

        def timed_out(status: Status) -> KsefTimeoutError:
            return KsefTimeoutError(
                f"Authentication {operation.reference_number} was still in "
                f"progress after {timeout.total_seconds():g} s.",
                reference_number=operation.reference_number,
                last_status_code=status.code,
            )

        status = await async_poll(
            lambda: self.status(operation),
            lambda status: statuses.auth_outcome(status.code).is_final,
            clock=self._clock,
            interval=interval or self._interval,
            max_wait=timeout,
            timed_out=timed_out,
        )
        if statuses.auth_outcome(status.code) is Outcome.FAILED:
            raise authentication_failed(operation, status)
        return status

    async def redeem(self, operation: AuthOperation) -> TokenSet:
        """Exchange a finished authentication for access and refresh tokens (once)."""
        response = await self._api.redeem_auth_token(operation.authentication_token)
        return TokenSet(
            access_token=Secret(response.access_token.token),
            access_valid_until=response.access_token.valid_until,
            refresh_token=Secret(response.refresh_token.token),
            refresh_valid_until=response.refresh_token.valid_until,
        )

    async def refresh_access_token(self, refresh_token: Secret) -> AccessToken:
        """Return a new access token for ``refresh_token``."""
        if not isinstance(refresh_token, Secret):
            raise TypeError("refresh_token must be a Secret.")

        response = await self._api.refresh_access_token(refresh_token)
        return AccessToken(
            token=Secret(response.access_token.token),
            valid_until=response.access_token.valid_until,
        )

    async def authenticate_with_ksef_token(self, ksef_token: Secret) -> TokenSet:
        """Run the whole KSeF-token authentication for the current NIP."""
        operation = await self.start_ksef_token_authentication(ksef_token)
        await self.wait_until_authenticated(operation)
        tokens = await self.redeem(operation)
        _log.info(
            "Authenticated NIP %s (%s)", current_nip(), operation.reference_number
        )
        return tokens

    async def list_sessions(
        self, *, access_token: Secret | None = None, page_size: int | None = None
    ) -> AsyncIterator[AuthenticationListItem]:
        """Yield the active authentication sessions, following continuation tokens.

        Without ``access_token`` the client's TokenProvider authorises the calls.
        """
        fetch = partial(
            self._api.list_auth_sessions, page_size=page_size, access_token=access_token
        )
        async for page in async_pages(fetch):
            for item in page.items:  # noqa: UP028, RUF100 - no `yield from` in async
                yield item

    async def revoke_session(
        self, reference_number: str, *, access_token: Secret | None = None
    ) -> None:
        """Revoke the authentication session ``reference_number``."""
        await self._api.revoke_auth_session(reference_number, access_token=access_token)

    async def revoke_current_session(
        self, *, access_token: Secret | None = None
    ) -> None:
        """Revoke the session of the access token used (its refresh token dies)."""
        await self._api.revoke_current_auth_session(access_token=access_token)
