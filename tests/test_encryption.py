"""EncryptionService: lazy keys, preloading, refresh, and the two encryptions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from test_key_selection import NOW, certificate_b64, private_key, published

from ksef_facade import Environment, Secret, SecretBytes
from ksef_facade._async.api import AsyncKsefApi
from ksef_facade._async.encryption import AsyncEncryptionService
from ksef_facade._sync.api import KsefApi
from ksef_facade._sync.encryption import EncryptionService
from ksef_facade.crypto import load_public_key, random_aes_key
from ksef_facade.errors import KsefError
from ksef_facade.keys import KeyUsage, PublishedCertificate
from ksef_facade.testing.pytest_plugin import SimulatorEnv, simulator_env

DAY = timedelta(days=1)


@pytest.fixture
def env() -> Iterator[SimulatorEnv]:
    """A fresh in-process simulator."""
    yield from simulator_env(in_process=True)


@pytest.fixture
def loopback_env() -> Iterator[SimulatorEnv]:
    """A fresh simulator served on a 127.0.0.1 port."""
    yield from simulator_env(in_process=False)


OAEP = padding.OAEP(
    mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
)


def decrypt(index: int, ciphertext: bytes) -> bytes:
    """Decrypt with test key ``index``, as KSeF would with its private key."""
    return private_key(index).decrypt(ciphertext, OAEP)


class FakeKeysEndpoint:
    """Serves a keys list and counts how often it was fetched."""

    def __init__(self, entries: list[PublishedCertificate]) -> None:
        self.entries = entries
        self.calls = 0

    async def afetch(self) -> list[PublishedCertificate]:
        self.calls += 1
        return list(self.entries)

    def fetch(self) -> list[PublishedCertificate]:
        self.calls += 1
        return list(self.entries)


def keys_list(token_index: int = 0, symmetric_index: int = 1) -> FakeKeysEndpoint:
    """A keys endpoint with one key per usage, valid for a year around NOW."""
    return FakeKeysEndpoint(
        [
            published(token_index, KeyUsage.KSEF_TOKEN, NOW - DAY, NOW + 365 * DAY),
            published(
                symmetric_index, KeyUsage.SYMMETRIC_KEY, NOW - DAY, NOW + 365 * DAY
            ),
        ]
    )


class Clock:
    """A settable clock."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def never_called() -> list[PublishedCertificate]:
    raise AssertionError("the keys endpoint must not be called")


async def anever_called() -> list[PublishedCertificate]:
    raise AssertionError("the keys endpoint must not be called")


async def test_construction_fetches_nothing() -> None:
    """Building the service makes no API call."""
    endpoint = keys_list()

    AsyncEncryptionService(endpoint.afetch, clock=Clock())

    assert endpoint.calls == 0


async def test_first_use_fetches_once() -> None:
    """The keys are fetched on first use and then served from the cache."""
    endpoint = keys_list()
    service = AsyncEncryptionService(endpoint.afetch, clock=Clock())

    await service.encrypt_symmetric_key(random_aes_key())
    await service.encrypt_ksef_token(Secret("t"), 1)

    assert endpoint.calls == 1


async def test_ksef_token_plaintext_is_token_pipe_millis() -> None:
    """The KSeF token is encrypted as 'token|timestampMs' (uwierzytelnianie.md 2.2)."""
    service = AsyncEncryptionService(keys_list().afetch, clock=Clock())
    challenge_time = datetime(2025, 7, 11, 12, 23, 56, 15000, tzinfo=UTC)

    encrypted = await service.encrypt_ksef_token(Secret("my-token"), challenge_time)

    assert decrypt(0, encrypted.ciphertext) == b"my-token|1752236636015"


async def test_ksef_token_accepts_timestamp_ms() -> None:
    """The challenge's timestampMs may be passed as an int."""
    service = AsyncEncryptionService(keys_list().afetch, clock=Clock())

    encrypted = await service.encrypt_ksef_token(Secret("abc"), 1752236636015)

    assert decrypt(0, encrypted.ciphertext) == b"abc|1752236636015"


