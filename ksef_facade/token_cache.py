"""Pure token decisions: whether a cached token set can be used as it is.

The access token is short-lived and the refresh token lasts up to 7 days
(uwierzytelnianie.md, "Uzyskanie tokenów"); a refresh yields a new access token
without a new authentication (uwierzytelnianie.md, "Odświeżanie tokena dostępowego").
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

import attrs

from ksef_facade.secrets import Secret

__all__ = ["CachedTokens", "TokenAction", "TokenSet", "decide"]


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
