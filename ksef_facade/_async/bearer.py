"""httpx authentication with the TokenProvider's access token, renewed on 401."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import NoReturn

import httpx

from ksef_facade._async.tokens import AsyncTokenProvider

__all__ = ["AsyncBearerAuth"]

logger = logging.getLogger("ksef_facade.tokens")


class AsyncBearerAuth(httpx.Auth):
    """Sends ``Authorization: Bearer`` with the current NIP's access token.

    When KSeF answers 401, that token is dropped from the provider and the request
    is sent once more with a fresh one. A streamed request body cannot be sent
    twice; httpx then raises ``StreamConsumed`` instead of replaying.
    """

    requires_response_body = False

    def __init__(self, provider: AsyncTokenProvider) -> None:
        self._provider = provider

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Authorise ``request``; replay it once with a new token after a 401."""
        token = await self._provider.access_token()
        request.headers["Authorization"] = f"Bearer {token.reveal()}"

        response = yield request
        if response.status_code != httpx.codes.UNAUTHORIZED:
            return

        logger.debug(
            "HTTP 401 for %s; replaying with a new access token", request.method
        )
        self._provider.invalidate(token)
        token = await self._provider.access_token()
        request.headers["Authorization"] = f"Bearer {token.reveal()}"
        yield request

    def auth_flow(self, request: httpx.Request) -> NoReturn:
        """Refuse the other client flavour instead of sending without a token."""
        raise RuntimeError(
            f"{type(self).__name__} cannot serve this client; pair the async auth "
            "with the async client and the sync auth with the sync client."
        )