async def test_naive_timestamp_rejected() -> None:
    """A timestamp without a timezone is a programming error."""
    service = AsyncEncryptionService(keys_list().afetch, clock=Clock())

    with pytest.raises(ValueError, match="timezone"):
        await service.encrypt_ksef_token(Secret("abc"), datetime(2025, 1, 1))


async def test_symmetric_key_encrypted_with_its_key_id() -> None:
    """The AES key is encrypted with the SymmetricKeyEncryption key and names it."""
    endpoint = keys_list()
    service = AsyncEncryptionService(endpoint.afetch, clock=Clock())
    aes_key = random_aes_key()

    ciphertext, key_id = await service.encrypt_symmetric_key(SecretBytes(aes_key))

    assert decrypt(1, ciphertext) == aes_key
    assert key_id == endpoint.entries[1].public_key_id


async def test_preloaded_certificates_need_no_api() -> None:
    """Preloaded Base64 certificates are used without any API call."""
    service = AsyncEncryptionService(
        anever_called,
        preloaded_keys={
            KeyUsage.KSEF_TOKEN: certificate_b64(0, NOW - DAY, NOW + DAY),
            "SymmetricKeyEncryption": certificate_b64(1, NOW - DAY, NOW + DAY),
        },
        clock=Clock(),
    )

    token = await service.encrypt_ksef_token(Secret("x"), 5)
    aes = await service.encrypt_symmetric_key(b"k" * 32)

    assert decrypt(0, token.ciphertext) == b"x|5"
    assert decrypt(1, aes.ciphertext) == b"k" * 32


