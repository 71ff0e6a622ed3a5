"""KSeF's public encryption keys: fetched lazily, cached per usage, used to encrypt.

bezpieczenstwo/klucze-publiczne-do-szyfrowania.md: the certificates come from
``GET /security/public-key-certificates``; a KSeF token is encrypted with the
``KsefTokenEncryption`` key and an invoice AES key with the ``SymmetricKeyEncryption``
key, both with RSA-OAEP and SHA-256. The key choice and the refresh rule live in
:mod:`ksef_facade.keys`; this shell only fetches and encrypts.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import TypeVar

from ksef_api.models import EncryptionInfo
from ksef_facade import keys
from ksef_facade._clock import utc_now
from ksef_facade._concurrency import AsyncLock
from ksef_facade.crypto import PublicKeyInfo, b64, rsa_oaep_encrypt
from ksef_facade.errors import KsefApiError, KsefError
from ksef_facade.keys import (
    DEFAULT_REFRESH_SKEW,
    EncryptedData,
    KeyUsage,
    PublishedCertificate,
    is_unknown_key_error,
)
from ksef_facade.secrets import Secret, SecretBytes

__all__ = ["AsyncEncryptionService", "async_send_with_session_key"]

_log = logging.getLogger("ksef_facade.encryption")

T = TypeVar("T")

_Certificates = list[PublishedCertificate]
FetchCertificates = Callable[[], Awaitable[_Certificates]]


class AsyncEncryptionService:
    """Encrypts KSeF tokens and AES keys with KSeF's current public keys.

    Nothing is fetched at construction: the keys list is read on first use, and
    again when the cached key for a usage is within ``refresh_skew`` of its
    ``validTo``. Keys passed in ``preloaded_keys`` (a :class:`PublicKeyInfo` from
    :func:`ksef_facade.crypto.load_public_key` or a Base64 DER certificate) are used
    without any API call for as long as they are valid.
    """

    def __init__(
        self,
        fetch_certificates: FetchCertificates | None,
        *,
        preloaded_keys: Mapping[KeyUsage | str, PublicKeyInfo | str] | None = None,
        refresh_skew: timedelta = DEFAULT_REFRESH_SKEW,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._fetch = fetch_certificates
        self._skew = refresh_skew
        self._clock = clock
        self._keys: dict[KeyUsage, PublicKeyInfo] = keys.load_preloaded_keys(
            preloaded_keys
        )
        self._lock = AsyncLock()

    def __repr__(self) -> str:
        cached = ", ".join(sorted(usage.value for usage in self._keys))
        return f"{type(self).__name__}(cached=[{cached}])"

    async def public_key_for(self, usage: KeyUsage | str) -> PublicKeyInfo:
        """Return the key to use now for ``usage``, fetching the list if needed."""
        usage = KeyUsage(usage)
        key = self._keys.get(usage)
        if key is not None and not keys.needs_refresh(key, self._clock(), self._skew):
            return key

        async with self._lock:
            key = self._keys.get(usage)
            if keys.needs_refresh(key, self._clock(), self._skew):
                await self._refresh()
                key = self._keys.get(usage)

        if key is None or not key.is_valid_at(self._clock()):
            raise KsefError(f"KSeF publishes no currently valid {usage.value} key.")
        return key

    async def force_refresh(self) -> None:
        """Fetch the keys list now and replace both cached keys."""
        async with self._lock:
            await self._refresh()

    async def refresh_if_current(
        self, usage: KeyUsage | str, public_key_id: str
    ) -> None:
        """Refresh the keys unless ``public_key_id`` was already replaced.

        Used after KSeF rejected a key (error 21470): of many callers that saw the
        rejection at once, only the first fetches the list again.
        """
        usage = KeyUsage(usage)
        async with self._lock:
            current = self._keys.get(usage)
            if current is None or current.public_key_id == public_key_id:
                _log.warning(
                    "KSeF rejected %s key %s; fetching the keys again.",
                    usage.value,
                    public_key_id,
                )
                await self._refresh()

    async def encrypt_ksef_token(
        self, token: Secret, challenge_timestamp: datetime | int
    ) -> EncryptedData:
        """Encrypt ``token|timestampMs`` with the KsefTokenEncryption key.

        uwierzytelnianie.md, 2.2: ``timestampMs`` is the challenge's timestamp in
        milliseconds since the Unix epoch (``timestampMs`` of ``POST /auth/challenge``
        may be passed as it is); RSA-OAEP with SHA-256.
        """
        if not isinstance(token, Secret):
            raise TypeError("token must be a Secret.")

        key = await self.public_key_for(KeyUsage.KSEF_TOKEN)
        timestamp_ms = keys.challenge_timestamp_ms(challenge_timestamp)
        plain = f"{token.reveal()}|{timestamp_ms}".encode()
        return EncryptedData(rsa_oaep_encrypt(key, plain), key.public_key_id)

    async def encrypt_symmetric_key(self, key: bytes | SecretBytes) -> EncryptedData:
        """Encrypt an AES key with the SymmetricKeyEncryption key (RSA-OAEP-SHA256)."""
        raw = key.reveal() if isinstance(key, SecretBytes) else key
        if not isinstance(raw, bytes):
            raise TypeError("key must be bytes or SecretBytes.")

        public_key = await self.public_key_for(KeyUsage.SYMMETRIC_KEY)
        return EncryptedData(
            rsa_oaep_encrypt(public_key, raw), public_key.public_key_id
        )

    async def _refresh(self) -> None:
        """Fetch the certificates and cache the best key per usage (lock held)."""
        if self._fetch is None:
            raise KsefError(
                "The preloaded KSeF keys are not usable now and this encryption "
                "service has no API to fetch new ones."
            )

        certificates = await self._fetch()
        grouped = keys.keys_by_usage(certificates)
        now = self._clock()
        for usage, candidates in grouped.items():
            chosen = keys.select_key(candidates, now)
            if chosen is None:
                self._keys.pop(usage, None)
                continue
            self._keys[usage] = chosen
            _log.debug("Using KSeF %s key %s.", usage.value, chosen.public_key_id)


async def async_send_with_session_key(
    encryption: AsyncEncryptionService,
    key: SecretBytes,
    iv: bytes,
    send: Callable[[EncryptionInfo], Awaitable[T]],
) -> T:
    """Call ``send`` with a session's AES key and IV as KSeF's ``EncryptionInfo``.

    The key is encrypted with the current SymmetricKeyEncryption key. When KSeF
    rejects that key (21470), the keys are fetched again and ``send`` is called
    once more (klucze-publiczne-do-szyfrowania.md, 4.4).
    """
    for attempt in (1, 2):
        encrypted = await encryption.encrypt_symmetric_key(key)
        info = EncryptionInfo(
            encrypted_symmetric_key=b64(encrypted.ciphertext),
            initialization_vector=b64(iv),
            public_key_id=encrypted.public_key_id,
        )

        try:
            return await send(info)
        except KsefApiError as error:
            if attempt == 2 or not is_unknown_key_error(error):
                raise
            await encryption.refresh_if_current(
                KeyUsage.SYMMETRIC_KEY, encrypted.public_key_id
            )

    raise AssertionError("unreachable: the second attempt returns or raises")
