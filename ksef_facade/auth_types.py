"""Values the authentication steps hand back, shared by both client flavours.

uwierzytelnianie.md: starting an authentication yields a reference number and a
temporary authentication token; a refresh yields a new access token and its expiry.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from ksef_facade.secrets import Secret

__all__ = ["AccessToken", "AuthOperation"]


@attrs.frozen
class AuthOperation:
    """A started authentication: its reference number and temporary token."""

    reference_number: str
    authentication_token: Secret


@attrs.frozen
class AccessToken:
    """An access token and the moment it expires."""

    token: Secret
    valid_until: datetime
