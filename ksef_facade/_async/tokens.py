"""Per-NIP access tokens: cached, refreshed before expiry, authenticated once.

The NIP comes from ``nip_context``. A valid cached token is returned without taking a
lock; otherwise the NIP's own lock is taken, so one NIP's slow authentication never
holds up another NIP's callers, and callers waiting on the same NIP reuse the result
(or the failure) of the attempt they waited for.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

import attrs

from ksef_facade._concurrency import AsyncLock
from ksef_facade.context import current_nip, peek_nip
from ksef_facade.errors import (
    KsefApiError,
)
from ksef_facade.secrets import Secret
from ksef_facade.token_cache import (
    CachedTokens,
    TokenAction,
    TokenSet,
    decide,
    refresh_rejected,
)

__all__ = ["AsyncTokenProvider", "TokenKind"]

logger = logging.getLogger("ksef_facade.tokens")

TokenKind = Literal["access", "refresh"]


_EXPIRED = datetime(1970, 1, 1, tzinfo=UTC)


class _NipState:
    """One NIP's slow path: its lock and how the last attempt ended."""

    __slots__ = ("attempts", "last_error", "lock")

    def __init__(self) -> None:
        self.lock = AsyncLock()
        self.attempts = 0
        self.last_error: Exception | None = None


class AsyncTokenProvider:
    """Supplies the current NIP's access token, renewing it when needed.

    ``authenticate()`` performs a full authentication and ``refresh(refresh_token)``
    trades a refresh token for a new access token; both read the NIP from the
    context themselves and return a :class:`TokenSet`. ``on_token_update(nip, kind,
    tokens)`` is called after each renewal: ``kind`` is ``"refresh"`` when the refresh
    token changed too (after a full authentication) and ``"access"`` when only the
    access token did. ``clock`` returns the current Unix time in seconds.

    The sync twin is safe to share between threads; the async one serves one event
    loop at a time (its locks are asyncio locks).
    """

    def __init__(
        self,
        authenticate: Callable[[], Awaitable[TokenSet]],
        refresh: Callable[[Secret], Awaitable[TokenSet]],
        *,
        refresh_skew: timedelta = timedelta(seconds=60),
        on_token_update: Callable[[str, TokenKind, TokenSet], Awaitable[None]]
        | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if refresh_skew < timedelta(0):
            raise ValueError("refresh_skew must not be negative.")

        self._authenticate = authenticate
        self._refresh = refresh
        self._skew = refresh_skew
        self._on_token_update = on_token_update
        self._clock = clock
        self._cache: dict[str, CachedTokens] = {}
        self._states: dict[str, _NipState] = {}
        # Guards only dict writes that must not interleave; never held across I/O.
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(nips={len(self._cache)})"

    async def access_token(self) -> Secret:
        """Return a valid access token for the current NIP."""
        # Fast path: no lock, no validation (nip_context validated the NIP). Without
        # a context the lookup misses and current_nip() raises the helpful error.
        cached = self._cache.get(peek_nip())
        if cached is not None and cached.use_until > self._clock():
            return cached.access_token
        return await self._renew(current_nip())

    def cached_tokens(self) -> TokenSet | None:
        """Return the current NIP's cached tokens, if any, without renewing them."""
        cached = self._cache.get(current_nip())
        return None if cached is None else cached.tokens

    def seed_tokens(self, tokens: TokenSet) -> None:
        """Cache ``tokens`` (for example restored from storage) for the current NIP."""
        if not isinstance(tokens, TokenSet):
            raise TypeError(f"tokens must be a TokenSet, not {type(tokens).__name__}.")
        self._store(current_nip(), tokens)

    def invalidate(self, access_token: Secret | None = None) -> None:
        """Drop the current NIP's access token so the next call renews it.

        With ``access_token``, drop it only while it is still the cached one: a
        request that failed with an old token must not discard a newer one.
        """
        nip = current_nip()

        with self._guard:
            cached = self._cache.get(nip)
            if cached is None or cached.use_until == -math.inf:
                return
            if access_token is not None and cached.access_token != access_token:
                return
            expired = attrs.evolve(cached.tokens, access_valid_until=_EXPIRED)
            self._cache[nip] = CachedTokens(expired, -math.inf)

        logger.debug("Access token for NIP %s invalidated", nip)

    async def _renew(self, nip: str) -> Secret:
        """Refresh or authenticate under the NIP's lock; return the new access token."""
        state = self._state(nip)
        attempts_seen = state.attempts

        async with state.lock:
            if state.attempts != attempts_seen and state.last_error is not None:
                # The attempt we waited for failed; share its error instead of
                # sending every waiter to KSeF in turn.
                raise state.last_error

            cached = self._cache.get(nip)
            tokens = None if cached is None else cached.tokens
            now = datetime.fromtimestamp(self._clock(), UTC)
            action = decide(tokens, now, self._skew)
            if cached is not None and action is TokenAction.USE:
                return cached.access_token

            try:
                new_tokens, kind = await self._obtain(nip, action, tokens)
            except Exception as error:
                state.attempts += 1
                state.last_error = error
                raise
            state.attempts += 1
            state.last_error = None
            self._store(nip, new_tokens)
            if new_tokens.access_valid_until - self._skew <= now:
                # Every call would renew again: the local clock is off, or the skew
                # is longer than the token's life (kilkanaście minut per
                # uwierzytelnianie.md).
                logger.warning(
                    "New access token for NIP %s expires within refresh_skew (%s); "
                    "check the system clock",
                    nip,
                    self._skew,
                )

            if self._on_token_update is not None:
                await self._on_token_update(nip, kind, new_tokens)

        return new_tokens.access_token

    async def _obtain(
        self, nip: str, action: TokenAction, tokens: TokenSet | None
    ) -> tuple[TokenSet, TokenKind]:
        """Refresh when allowed, else authenticate; say which token changed."""
        if action is TokenAction.REFRESH and tokens is not None:
            logger.debug("Refreshing the access token for NIP %s", nip)
            try:
                refreshed = await self._refresh(tokens.refresh_token)
            except KsefApiError as error:
                if not refresh_rejected(error):
                    raise
                logger.info(
                    "Refresh token for NIP %s rejected with HTTP %s; authenticating",
                    nip,
                    error.status_code,
                )
            else:
                same = refreshed.refresh_token == tokens.refresh_token
                return refreshed, "access" if same else "refresh"

        logger.debug("Authenticating NIP %s", nip)
        return await self._authenticate(), "refresh"

    def _state(self, nip: str) -> _NipState:
        state = self._states.get(nip)
        if state is None:
            with self._guard:
                state = self._states.setdefault(nip, _NipState())
        return state

    def _store(self, nip: str, tokens: TokenSet) -> None:
        use_until = (tokens.access_valid_until - self._skew).timestamp()
        with self._guard:
            self._cache[nip] = CachedTokens(tokens, use_until)
