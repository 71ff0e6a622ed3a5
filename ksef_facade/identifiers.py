"""KSeF numbers: format and CRC-8 checksum, checked on the client side.

faktury/numer-ksef.md: a KSeF number has 35 characters,
``NNNNNNNNNN-YYYYMMDD-XXXXXXXXXXXX-CC``: the seller's NIP, the acceptance date, a
12-digit upper-case hexadecimal technical part and a CRC-8 (polynomial 0x07, initial
value 0x00) of the first 32 characters, as two upper-case hexadecimal digits.
"""

from __future__ import annotations

import re
from datetime import date

__all__ = [
    "KSEF_NUMBER_LENGTH",
    "is_valid_ksef_number",
    "ksef_number_checksum",
    "validate_ksef_number",
]

KSEF_NUMBER_LENGTH = 35

_DATA_LENGTH = 32
_SHAPE = re.compile(
    r"(?P<nip>\d{10})-(?P<date>\d{8})-[0-9A-F]{12}-(?P<crc>[0-9A-F]{2})"
)
# numer-ksef.md, "Algorytm CRC-8".
_POLYNOMIAL = 0x07


def _crc8(data: bytes) -> int:
    crc = 0x00
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ _POLYNOMIAL) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def ksef_number_checksum(data: str) -> str:
    """Return the two-digit CRC-8 of the 32-character data part of a KSeF number."""
    if len(data) != _DATA_LENGTH or not data.isascii():
        raise ValueError(
            f"The data part of a KSeF number has {_DATA_LENGTH} ASCII characters."
        )
    return f"{_crc8(data.encode('ascii')):02X}"


def validate_ksef_number(value: str) -> str:
    """Return ``value`` if it is a well-formed KSeF number; else raise ValueError."""
    if not isinstance(value, str):
        raise TypeError(f"A KSeF number is a str, not {type(value).__name__}.")
    if len(value) != KSEF_NUMBER_LENGTH:
        raise ValueError(
            f"KSeF number {value[:40]!r} must have {KSEF_NUMBER_LENGTH} characters, "
            f"not {len(value)}."
        )

    match = _SHAPE.fullmatch(value)
    if match is None:
        raise ValueError(
            f"KSeF number {value!r} does not have the form "
            "NNNNNNNNNN-YYYYMMDD-XXXXXXXXXXXX-CC (upper-case hexadecimal)."
        )

    raw_date = match["date"]
    try:
        date(int(raw_date[:4]), int(raw_date[4:6]), int(raw_date[6:]))
    except ValueError:
        raise ValueError(f"KSeF number {value!r} carries no valid date.") from None

    expected = ksef_number_checksum(value[:_DATA_LENGTH])
    if match["crc"] != expected:
        raise ValueError(f"KSeF number {value!r} has a wrong checksum.")
    return value


def is_valid_ksef_number(value: str) -> bool:
    """Tell whether ``value`` is a well-formed KSeF number with a correct checksum."""
    try:
        validate_ksef_number(value)
    except (TypeError, ValueError):
        return False
    return True
