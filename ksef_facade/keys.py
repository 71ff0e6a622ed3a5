"""Which KSeF public key to use, and when to fetch the list again.

bezpieczenstwo/klucze-publiczne-do-szyfrowania.md: KSeF publishes X.509 certificates
per usage (``KsefTokenEncryption``, ``SymmetricKeyEncryption``); the client picks one
valid at the moment of the operation and, among several, the one with the latest
``validFrom`` (section 4.1). The keys list is fetched again when the chosen key is
missing or within ``refresh_skew`` of its ``validTo``. Pure functions; ``now`` is
passed in.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import attrs

from ksef_facade.crypto import PublicKeyInfo, load_certificate
from ksef_facade.errors import BadRequestError, KsefApiError

__all__ = [
    "DEFAULT_REFRESH_SKEW",
    "UNKNOWN_KEY_CODE",
    "EncryptedData",
    "KeyUsage",
    "PublishedCertificate",
    "challenge_timestamp_ms",
    "is_unknown_key_error",
    "keys_by_usage",
    "load_preloaded_keys",
    "needs_refresh",
    "select_key",
]

_log = logging.getLogger("ksef_facade.keys")

DEFAULT_REFRESH_SKEW = timedelta(minutes=2)

# Section 4.3: HTTP 400 with this code means the publicKeyId is unknown or withdrawn;
# section 4.4: fetch the keys again and repeat the operation with the new key.
UNKNOWN_KEY_CODE = 21470

_EARLIEST = datetime.min.replace(tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class KeyUsage(enum.Enum):
    """What a KSeF public key encrypts."""

    KSEF_TOKEN = "KsefTokenEncryption"  # noqa: S105 - a usage name, not a secret
    SYMMETRIC_KEY = "SymmetricKeyEncryption"


class EncryptedData(NamedTuple):
    """Ciphertext and the ``publicKeyId`` of the KSeF key that produced it."""

    ciphertext: bytes
    public_key_id: str


@attrs.frozen
class PublishedCertificate:
    """One entry of ``GET /security/public-key-certificates``."""

    certificate: str = attrs.field(repr=False)
    public_key_id: str
    valid_from: datetime
    valid_to: datetime
    usages: tuple[str, ...]


def select_key(
    candidates: Iterable[PublicKeyInfo], now: datetime
) -> PublicKeyInfo | None:
    """Return the key valid at ``now`` with the latest ``valid_from``, if any."""
    valid = [key for key in candidates if key.is_valid_at(now)]
    if not valid:
        return None
    return max(valid, key=lambda key: key.valid_from or _EARLIEST)


def needs_refresh(key: PublicKeyInfo | None, now: datetime, skew: timedelta) -> bool:
    """Tell whether the keys list must be fetched before using ``key`` at ``now``."""
    if key is None or not key.is_valid_at(now):
        return True
    return key.valid_to is not None and key.valid_to - now <= skew


def is_unknown_key_error(error: KsefApiError) -> bool:
    """Tell whether KSeF refused the public key a request was encrypted with."""
    return isinstance(error, BadRequestError) and UNKNOWN_KEY_CODE in error.codes


def keys_by_usage(
    certificates: Iterable[PublishedCertificate],
) -> Mapping[KeyUsage, list[PublicKeyInfo]]:
    """Load the published certificates, grouped by the usages we know.

    A certificate whose own public key does not hash to the ``publicKeyId`` served
    with it is skipped with a warning: encrypting with it would name a key KSeF does
    not hold (section 2 defines ``publicKeyId`` as the SHA-256 of the key's DER).
    """
    grouped: dict[KeyUsage, list[PublicKeyInfo]] = {usage: [] for usage in KeyUsage}
    known = {usage.value: usage for usage in KeyUsage}

    for entry in certificates:
        loaded = load_certificate(entry.certificate)
        if loaded.public_key_id != entry.public_key_id:
            _log.warning(
                "Skipping KSeF certificate %s: its key hashes to %s.",
                entry.public_key_id,
                loaded.public_key_id,
            )
            continue

        # The served validity is authoritative; the certificate's own dates agree
        # with it in every published example.
        info = attrs.evolve(
            loaded, valid_from=entry.valid_from, valid_to=entry.valid_to
        )
        for name in entry.usages:
            if name in known:
                grouped[known[name]].append(info)

    return grouped


def challenge_timestamp_ms(timestamp: datetime | int) -> int:
    """Return milliseconds since the Unix epoch, as ``token|timestampMs`` needs.

    uwierzytelnianie.md: ``timestampMs`` is the challenge's timestamp in Unix ms.
    """
    if isinstance(timestamp, int):
        return timestamp
    if timestamp.utcoffset() is None:
        raise ValueError("challenge_timestamp must be timezone-aware.")
    return (timestamp - _EPOCH) // timedelta(milliseconds=1)


def load_preloaded_keys(
    preloaded_keys: Mapping[KeyUsage | str, PublicKeyInfo | str] | None,
) -> dict[KeyUsage, PublicKeyInfo]:
    """Normalise preloaded keys; a str is a Base64 DER certificate."""
    loaded: dict[KeyUsage, PublicKeyInfo] = {}
    for usage, key in (preloaded_keys or {}).items():
        info = load_certificate(key) if isinstance(key, str) else key
        if not isinstance(info, PublicKeyInfo):
            raise TypeError("A preloaded key is a PublicKeyInfo or a Base64 DER cert.")
        loaded[KeyUsage(usage)] = info
    return loaded
