"""Key choice and refresh rules (bezpieczenstwo/klucze-publiczne-do-szyfrowania.md)."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime, timedelta
from functools import cache

import attrs
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ksef_facade.crypto import PublicKeyInfo, load_certificate
from ksef_facade.errors import BadRequestError, ServerError
from ksef_facade.keys import (
    DEFAULT_REFRESH_SKEW,
    KeyUsage,
    PublishedCertificate,
    is_unknown_key_error,
    keys_by_usage,
    needs_refresh,
    select_key,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@cache
def private_key(index: int) -> rsa.RSAPrivateKey:
    """Return the ``index``-th test RSA key, generated once per run."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate_b64(index: int, valid_from: datetime, valid_to: datetime) -> str:
    """Return a Base64 DER self-signed certificate of key ``index``."""
    key = private_key(index)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"test key {index}")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1000 + index)
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(certificate.public_bytes(Encoding.DER)).decode("ascii")


def published(
    index: int, usage: KeyUsage, valid_from: datetime, valid_to: datetime
) -> PublishedCertificate:
    """Return a keys-list entry for key ``index``, as KSeF would serve it."""
    b64 = certificate_b64(index, valid_from, valid_to)
    return PublishedCertificate(
        certificate=b64,
        public_key_id=load_certificate(b64).public_key_id,
        valid_from=valid_from,
        valid_to=valid_to,
        usages=(usage.value,),
    )


def key_info(index: int, valid_from: datetime, valid_to: datetime) -> PublicKeyInfo:
    """Return a loaded key ``index`` with the given validity."""
    return load_certificate(certificate_b64(index, valid_from, valid_to))


def test_select_prefers_latest_valid_from() -> None:
    """Among valid keys the one with the latest validFrom is chosen (4.1)."""
    old = key_info(0, NOW - 300 * DAY, NOW + 300 * DAY)
    new = key_info(1, NOW - 10 * DAY, NOW + 700 * DAY)

    assert select_key([new, old], NOW) is new
    assert select_key([old, new], NOW) is new


def test_select_skips_keys_not_yet_valid() -> None:
    """A key published ahead of its validFrom is not used yet."""
    current = key_info(0, NOW - DAY, NOW + 300 * DAY)
    future = key_info(1, NOW + DAY, NOW + 700 * DAY)

    assert select_key([current, future], NOW) is current


def test_select_none_when_all_expired() -> None:
    """No key is chosen when every candidate has expired."""
    expired = key_info(0, NOW - 300 * DAY, NOW - DAY)

    assert select_key([expired], NOW) is None


def test_refresh_when_missing() -> None:
    """A usage without a cached key needs the list."""
    assert needs_refresh(None, NOW, DEFAULT_REFRESH_SKEW)


def test_refresh_within_skew() -> None:
    """A key expiring within the skew is refreshed; one just outside is kept."""
    key = key_info(0, NOW - DAY, NOW + timedelta(minutes=2))
    later = attrs.evolve(key, valid_to=NOW + timedelta(minutes=2, seconds=1))

    assert needs_refresh(key, NOW, DEFAULT_REFRESH_SKEW)
    assert not needs_refresh(later, NOW, DEFAULT_REFRESH_SKEW)


def test_key_without_validity_never_refreshes() -> None:
    """A preloaded public key without dates is used as it is."""
    key = attrs.evolve(
        key_info(0, NOW - DAY, NOW + DAY), valid_from=None, valid_to=None
    )

    assert not needs_refresh(key, NOW + 1000 * DAY, DEFAULT_REFRESH_SKEW)


def test_keys_grouped_by_usage() -> None:
    """Certificates are grouped by usage; unknown usages are ignored."""
    token = published(0, KeyUsage.KSEF_TOKEN, NOW - DAY, NOW + DAY)
    symmetric = published(1, KeyUsage.SYMMETRIC_KEY, NOW - DAY, NOW + DAY)
    other = attrs.evolve(symmetric, usages=("SomethingNew",))

    grouped = keys_by_usage([token, symmetric, other])

    assert [k.public_key_id for k in grouped[KeyUsage.KSEF_TOKEN]] == [
        token.public_key_id
    ]
    assert [k.public_key_id for k in grouped[KeyUsage.SYMMETRIC_KEY]] == [
        symmetric.public_key_id
    ]


def test_mismatched_public_key_id_skipped(caplog: pytest.LogCaptureFixture) -> None:
    """A certificate whose key does not hash to its publicKeyId is not used."""
    entry = published(0, KeyUsage.KSEF_TOKEN, NOW - DAY, NOW + DAY)
    wrong = attrs.evolve(
        entry,
        public_key_id=published(1, KeyUsage.KSEF_TOKEN, NOW, NOW + DAY).public_key_id,
    )

    with caplog.at_level(logging.WARNING, logger="ksef_facade.keys"):
        grouped = keys_by_usage([wrong])

    assert grouped[KeyUsage.KSEF_TOKEN] == []
    assert "Skipping KSeF certificate" in caplog.text


def test_served_validity_is_used() -> None:
    """The validity served with a certificate is the one the cache keeps."""
    entry = attrs.evolve(
        published(0, KeyUsage.KSEF_TOKEN, NOW - DAY, NOW + 10 * DAY),
        valid_to=NOW + DAY,
    )

    [key] = keys_by_usage([entry])[KeyUsage.KSEF_TOKEN]

    assert key.valid_to == NOW + DAY


def test_21470_is_the_unknown_key_error() -> None:
    """Only a 400 carrying code 21470 asks for new keys (section 4.3)."""
    unknown = BadRequestError("x", status_code=400, codes=(21470,))
    other = BadRequestError("x", status_code=400, codes=(21405,))
    server = ServerError("x", status_code=500, codes=(21470,))

    assert is_unknown_key_error(unknown)
    assert not is_unknown_key_error(other)
    assert not is_unknown_key_error(server)