def test_preloaded_public_key_without_validity_sync() -> None:
    """A preloaded bare public key with no dates serves forever (sync twin)."""
    der = (
        private_key(1)
        .public_key()
        .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    import base64

    key = load_public_key(base64.b64encode(der).decode())
    service = EncryptionService(
        never_called,
        preloaded_keys={KeyUsage.SYMMETRIC_KEY: key},
        clock=Clock(NOW + 10_000 * DAY),
    )

    ciphertext, key_id = service.encrypt_symmetric_key(b"z" * 32)

    assert decrypt(1, ciphertext) == b"z" * 32
    assert key_id == key.public_key_id


async def test_preloaded_key_near_expiry_is_refreshed() -> None:
    """A preloaded key within refresh_skew of validTo is replaced from the API."""
    endpoint = keys_list(token_index=2)
    clock = Clock()
    service = AsyncEncryptionService(
        endpoint.afetch,
        preloaded_keys={
            KeyUsage.KSEF_TOKEN: certificate_b64(
                0, NOW - DAY, NOW + timedelta(minutes=1)
            )
        },
        clock=clock,
    )

    encrypted = await service.encrypt_ksef_token(Secret("t"), 7)

    assert endpoint.calls == 1
    assert decrypt(2, encrypted.ciphertext) == b"t|7"


async def test_refresh_skew_is_configurable() -> None:
    """With a one-hour skew a key expiring in 30 minutes is refreshed."""
    endpoint = FakeKeysEndpoint(
        [published(0, KeyUsage.KSEF_TOKEN, NOW - DAY, NOW + timedelta(minutes=30))]
    )
    clock = Clock()
    service = AsyncEncryptionService(
        endpoint.afetch, refresh_skew=timedelta(hours=1), clock=clock
    )

    await service.public_key_for(KeyUsage.KSEF_TOKEN)
    await service.public_key_for(KeyUsage.KSEF_TOKEN)

    assert endpoint.calls == 2


async def test_expired_cache_fetches_again() -> None:
    """When the clock passes validTo minus the skew the list is fetched again."""
    endpoint = keys_list()
    clock = Clock()
    service = AsyncEncryptionService(endpoint.afetch, clock=clock)
    await service.public_key_for(KeyUsage.SYMMETRIC_KEY)
    endpoint.entries = [
        published(3, KeyUsage.SYMMETRIC_KEY, NOW + 300 * DAY, NOW + 900 * DAY)
    ]

    clock.now = NOW + 365 * DAY - timedelta(minutes=1)
    key = await service.public_key_for(KeyUsage.SYMMETRIC_KEY)

    assert endpoint.calls == 2
    assert key.public_key_id == endpoint.entries[0].public_key_id


async def test_force_refresh_replaces_keys() -> None:
    """force_refresh fetches at once and the new key is used afterwards."""
    endpoint = keys_list()
    service = AsyncEncryptionService(endpoint.afetch, clock=Clock())
    await service.public_key_for(KeyUsage.KSEF_TOKEN)
    endpoint.entries = keys_list(token_index=4).entries

    await service.force_refresh()
    key = await service.public_key_for(KeyUsage.KSEF_TOKEN)

    assert endpoint.calls == 2
    assert key.public_key_id == endpoint.entries[0].public_key_id


async def test_refresh_if_current_fetches_once_per_rejected_key() -> None:
    """Several callers reporting the same rejected key cause one fetch."""
    endpoint = keys_list()
    service = AsyncEncryptionService(endpoint.afetch, clock=Clock())
    rejected = (await service.public_key_for(KeyUsage.KSEF_TOKEN)).public_key_id
    endpoint.entries = keys_list(token_index=5).entries

    await service.refresh_if_current(KeyUsage.KSEF_TOKEN, rejected)
    await service.refresh_if_current(KeyUsage.KSEF_TOKEN, rejected)

    assert endpoint.calls == 2


async def test_no_valid_key_is_a_clear_error() -> None:
    """When KSeF lists no valid key for a usage the error names the usage."""
    endpoint = FakeKeysEndpoint(
        [published(0, KeyUsage.KSEF_TOKEN, NOW - 9 * DAY, NOW - DAY)]
    )
    service = AsyncEncryptionService(endpoint.afetch, clock=Clock())

    with pytest.raises(KsefError, match="KsefTokenEncryption"):
        await service.public_key_for(KeyUsage.KSEF_TOKEN)


def test_expired_preload_without_api_is_a_clear_error() -> None:
    """An expired preloaded key with no API to refresh from is reported."""
    service = EncryptionService(
        None,
        preloaded_keys={
            KeyUsage.KSEF_TOKEN: certificate_b64(0, NOW - 9 * DAY, NOW - DAY)
        },
        clock=Clock(),
    )

    with pytest.raises(KsefError, match="no API"):
        service.encrypt_ksef_token(Secret("t"), 1)


def test_sync_service_fetches_lazily() -> None:
    """The blocking twin also fetches on first use only."""
    endpoint = keys_list()
    service = EncryptionService(endpoint.fetch, clock=Clock())
    assert endpoint.calls == 0

    service.encrypt_symmetric_key(random_aes_key())

    assert endpoint.calls == 1


def test_repr_shows_no_key_material() -> None:
    """The repr lists cached usages only."""
    service = EncryptionService(
        None, preloaded_keys={KeyUsage.KSEF_TOKEN: certificate_b64(0, NOW, NOW + DAY)}
    )

    assert repr(service) == "EncryptionService(cached=[KsefTokenEncryption])"


async def test_keys_from_simulator_match_their_ids(
    env: SimulatorEnv,
) -> None:
    """Keys fetched from the simulator carry the publicKeyId it publishes."""
    api = AsyncKsefApi(
        Environment.custom(env.base_url), transport=env.sim.async_transport()
    )
    service = AsyncEncryptionService(api.get_public_key_certificates)

    _, key_id = await service.encrypt_symmetric_key(random_aes_key())
    await api.aclose()

    published_ids = {key.public_key_id for key in env.sim.keys.keys}
    assert key_id in published_ids


def test_keys_from_simulator_over_loopback(loopback_env: SimulatorEnv) -> None:
    """The blocking service fetches the simulator's keys over a real socket."""
    api = KsefApi(Environment.custom(loopback_env.base_url))
    service = EncryptionService(api.get_public_key_certificates)

    key = service.public_key_for(KeyUsage.KSEF_TOKEN)
    api.close()

    assert key.public_key_id in {k.public_key_id for k in loopback_env.sim.keys.keys}
