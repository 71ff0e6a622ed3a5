"""Server-side cryptography of the simulator, independent of the client's recipes.

bezpieczenstwo/klucze-publiczne-do-szyfrowania.md: KSeF publishes X.509 certificates
(DER in Base64); ``certificateId`` is the Base64 SHA-256 of the certificate DER and
``publicKeyId`` the Base64 SHA-256 of the SubjectPublicKeyInfo DER. Clients wrap
secrets with RSA-OAEP (SHA-256, MGF1 SHA-256) and encrypt documents with
AES-256-CBC and PKCS#7 padding (sesja-interaktywna.md).

RSA keys are derived from a seed (primes drawn from a seeded generator) so that a
simulator with the same seed always publishes the same keys, and they are cached per
process because generating them is slow.
"""

from __future__ import annotations

import base64
import hashlib
import random
import threading
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID

__all__ = [
    "DecryptionError",
    "aes_cbc_decrypt",
    "aes_cbc_encrypt",
    "certificate_id",
    "declared_mismatch",
    "public_key_id",
    "rsa_oaep_decrypt",
    "seeded_rsa_key",
    "self_signed_certificate",
    "sha256_b64",
]

_KEY_BITS = 2048
_PUBLIC_EXPONENT = 65537
_SMALL_PRIMES = [
    p for p in range(3, 2000) if all(p % d for d in range(2, int(p**0.5) + 1))
]
_key_cache: dict[tuple[int, int], rsa.RSAPrivateKey] = {}
_key_lock = threading.Lock()


class DecryptionError(Exception):
    """Raised when ciphertext cannot be decrypted with the given key."""


def sha256_b64(data: bytes) -> str:
    """Return the Base64 SHA-256 of ``data``."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def declared_mismatch(data: bytes, size: int | None, digest: str | None) -> str | None:
    """Return ``"size"`` or ``"hash"`` where ``data`` is off its declaration, or None.

    A ``None`` declaration is not checked; the size is checked first.
    """
    if size is not None and len(data) != size:
        return "size"
    if digest is not None and sha256_b64(data) != digest:
        return "hash"
    return None


def _probably_prime(n: int, rng: random.Random) -> bool:
    if any(n % p == 0 for p in _SMALL_PRIMES):
        return n in _SMALL_PRIMES

    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1

    for _ in range(24):
        x = pow(rng.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _seeded_prime(bits: int, rng: random.Random) -> int:
    while True:
        candidate = rng.getrandbits(bits) | (0b11 << (bits - 2)) | 1
        if (candidate - 1) % _PUBLIC_EXPONENT and _probably_prime(candidate, rng):
            return candidate


def _generate(seed: int, index: int) -> rsa.RSAPrivateKey:
    rng = random.Random(f"ksef-sim-rsa:{seed}:{index}")
    p = _seeded_prime(_KEY_BITS // 2, rng)
    q = _seeded_prime(_KEY_BITS // 2, rng)
    while q == p:
        q = _seeded_prime(_KEY_BITS // 2, rng)

    d = pow(_PUBLIC_EXPONENT, -1, (p - 1) * (q - 1))
    public = rsa.RSAPublicNumbers(_PUBLIC_EXPONENT, p * q)
    private = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p),
        dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=public,
    )
    return private.private_key()


def seeded_rsa_key(seed: int, index: int) -> rsa.RSAPrivateKey:
    """Return the RSA-2048 key number ``index`` for ``seed``, cached per process."""
    with _key_lock:
        key = _key_cache.get((seed, index))
        if key is None:
            key = _generate(seed, index)
            _key_cache[(seed, index)] = key
        return key


def self_signed_certificate(
    key: rsa.RSAPrivateKey, serial: int, valid_from: datetime, valid_to: datetime
) -> bytes:
    """Return the DER of a self-signed certificate for ``key``."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "PL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "KSeF simulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Ministerstwo Finansów"),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


def certificate_id(certificate_der: bytes) -> str:
    """Return ``certificateId``: Base64 SHA-256 of the certificate DER."""
    return sha256_b64(certificate_der)


def public_key_id(key: rsa.RSAPrivateKey) -> str:
    """Return ``publicKeyId``: Base64 SHA-256 of the SubjectPublicKeyInfo DER."""
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return sha256_b64(spki)


def rsa_oaep_decrypt(key: rsa.RSAPrivateKey, ciphertext: bytes) -> bytes:
    """Decrypt RSA-OAEP (SHA-256, MGF1 SHA-256) ``ciphertext`` with ``key``."""
    oaep = OAEP(
        mgf=MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
    )
    try:
        return key.decrypt(ciphertext, oaep)
    except ValueError as exc:
        raise DecryptionError("RSA-OAEP decryption failed") from exc


def aes_cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """Encrypt ``data`` with AES-256-CBC and PKCS#7 padding (for export packages)."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def aes_cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """Decrypt AES-256-CBC ``ciphertext`` and strip PKCS#7 padding."""
    if len(key) != 32 or len(iv) != 16:
        raise DecryptionError("AES key must be 32 bytes and IV 16 bytes")
    if not ciphertext or len(ciphertext) % 16:
        raise DecryptionError("ciphertext length is not a multiple of the block size")

    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()

    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError as exc:
        raise DecryptionError("invalid PKCS#7 padding") from exc
