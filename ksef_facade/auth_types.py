"""Values the authentication steps hand back, shared by both client flavours.

uwierzytelnianie.md: starting an authentication yields a reference number and a
temporary authentication token; a refresh yields a new access token and its expiry.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from ksef_facade.errors import AuthenticationFailedError
from ksef_facade.secrets import Secret
from ksef_facade.statuses import Status

__all__ = ["AccessToken", "AuthOperation", "authentication_failed"]


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


def authentication_failed(
    operation: AuthOperation, status: Status
) -> AuthenticationFailedError:
    """Return the error for an authentication that ended with a failure status."""
    # Details stay out of the message: servers may echo what they were sent.
    return AuthenticationFailedError(
        f"Authentication {operation.reference_number} failed with status "
        f"{status.code}: {status.description[:200]}",
        status_code=200,
        codes=(status.code,),
        description=status.description,
        details=status.details,
        reference_number=operation.reference_number,
    )
