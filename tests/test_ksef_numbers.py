"""KSeF number validation (faktury/numer-ksef.md)."""

from __future__ import annotations

import pytest

from ksef_facade.identifiers import (
    _crc8,
    is_valid_ksef_number,
    ksef_number_checksum,
    validate_ksef_number,
)

# The worked example of faktury/numer-ksef.md.
DOC_EXAMPLE = "5265877635-20250826-0100001AF629-AF"


def test_doc_example_checksum() -> None:
    """The CRC-8 of the documented example's data part is AF."""
    assert ksef_number_checksum(DOC_EXAMPLE[:32]) == "AF"


def test_doc_example_is_valid() -> None:
    """The documented example passes validation unchanged."""
    assert validate_ksef_number(DOC_EXAMPLE) == DOC_EXAMPLE


def test_crc8_check_value() -> None:
    """The CRC is CRC-8 with polynomial 0x07 and init 0 (check value 0xF4)."""
    assert _crc8(b"123456789") == 0xF4


def test_wrong_checksum_rejected() -> None:
    """A single changed checksum digit makes the number invalid."""
    with pytest.raises(ValueError, match="checksum"):
        validate_ksef_number(DOC_EXAMPLE[:-1] + "0")


def test_changed_data_rejected() -> None:
    """Changing the technical part without the checksum is detected."""
    tampered = DOC_EXAMPLE.replace("0100001AF629", "0100001AF628")
    assert not is_valid_ksef_number(tampered)


@pytest.mark.parametrize(
    "value",
    [
        "",
        DOC_EXAMPLE[:-1],
        DOC_EXAMPLE + "0",
        "5265877635-20250826-0100001af629-AF",
        "5265877635-20251326-0100001AF629-AF",
        "5265877635_20250826_0100001AF629_AF",
    ],
    ids=["empty", "short", "long", "lowercase", "bad-month", "separators"],
)
def test_malformed_numbers_rejected(value: str) -> None:
    """Wrong length, lower case, impossible dates and separators are refused."""
    assert not is_valid_ksef_number(value)


def test_length_error_names_the_length() -> None:
    """The error for a wrong length says how long a KSeF number must be."""
    with pytest.raises(ValueError, match="35 characters"):
        validate_ksef_number("123")


def test_non_string_is_type_error() -> None:
    """A non-string is a programming error, not an invalid number."""
    with pytest.raises(TypeError):
        validate_ksef_number(12345)  # type: ignore[arg-type]
