"""The taxpayer NIP carried in a ``contextvars`` context.

Components that act for a taxpayer read the NIP with :func:`current_nip` instead of
taking it as a parameter, so one client serves many NIPs concurrently without mix-ups.
Threads and tasks started by the facade run in a copy of the caller's context
(``ksef_facade._concurrency``), so the NIP travels with them.

Accepted input: ten digits, optionally grouped with hyphens or spaces
(``526-000-12-46``, ``526 000 12 46``); the ``PL`` prefix is not accepted because it
belongs to the EU VAT number, a different identifier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial

from ksef_facade.errors import InvalidNipError, NipContextMissingError

__all__ = ["current_nip", "nip_context", "peek_nip", "validate_nip"]

# The checksum weights of the Polish NIP; the tenth digit is the weighted sum mod 11.
_WEIGHTS = (6, 5, 7, 2, 3, 4, 5, 6, 7)
_SEPARATORS = str.maketrans("", "", "- ")

_NIP: ContextVar[str] = ContextVar("ksef_facade_nip")


def validate_nip(nip: str) -> str:
    """Return ``nip`` as ten digits, or raise InvalidNipError saying what is wrong."""
    if not isinstance(nip, str):
        raise TypeError(f"NIP must be a str, not {type(nip).__name__}.")

    digits = nip.strip().translate(_SEPARATORS)
    if len(digits) != 10 or not (digits.isascii() and digits.isdigit()):
        raise InvalidNipError(f"NIP {nip!r} must consist of exactly 10 digits.")

    checksum = sum(w * int(d) for w, d in zip(_WEIGHTS, digits, strict=False)) % 11
    if checksum == 10 or checksum != int(digits[9]):
        raise InvalidNipError(f"NIP {nip!r} has an invalid check digit.")

    return digits


@contextmanager
def nip_context(nip: str) -> Iterator[str]:
    """Make ``nip`` the current NIP inside the ``with`` block; yield it normalised."""
    normalised = validate_nip(nip)
    token = _NIP.set(normalised)
    try:
        yield normalised
    finally:
        _NIP.reset(token)


def current_nip() -> str:
    """Return the NIP set by the innermost ``nip_context``."""
    try:
        return _NIP.get()
    except LookupError:
        raise NipContextMissingError(
            "No NIP is set; wrap the call in `with nip_context(nip):`."
        ) from None


# A C-level callable, so hot paths (the token cache lookup) pay no Python frame.
peek_nip: Callable[[], str] = partial(_NIP.get, "")
"""Return the current NIP, or an empty string when no ``nip_context`` is active."""
