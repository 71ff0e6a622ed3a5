"""Cryptographic recipes for KSeF, the only facade module that touches primitives.

KSeF uses three: RSA-OAEP with SHA-256 (MGF1 SHA-256) to wrap a KSeF token or an AES
key with the Ministry's public key, AES-256-CBC with PKCS#7 padding for invoices and
batch parts, and SHA-256 in Base64 for every hash the API asks for
(bezpieczenstwo/klucze-publiczne-do-szyfrowania.md, sesja-interaktywna.md,
sesja-wsadowa.md).
"""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "AES_BLOCK_SIZE",
    "AES_IV_SIZE",
    "AES_KEY_SIZE",
    "AesCbcEncryptor",
    "PublicKeyInfo",
    "aes_decrypt",
    "aes_encrypt",
    "b64",
    "encrypted_size",
    "load_certificate",
    "load_public_key",
    "random_aes_key",
    "random_iv",
    "rsa_oaep_encrypt",
    "sha256_b64",
]

AES_KEY_SIZE = 32
AES_IV_SIZE = 16
AES_BLOCK_SIZE = 16


def random_aes_key() -> bytes:
    """Return a fresh random AES-256 key."""
    return os.urandom(AES_KEY_SIZE)


def random_iv() -> bytes:
    """Return a fresh random 16-byte initialisation vector."""
    return os.urandom(AES_IV_SIZE)


def b64(data: bytes | bytearray) -> str:
    """Return ``data`` in standard Base64 as text, as KSeF's JSON fields take it."""
    return base64.b64encode(data).decode("ascii")


def sha256_b64(data: bytes) -> str:
    """Return the SHA-256 of ``data`` in standard Base64, as KSeF expects hashes."""
    return b64(hashlib.sha256(data).digest())


def encrypted_size(plain_size: int) -> int:
    """Return the ciphertext size of ``plain_size`` bytes under AES-CBC with PKCS#7."""
    return (plain_size // AES_BLOCK_SIZE + 1) * AES_BLOCK_SIZE


class AesCbcEncryptor:
    """Streaming AES-256-CBC encryption with PKCS#7 padding.

    Feed plaintext with :meth:`update` in chunks of any size and call :meth:`finalize`
    once; the concatenated outputs equal :func:`aes_encrypt` of the whole input.
    """

    def __init__(self, key: bytes, iv: bytes) -> None:
        _check_key_and_iv(key, iv)
        self._padder = padding.PKCS7(AES_BLOCK_SIZE * 8).padder()
        self._encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()

    def __repr__(self) -> str:
        return "AesCbcEncryptor(<key hidden>)"

    def update(self, chunk: bytes) -> bytes:
        """Encrypt a chunk; return the ciphertext available so far."""
        return self._encryptor.update(self._padder.update(chunk))

    def finalize(self) -> bytes:
        """Pad, encrypt what is left and return the last ciphertext bytes."""
        tail = self._encryptor.update(self._padder.finalize())
        return tail + self._encryptor.finalize()


def aes_encrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    """Encrypt ``data`` with AES-256-CBC and PKCS#7 padding."""
    encryptor = AesCbcEncryptor(key, iv)
    return encryptor.update(data) + encryptor.finalize()


def aes_decrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    """Decrypt AES-256-CBC ciphertext and strip its PKCS#7 padding.

    Raises ``ValueError`` when the ciphertext length or padding is wrong.
    """
    _check_key_and_iv(key, iv)
    if not data or len(data) % AES_BLOCK_SIZE:
        raise ValueError("ciphertext length is not a positive multiple of 16 bytes")

    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()

    unpadder = padding.PKCS7(AES_BLOCK_SIZE * 8).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def _check_key_and_iv(key: bytes, iv: bytes) -> None:
    if len(key) != AES_KEY_SIZE:
        raise ValueError(f"AES key must be {AES_KEY_SIZE} bytes, got {len(key)}")
    if len(iv) != AES_IV_SIZE:
        raise ValueError(f"AES IV must be {AES_IV_SIZE} bytes, got {len(iv)}")


@attrs.frozen
class PublicKeyInfo:
    """An RSA public key published by KSeF, with its identifiers and validity."""

    public_key: rsa.RSAPublicKey = attrs.field(repr=False)
    public_key_id: str
    certificate_id: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    def is_valid_at(self, now: datetime) -> bool:
        """Tell whether the key may be used at ``now``."""
        if self.valid_from is not None and now < self.valid_from:
            return False
        return self.valid_to is None or now < self.valid_to


def load_certificate(certificate_b64: str) -> PublicKeyInfo:
    """Load a Base64 DER X.509 certificate as served by KSeF.

    ``publicKeyId`` is the SHA-256 of the DER ``SubjectPublicKeyInfo`` and
    ``certificateId`` the SHA-256 of the certificate DER, both in Base64
    (bezpieczenstwo/klucze-publiczne-do-szyfrowania.md, section 2).
    """
    der = base64.b64decode(certificate_b64, validate=True)
    certificate = x509.load_der_x509_certificate(der)
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("the KSeF certificate does not carry an RSA public key")

    return PublicKeyInfo(
        public_key=public_key,
        public_key_id=_public_key_id(public_key),
        certificate_id=sha256_b64(der),
        valid_from=certificate.not_valid_before_utc,
        valid_to=certificate.not_valid_after_utc,
    )


def load_public_key(
    public_key_b64_der: str,
    *,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
) -> PublicKeyInfo:
    """Load a Base64 DER ``SubjectPublicKeyInfo`` RSA public key."""
    der = base64.b64decode(public_key_b64_der, validate=True)
    public_key = serialization.load_der_public_key(der)
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("the public key is not an RSA key")

    return PublicKeyInfo(
        public_key=public_key,
        public_key_id=_public_key_id(public_key),
        valid_from=_as_utc(valid_from),
        valid_to=_as_utc(valid_to),
    )


def rsa_oaep_encrypt(key: PublicKeyInfo, data: bytes) -> bytes:
    """Encrypt ``data`` with RSA-OAEP, SHA-256 and MGF1 with SHA-256."""
    oaep = OAEP(
        mgf=MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
    )
    return key.public_key.encrypt(data, oaep)


def _public_key_id(public_key: rsa.RSAPublicKey) -> str:
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return sha256_b64(spki)


def _as_utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
