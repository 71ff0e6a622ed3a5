"""Pure token decisions: use the cached tokens, refresh them, or authenticate anew.

The access token is short-lived and the refresh token lasts up to 7 days
(uwierzytelnianie.md, "Uzyskanie tokenów"); a refresh yields a new access token
without a new authentication (uwierzytelnianie.md, "Odświeżanie tokena dostępowego").
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

import attrs

from ksef_facade.errors import (
    BadRequestError,
    ForbiddenError,
    KsefApiError,
    UnauthorizedError,
)
from ksef_facade.secrets import Secret

__all__ = [
    "CachedTokens",
    "TokenAction",
    "TokenSet",
    "decide",
    "refresh_rejected",
]

# POST /auth/token/refresh answers 400 with these codes when the refresh token can no
# longer be used (spec 2.9.0): 21301 "Brak autoryzacji." (the authentication's status
# forbids it, or the KSeF token was revoked), 21304 "Brak uwierzytelnienia." (the
# authentication operation is unknown). A new authentication is the way out.
_REFRESH_REJECTED_CODES = frozenset({21301, 21304})


def _aware(
    instance: object, attribute: attrs.Attribute[datetime], value: object
) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{attribute.name} must be a timezone-aware datetime.")


@attrs.frozen
class TokenSet:
    """An access token and a refresh token, each with the moment it expires."""

    access_token: Secret = attrs.field(validator=attrs.validators.instance_of(Secret))
    access_valid_until: datetime = attrs.field(validator=_aware)
    refresh_token: Secret = attrs.field(validator=attrs.validators.instance_of(Secret))
    refresh_valid_until: datetime = attrs.field(validator=_aware)


class CachedTokens:
    """One NIP's tokens as a provider's fast path reads them: replaced whole.

    ``use_until`` is the Unix time after which the access token must be renewed
    (its expiry minus the refresh skew).
    """

    __slots__ = ("access_token", "tokens", "use_until")

    def __init__(self, tokens: TokenSet, use_until: float) -> None:
        self.tokens = tokens
        self.access_token = tokens.access_token
        self.use_until = use_until


class TokenAction(enum.Enum):
    """What to do before a request: use the cache, refresh, or authenticate anew."""

    USE = "use"
    REFRESH = "refresh"
    AUTHENTICATE = "authenticate"


def decide(tokens: TokenSet | None, now: datetime, skew: timedelta) -> TokenAction:
    """Return the action for ``tokens`` at ``now``, treating tokens as expiring early.

    A token within ``skew`` of its expiry counts as expired, so a request never
    leaves with a token that lapses on the way.
    """
    if tokens is None:
        return TokenAction.AUTHENTICATE
    if now < tokens.access_valid_until - skew:
        return TokenAction.USE
    if now < tokens.refresh_valid_until - skew:
        return TokenAction.REFRESH
    return TokenAction.AUTHENTICATE


def refresh_rejected(error: KsefApiError) -> bool:
    """True when a refresh failed because the refresh token is no longer usable."""
    if isinstance(error, UnauthorizedError | ForbiddenError):
        return True
    return isinstance(error, BadRequestError) and bool(
        _REFRESH_REJECTED_CODES.intersection(error.codes)
    )
