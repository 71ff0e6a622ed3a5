"""Types that hold secrets and never show them.

Access and refresh tokens, KSeF tokens and AES keys travel as :class:`Secret` or
:class:`SecretBytes`; their repr and str print ``'***'``, so a stray log line or a
traceback cannot leak them. Only :meth:`reveal` returns the value.
"""

from __future__ import annotations

import hmac
from typing import Any, NoReturn

__all__ = ["Secret", "SecretBytes"]


class Secret:
    """A secret string whose repr and str hide the value."""

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"Secret wraps a str, not {type(value).__name__}.")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """Return the secret value; keep it out of logs and messages."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        # Constant-time, so comparing tokens leaks no timing about their contents.
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    # Unhashable: a hash is derived from the value and could end up in logs.
    __hash__ = None  # type: ignore[assignment]

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("Secret is immutable.")

    def __reduce__(self) -> NoReturn:
        raise TypeError("Secret cannot be pickled; store secret.reveal() deliberately.")

    # Immutable, so a copy may be the object itself (pickling stays refused).
    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self


class SecretBytes:
    """Secret bytes (such as an AES key) whose repr and str hide the value."""

    __slots__ = ("_value",)
    _value: bytes

    def __init__(self, value: bytes) -> None:
        if not isinstance(value, bytes):
            raise TypeError(f"SecretBytes wraps bytes, not {type(value).__name__}.")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> bytes:
        """Return the secret bytes; keep them out of logs and messages."""
        return self._value

    def __repr__(self) -> str:
        return "SecretBytes('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretBytes):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    __hash__ = None  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self._value)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("SecretBytes is immutable.")

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "SecretBytes cannot be pickled; store secret.reveal() deliberately."
        )

    def __copy__(self) -> SecretBytes:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SecretBytes:
        return self
