"""Types that hold secrets and never show them.

Access and refresh tokens, KSeF tokens and AES keys travel as :class:`Secret` or
:class:`SecretBytes`; their repr and str print ``'***'``, so a stray log line or a
traceback cannot leak them. Only :meth:`reveal` returns the value.
"""

from __future__ import annotations

import hmac
from typing import Any, Generic, NoReturn, Self, TypeVar

__all__ = ["Secret", "SecretBytes"]

V = TypeVar("V", str, bytes)


class _Hidden(Generic[V]):
    """A value hidden from repr and str, immutable, unhashable and unpicklable."""

    __slots__ = ("_value",)
    _value: V
    _wraps: type[V]
    _wraps_name: str

    def __init__(self, value: V) -> None:
        if not isinstance(value, self._wraps):
            raise TypeError(
                f"{type(self).__name__} wraps {self._wraps_name}, "
                f"not {type(value).__name__}."
            )
        object.__setattr__(self, "_value", value)

    def reveal(self) -> V:
        """Return the secret value; keep it out of logs and messages."""
        return self._value

    def __repr__(self) -> str:
        return f"{type(self).__name__}('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, type(self)):
            return NotImplemented
        # Constant-time, so comparing tokens leaks no timing about their contents.
        return hmac.compare_digest(_as_bytes(self._value), _as_bytes(other._value))

    # Unhashable: a hash is derived from the value and could end up in logs.
    __hash__ = None  # type: ignore[assignment]

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable.")

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            f"{type(self).__name__} cannot be pickled; store secret.reveal() "
            "deliberately."
        )

    # Immutable, so a copy may be the object itself (pickling stays refused).
    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


class Secret(_Hidden[str]):
    """A secret string whose repr and str hide the value."""

    __slots__ = ()
    _wraps = str
    _wraps_name = "a str"


class SecretBytes(_Hidden[bytes]):
    """Secret bytes (such as an AES key) whose repr and str hide the value."""

    __slots__ = ()
    _wraps = bytes
    _wraps_name = "bytes"

    def __len__(self) -> int:
        return len(self._value)
