"""Reading request fields with the documented 21405 error for anything invalid."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from .errors import ApiError

__all__ = [
    "b64_field",
    "bool_field",
    "compression_field",
    "date_time",
    "digest_field",
    "int_field",
    "object_field",
    "optional",
    "optional_digest",
    "optional_str",
    "page_size",
    "str_field",
    "str_list",
]


def _invalid(name: str, problem: str) -> ApiError:
    return ApiError(21405, f"Pole '{name}' {problem}.")


def optional(obj: Mapping[str, Any], name: str) -> bool:
    """Tell whether ``name`` is present and not null."""
    return obj.get(name) is not None


def object_field(obj: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Return the required JSON object ``name``."""
    value = obj.get(name)
    if not isinstance(value, dict):
        raise _invalid(name, "jest wymagane i musi być obiektem")
    return value


def str_field(
    obj: Mapping[str, Any],
    name: str,
    *,
    min_length: int = 1,
    max_length: int | None = None,
    choices: tuple[str, ...] | None = None,
) -> str:
    """Return the required string ``name``, checking length and allowed values."""
    value = obj.get(name)
    if not isinstance(value, str):
        raise _invalid(name, "jest wymagane i musi być tekstem")
    if len(value) < min_length or (max_length is not None and len(value) > max_length):
        raise _invalid(name, "ma nieprawidłową długość")
    if choices is not None and value not in choices:
        raise _invalid(name, f"musi mieć jedną z wartości: {', '.join(choices)}")
    return value


def optional_str(
    obj: Mapping[str, Any],
    name: str,
    *,
    min_length: int = 1,
    max_length: int | None = None,
    choices: tuple[str, ...] | None = None,
) -> str | None:
    """Return the optional string ``name``, or ``None`` when it is absent or null."""
    if obj.get(name) is None:
        return None
    return str_field(
        obj, name, min_length=min_length, max_length=max_length, choices=choices
    )


# spec: Sha256HashBase64 (hashes and publicKeyId) is exactly 44 characters.
_DIGEST_LENGTH = 44


def digest_field(obj: Mapping[str, Any], name: str) -> str:
    """Return the required Base64 SHA-256 ``name``."""
    return str_field(obj, name, min_length=_DIGEST_LENGTH, max_length=_DIGEST_LENGTH)


def optional_digest(obj: Mapping[str, Any], name: str) -> str | None:
    """Return the optional Base64 SHA-256 ``name``, or ``None``."""
    return optional_str(obj, name, min_length=_DIGEST_LENGTH, max_length=_DIGEST_LENGTH)


def compression_field(obj: Mapping[str, Any]) -> str:
    """Return the optional ``compressionType`` (spec: CompressionType, Zip if unset)."""
    return optional_str(obj, "compressionType", choices=("Zip", "TarGz")) or "Zip"


def int_field(
    obj: Mapping[str, Any],
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """Return the required integer ``name`` within bounds."""
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(name, "jest wymagane i musi być liczbą całkowitą")
    if isinstance(value, float) and (
        not math.isfinite(value) or not value.is_integer()
    ):
        raise _invalid(name, "musi być liczbą całkowitą")
    number = int(value)
    if (minimum is not None and number < minimum) or (
        maximum is not None and number > maximum
    ):
        raise _invalid(name, "jest poza dozwolonym zakresem")
    return number


def bool_field(obj: Mapping[str, Any], name: str, default: bool = False) -> bool:
    """Return the optional boolean ``name``."""
    value = obj.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _invalid(name, "musi być wartością logiczną")
    return value


def b64_field(obj: Mapping[str, Any], name: str, *, length: int | None = None) -> bytes:
    """Return the bytes of required Base64 string ``name``."""
    text = str_field(obj, name)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _invalid(name, "nie jest poprawnym ciągiem Base64") from exc
    if length is not None and len(data) != length:
        raise _invalid(name, f"musi mieć {length} bajtów")
    return data


def str_list(obj: Mapping[str, Any], name: str, choices: tuple[str, ...]) -> list[str]:
    """Return the required list of strings ``name``, each one of ``choices``."""
    value = obj.get(name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(name, "jest wymagane i musi być listą tekstów")
    unknown = [v for v in value if v not in choices]
    if unknown:
        raise _invalid(name, "zawiera nieznane wartości")
    return list(value)


def date_time(value: Any, name: str, naive_zone: tzinfo = UTC) -> datetime:
    """Return an aware datetime parsed from ISO 8601 text (naive: in ``naive_zone``)."""
    if not isinstance(value, str):
        raise _invalid(name, "musi być datą w formacie ISO 8601")
    try:
        parsed = datetime.fromisoformat(
            value.replace("Z", "+00:00").replace("z", "+00:00")
        )
    except ValueError as exc:
        raise _invalid(name, "musi być datą w formacie ISO 8601") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=naive_zone)
    return parsed


def page_size(
    query: Mapping[str, str], *, minimum: int, maximum: int, default: int
) -> int:
    """Return the ``pageSize`` query parameter within the spec's bounds."""
    raw = query.get("pageSize")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise _invalid("pageSize", "musi być liczbą całkowitą") from exc
    if not minimum <= value <= maximum:
        raise _invalid("pageSize", f"musi mieścić się w zakresie {minimum}-{maximum}")
    return value
