"""KSeF numbers, reference numbers and NIP checks, as the server side builds them.

faktury/numer-ksef.md: a KSeF number is ``NIP-YYYYMMDD-<12 hex>-<CRC-8>`` with the
CRC-8 (polynomial 0x07, initial value 0x00) computed over the first 32 characters.
Reference numbers in the docs and spec examples
(``20250625-EE-319D7EE000-B67F415CDC-2C``) end with the same CRC-8 over their first
33 characters, so the simulator builds them the same way.
"""

from __future__ import annotations

import random
import re
from datetime import datetime

__all__ = [
    "KSEF_NUMBER_PATTERN",
    "REFERENCE_NUMBER_PATTERN",
    "TEST_NIP",
    "crc8",
    "is_valid_ksef_number",
    "is_valid_nip",
    "ksef_number",
    "reference_number",
]

KSEF_NUMBER_PATTERN = re.compile(r"^[1-9]\d{9}-\d{8}-[0-9A-F]{12}-[0-9A-F]{2}$")
REFERENCE_NUMBER_PATTERN = re.compile(
    r"^\d{8}-[A-Z]{2}-[0-9A-F]{10}-[0-9A-F]{10}-[0-9A-F]{2}$"
)
_NIP_WEIGHTS = (6, 5, 7, 2, 3, 4, 5, 6, 7)
# The NIP of the docs' examples (numer-ksef.md), which the command line and the pytest
# fixtures provision a KSeF token for.
TEST_NIP = "5265877635"


def crc8(data: bytes) -> int:
    """Return the CRC-8 (poly 0x07, init 0x00) of ``data``."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _with_checksum(body: str) -> str:
    return f"{body}-{crc8(body.encode('ascii')):02X}"


def ksef_number(nip: str, accepted: datetime, rng: random.Random) -> str:
    """Return a new KSeF number for an invoice of ``nip`` accepted at ``accepted``."""
    technical = f"{rng.getrandbits(48):012X}"
    return _with_checksum(f"{nip}-{accepted:%Y%m%d}-{technical}")


def reference_number(kind: str, when: datetime, rng: random.Random) -> str:
    """Return a 36-character reference number of two-letter ``kind``."""
    first = f"{rng.getrandbits(40):010X}"
    second = f"{rng.getrandbits(40):010X}"
    return _with_checksum(f"{when:%Y%m%d}-{kind}-{first}-{second}")


def is_valid_ksef_number(value: str) -> bool:
    """Tell whether ``value`` is a 35-character KSeF number with a correct CRC-8."""
    if not KSEF_NUMBER_PATTERN.match(value):
        return False
    return crc8(value[:32].encode("ascii")) == int(value[33:], 16)


def is_valid_nip(value: str) -> bool:
    """Tell whether ``value`` is a ten-digit NIP with a correct check digit."""
    if not re.fullmatch(r"[1-9]\d{9}", value):
        return False
    total = sum(int(d) * w for d, w in zip(value, _NIP_WEIGHTS, strict=False))
    return total % 11 == int(value[9])
