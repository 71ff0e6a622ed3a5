"""What one API call carries besides its arguments, shared by both flavours.

A call may name the bearer to send (the authentication token for the auth steps, the
refresh token for a refresh, an explicit access token); the public client's
:class:`ExplicitBearerAuth` sends it, or no Authorization at all. A call also keeps
its last raw response, so that a body the generated parser cannot read is still
mapped to a facade error that names the HTTP status.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import httpx

from ksef_facade._responses import raised_by_parser, unreadable
from ksef_facade.errors import KsefError, KsefTransportError
from ksef_facade.secrets import Secret

__all__ = ["ExplicitBearerAuth", "bearer", "mapped_errors", "record_response"]


class _ResponseSlot:
    """Holds the last raw response of one call, for errors the parser hid."""

    __slots__ = ("response",)

    def __init__(self) -> None:
        self.response: httpx.Response | None = None


_LAST_RESPONSE: ContextVar[_ResponseSlot | None] = ContextVar(
    "ksef_facade_last_response", default=None
)
_EXPLICIT_BEARER: ContextVar[Secret | None] = ContextVar(
    "ksef_facade_explicit_bearer", default=None
)


class ExplicitBearerAuth(httpx.Auth):
    """Sends the token the current call named, or no Authorization at all."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Set the bearer named with :func:`bearer`, if any."""
        token = _EXPLICIT_BEARER.get()
        if token is not None:
            request.headers["Authorization"] = f"Bearer {token.reveal()}"
        yield request


def record_response(response: httpx.Response) -> None:
    """Keep ``response`` as the current call's last raw response."""
    slot = _LAST_RESPONSE.get()
    if slot is not None:
        slot.response = response


@contextmanager
def bearer(token: Secret | None) -> Iterator[None]:
    """Send ``token`` as the bearer on the public client inside the block."""
    reset = _EXPLICIT_BEARER.set(token)
    try:
        yield
    finally:
        _EXPLICIT_BEARER.reset(reset)


@contextmanager
def mapped_errors(operation: str) -> Iterator[None]:
    """Turn transport failures and unreadable bodies into facade errors."""
    slot = _ResponseSlot()
    reset = _LAST_RESPONSE.set(slot)
    try:
        yield
    except KsefError:
        raise
    except httpx.TransportError as error:
        raise KsefTransportError(
            f"No answer from KSeF to {operation} ({type(error).__name__})."
        ) from error
    except (KeyError, TypeError, ValueError) as error:
        if not raised_by_parser(error):
            raise
        raise unreadable(operation, slot.response) from error
    finally:
        _LAST_RESPONSE.reset(reset)
