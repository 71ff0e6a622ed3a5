"""The hash check of downloaded documents against x-ms-meta-hash."""

from __future__ import annotations

import pytest

from ksef_facade.crypto import sha256_b64
from ksef_facade.downloads import Download, verified
from ksef_facade.errors import HashMismatchError, InvoiceHashMismatchError

CONTENT = b"<Faktura>1</Faktura>"


def test_matching_hash_returns_content() -> None:
    """A document whose SHA-256 matches the announced one is returned."""
    download = Download(CONTENT, sha256_b64(CONTENT))

    assert verified(download, "R1") == CONTENT


def test_mismatch_raises_the_given_error() -> None:
    """A document that differs from its announced hash raises the chosen class."""
    download = Download(CONTENT, sha256_b64(b"<Faktura>2</Faktura>"))

    with pytest.raises(InvoiceHashMismatchError) as raised:
        verified(download, "R1", InvoiceHashMismatchError)

    assert raised.value.actual == sha256_b64(CONTENT)
    assert raised.value.reference_number == "R1"


def test_mismatch_defaults_to_the_base_error() -> None:
    """Without a chosen class a mismatch raises HashMismatchError itself."""
    download = Download(CONTENT, "AAAA")

    with pytest.raises(HashMismatchError, match=r"^Document R1 has SHA-256"):
        verified(download, "R1")


def test_missing_hash_returns_content_unchecked() -> None:
    """Without x-ms-meta-hash there is nothing to compare; the content is returned."""
    assert verified(Download(CONTENT, None), "R1") == CONTENT


def test_repr_shows_size_not_content() -> None:
    """The repr gives the size and hash, never the document."""
    text = repr(Download(CONTENT, "AAAA"))

    assert "Faktura" not in text
    assert str(len(CONTENT)) in text
