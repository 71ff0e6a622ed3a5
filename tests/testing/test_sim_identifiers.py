"""Identifiers: KSeF numbers, reference numbers, NIP check digits."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from ksef_facade.testing.identifiers import (
    REFERENCE_NUMBER_PATTERN,
    crc8,
    is_valid_ksef_number,
    is_valid_nip,
    ksef_number,
    reference_number,
)

WHEN = datetime(2026, 1, 15, tzinfo=UTC)


def test_crc8_matches_the_documented_example() -> None:
    """numer-ksef.md's example 5265877635-20250826-0100001AF629 has checksum AF."""
    assert crc8(b"5265877635-20250826-0100001AF629") == 0xAF


def test_documented_ksef_number_is_valid() -> None:
    """The documented KSeF number validates."""
    assert is_valid_ksef_number("5265877635-20250826-0100001AF629-AF")


def test_ksef_number_with_wrong_checksum_is_invalid() -> None:
    """A changed checksum is detected."""
    assert not is_valid_ksef_number("5265877635-20250826-0100001AF629-AE")


def test_generated_ksef_number_is_valid_and_dated() -> None:
    """Generated numbers carry the NIP and date and a correct CRC-8."""
    number = ksef_number("5265877635", WHEN, random.Random(1))
    assert number.startswith("5265877635-20260115-")
    assert len(number) == 35
    assert is_valid_ksef_number(number)


def test_reference_number_has_the_documented_shape() -> None:
    """Reference numbers look like 20250625-EE-319D7EE000-B67F415CDC-2C."""
    value = reference_number("EE", WHEN, random.Random(1))
    assert REFERENCE_NUMBER_PATTERN.match(value)
    assert crc8(value[:33].encode()) == int(value[34:], 16)


def test_documented_reference_number_checksum_is_crc8() -> None:
    """The spec's example reference number ends with the CRC-8 of its body."""
    example = "20250625-EE-319D7EE000-B67F415CDC-2C"
    assert crc8(example[:33].encode()) == 0x2C


def test_reference_numbers_are_deterministic_per_seed() -> None:
    """The same seed gives the same sequence."""
    first = [reference_number("SO", WHEN, random.Random(7)) for _ in range(2)]
    again = [reference_number("SO", WHEN, random.Random(7)) for _ in range(2)]
    assert first == again


def test_nip_check_digit() -> None:
    """A NIP with a valid check digit passes, a changed digit fails."""
    assert is_valid_nip("5265877635")
    assert not is_valid_nip("5265877636")
    assert not is_valid_nip("0265877635")
