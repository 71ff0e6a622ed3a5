"""The simulator's published encryption keys, with rotation and withdrawal.

bezpieczenstwo/klucze-publiczne-do-szyfrowania.md: one certificate per usage
(``KsefTokenEncryption``, ``SymmetricKeyEncryption``); a planned rotation publishes a
new key next to the old one, and after the transition the old one is removed; requests
naming an unknown or withdrawn ``publicKeyId`` get error 21470.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import rsa

from .errors import ApiError
from .servercrypto import (
    DecryptionError,
    certificate_id,
    public_key_id,
    rsa_oaep_decrypt,
    seeded_rsa_key,
    self_signed_certificate,
)

__all__ = ["USAGES", "KeyStore", "PublishedKey", "unwrap"]

USAGES = ("KsefTokenEncryption", "SymmetricKeyEncryption")
_VALIDITY = timedelta(days=730)


@dataclass
class PublishedKey:
    """One key pair with its certificate, as listed by the keys endpoint."""

    usage: str
    private_key: rsa.RSAPrivateKey = field(repr=False)
    certificate_der: bytes = field(repr=False)
    valid_from: datetime
    valid_to: datetime
    withdrawn: bool = False
    # Computed once: requests naming a publicKeyId are compared against every key.
    public_key_id: str = field(init=False)
    certificate_id: str = field(init=False)

    def __post_init__(self) -> None:
        self.public_key_id = public_key_id(self.private_key)
        self.certificate_id = certificate_id(self.certificate_der)

    def to_json(self) -> dict[str, object]:
        """Return the ``PublicKeyCertificate`` object for this key."""
        return {
            "certificate": base64.b64encode(self.certificate_der).decode("ascii"),
            "certificateId": self.certificate_id,
            "publicKeyId": self.public_key_id,
            "validFrom": self.valid_from.isoformat(),
            "validTo": self.valid_to.isoformat(),
            "usage": [self.usage],
        }


def unwrap(keys: list[PublishedKey], ciphertext: bytes) -> bytes | None:
    """Return ``ciphertext`` RSA-OAEP-decrypted by the first of ``keys`` that can."""
    for key in keys:
        try:
            return rsa_oaep_decrypt(key.private_key, ciphertext)
        except DecryptionError:
            continue
    return None


class KeyStore:
    """Keys per usage, newest last, derived deterministically from a seed."""

    def __init__(self, seed: int, now: datetime) -> None:
        self._seed = seed
        self._generation = 0
        self._epoch = now.replace(microsecond=0) - timedelta(days=1)
        self._last_valid_from = self._epoch
        self.keys: list[PublishedKey] = []
        for usage in USAGES:
            self._publish(usage, now)

    def _publish(self, usage: str, now: datetime) -> PublishedKey:
        index = self._generation
        self._generation += 1

        # Each new key gets a later validFrom, already in the past, so clients that
        # prefer the newest valid certificate pick it at once.
        valid_from = max(self._last_valid_from + timedelta(seconds=1), self._epoch)
        if index >= len(USAGES):
            recent = now.replace(microsecond=0) - timedelta(minutes=1)
            valid_from = max(valid_from, recent)
        self._last_valid_from = valid_from
        valid_to = valid_from + _VALIDITY

        private_key = seeded_rsa_key(self._seed, index)
        der = self_signed_certificate(private_key, 1000 + index, valid_from, valid_to)
        key = PublishedKey(usage, private_key, der, valid_from, valid_to)
        self.keys.append(key)
        return key

    def published(self) -> list[PublishedKey]:
        """Return the keys currently listed (not withdrawn)."""
        return [key for key in self.keys if not key.withdrawn]

    def current(self, usage: str) -> PublishedKey:
        """Return the newest published key for ``usage``."""
        return [key for key in self.published() if key.usage == usage][-1]

    def candidates(self, usage: str, key_id: str | None = None) -> list[PublishedKey]:
        """Return the accepted keys for ``usage``, newest first, or the one named.

        A ``key_id`` naming no accepted key is error 21470.
        """
        keys = [key for key in reversed(self.published()) if key.usage == usage]
        if key_id is None:
            return keys

        keys = [key for key in keys if key.public_key_id == key_id]
        if not keys:
            raise ApiError(
                21470, f"Klucz o identyfikatorze {key_id} nie jest wspierany."
            )
        return keys

    def rotate(self, now: datetime, usage: str | None = None) -> list[PublishedKey]:
        """Publish a new key for ``usage`` (or every usage) next to the old ones."""
        usages = USAGES if usage is None else (usage,)
        return [self._publish(name, now) for name in usages]

    def withdraw_old(self, usage: str | None = None) -> None:
        """Withdraw every key but the newest of each usage."""
        for name in USAGES:
            if usage is not None and name != usage:
                continue
            newest = self.current(name)
            for key in self.keys:
                if key.usage == name and key is not newest:
                    key.withdrawn = True
