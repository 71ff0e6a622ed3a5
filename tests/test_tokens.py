"""Tests for the TokenProvider twins, their httpx auth and the pure token core."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ksef_facade.context import current_nip, nip_context
from ksef_facade.errors import (
    BadRequestError,
    ForbiddenError,
    KsefApiError,
    NipContextMissingError,
    ServerError,
    UnauthorizedError,
)
from ksef_facade.secrets import Secret
from ksef_facade.tokens import (
    AsyncBearerAuth,
    AsyncTokenProvider,
    BearerAuth,
    TokenAction,
    TokenKind,
    TokenProvider,
    TokenSet,
    decide,
)

START = 1_800_000_000.0
ACCESS_TTL = 900.0
REFRESH_TTL = 7 * 86_400.0
SKEW = timedelta(seconds=60)
NIP = "5260001246"
_WEIGHTS = (6, 5, 7, 2, 3, 4, 5, 6, 7)


def make_nip(seed: int) -> str:
    """Return a valid NIP derived from ``seed`` (skipping bases with check digit 10)."""
    base = 100_000_000 + seed * 7
    while True:
        digits = str(base)
        check = sum(w * int(d) for w, d in zip(_WEIGHTS, digits, strict=True)) % 11
        if check != 10:
            return digits + str(check)
        base += 1


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class FakeClock:
    """A settable Unix clock."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class FakeKsef:
    """Issues token sets and counts authentications and refreshes per NIP."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.authentications: Counter[str] = Counter()
        self.refreshes: Counter[str] = Counter()
        self.issued = 0
        self.refresh_error: Exception | None = None
        self.auth_error: Exception | None = None
        self.auth_delay = 0.0
        self.thread_gates: dict[str, threading.Event] = {}
        self.task_gates: dict[str, asyncio.Event] = {}
        self.updates: list[tuple[str, TokenKind, TokenSet]] = []
        self.update_error: Exception | None = None
        self._lock = threading.Lock()

    def issue(self, nip: str, refresh_token: Secret | None = None) -> TokenSet:
        with self._lock:
            self.issued += 1
            number = self.issued
        now = self.clock.now
        return TokenSet(
            access_token=Secret(f"access-{nip}-{number}"),
            access_valid_until=at(now + ACCESS_TTL),
            refresh_token=refresh_token or Secret(f"refresh-{nip}-{number}"),
            refresh_valid_until=at(now + REFRESH_TTL),
        )

    def _count_auth(self, nip: str) -> None:
        with self._lock:
            self.authentications[nip] += 1

    def _count_refresh(self, nip: str) -> None:
        with self._lock:
            self.refreshes[nip] += 1

    def authenticate(self) -> TokenSet:
        nip = current_nip()
        self._count_auth(nip)
        if nip in self.thread_gates:
            assert self.thread_gates[nip].wait(timeout=10)
        time.sleep(self.auth_delay)
        if self.auth_error is not None:
            raise self.auth_error
        return self.issue(nip)

    def refresh(self, refresh_token: Secret) -> TokenSet:
        nip = current_nip()
        self._count_refresh(nip)
        if self.refresh_error is not None:
            raise self.refresh_error
        return self.issue(nip, refresh_token)

    def on_update(self, nip: str, kind: TokenKind, tokens: TokenSet) -> None:
        self.updates.append((nip, kind, tokens))
        if self.update_error is not None:
            raise self.update_error

    async def authenticate_async(self) -> TokenSet:
        nip = current_nip()
        self._count_auth(nip)
        if nip in self.task_gates:
            await self.task_gates[nip].wait()
        await asyncio.sleep(self.auth_delay)
        if self.auth_error is not None:
            raise self.auth_error
        return self.issue(nip)

    async def refresh_async(self, refresh_token: Secret) -> TokenSet:
        await asyncio.sleep(0)
        return self.refresh(refresh_token)

    async def on_update_async(
        self, nip: str, kind: TokenKind, tokens: TokenSet
    ) -> None:
        await asyncio.sleep(0)
        self.on_update(nip, kind, tokens)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ksef(clock: FakeClock) -> FakeKsef:
    return FakeKsef(clock)


@pytest.fixture
def provider(ksef: FakeKsef, clock: FakeClock) -> TokenProvider:
    return TokenProvider(
        ksef.authenticate,
        ksef.refresh,
        refresh_skew=SKEW,
        on_token_update=ksef.on_update,
        clock=clock,
    )


@pytest.fixture
def async_provider(ksef: FakeKsef, clock: FakeClock) -> AsyncTokenProvider:
    return AsyncTokenProvider(
        ksef.authenticate_async,
        ksef.refresh_async,
        refresh_skew=SKEW,
        on_token_update=ksef.on_update_async,
        clock=clock,
    )


def run_threads(count: int, target: object) -> None:
    threads = [threading.Thread(target=target) for _ in range(count)]  # type: ignore[arg-type]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
        assert not thread.is_alive()


# The pure core.


def test_decide_without_tokens_authenticates() -> None:
    """No cached tokens means a full authentication."""
    assert decide(None, at(START), SKEW) is TokenAction.AUTHENTICATE


@pytest.mark.parametrize(
    ("offset", "action"),
    [
        (0, TokenAction.USE),
        (ACCESS_TTL - 61, TokenAction.USE),
        (ACCESS_TTL - 60, TokenAction.REFRESH),
        (ACCESS_TTL + 3600, TokenAction.REFRESH),
        (REFRESH_TTL - 61, TokenAction.REFRESH),
        (REFRESH_TTL - 60, TokenAction.AUTHENTICATE),
    ],
)
def test_decide_boundaries(offset: float, action: TokenAction) -> None:
    """Tokens count as expired ``skew`` before their expiry."""
    tokens = FakeKsef(FakeClock()).issue(NIP)

    assert decide(tokens, at(START + offset), SKEW) is action


def test_token_set_requires_aware_datetimes() -> None:
    """A naive expiry is rejected, since KSeF expiries are absolute instants."""
    with pytest.raises(ValueError, match="access_valid_until must be a timezone-aware"):
        TokenSet(
            access_token=Secret("a"),
            access_valid_until=datetime(2030, 1, 1),
            refresh_token=Secret("r"),
            refresh_valid_until=at(START),
        )


# Sync provider.


def test_first_call_authenticates_then_caches(
    provider: TokenProvider, ksef: FakeKsef
) -> None:
    """The first call authenticates; later calls return the cached token."""
    with nip_context(NIP):
        first = provider.access_token()
        second = provider.access_token()

    assert first is second
    assert first.reveal() == f"access-{NIP}-1"
    assert ksef.authentications[NIP] == 1


def test_requires_nip_context(provider: TokenProvider) -> None:
    """Without nip_context the provider says what is missing."""
    with pytest.raises(NipContextMissingError):
        provider.access_token()


def test_nips_get_their_own_tokens(provider: TokenProvider, ksef: FakeKsef) -> None:
    """Each NIP is authenticated separately and gets its own token."""
    other = make_nip(1)
    with nip_context(NIP):
        mine = provider.access_token()
    with nip_context(other):
        theirs = provider.access_token()

    assert mine.reveal().startswith(f"access-{NIP}-")
    assert theirs.reveal().startswith(f"access-{other}-")
    assert ksef.authentications == Counter({NIP: 1, other: 1})


def test_fifty_threads_one_nip_authenticate_once(
    provider: TokenProvider, ksef: FakeKsef
) -> None:
    """50 threads asking at once for a cold NIP cause exactly one authentication."""
    ksef.auth_delay = 0.05
    barrier = threading.Barrier(50)
    tokens: list[Secret] = []

    def worker() -> None:
        with nip_context(NIP):
            barrier.wait()
            tokens.append(provider.access_token())

    run_threads(50, worker)

    assert ksef.authentications[NIP] == 1
    assert len(tokens) == 50
    assert {t.reveal() for t in tokens} == {f"access-{NIP}-1"}


def test_stuck_authentication_blocks_no_other_nip(
    provider: TokenProvider, ksef: FakeKsef
) -> None:
    """While one NIP's authentication hangs, 39 other NIPs are served."""
    stuck = make_nip(0)
    ksef.thread_gates[stuck] = threading.Event()
    others = [make_nip(i) for i in range(1, 40)]
    served: list[str] = []

    stuck_thread = threading.Thread(target=lambda: _fetch(provider, stuck))
    stuck_thread.start()
    while ksef.authentications[stuck] == 0:
        time.sleep(0.001)

    def serve(nip: str) -> None:
        with nip_context(nip):
            provider.access_token()
        served.append(nip)

    threads = [threading.Thread(target=serve, args=(nip,)) for nip in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)

    assert sorted(served) == sorted(others)
    assert stuck_thread.is_alive()

    ksef.thread_gates[stuck].set()
    stuck_thread.join(timeout=5)
    assert ksef.authentications[stuck] == 1


def _fetch(provider: TokenProvider, nip: str) -> Secret:
    with nip_context(nip):
        return provider.access_token()


def test_refreshes_within_skew(
    provider: TokenProvider, ksef: FakeKsef, clock: FakeClock
) -> None:
    """Inside the skew before expiry the refresh token is used, not a new login."""
    with nip_context(NIP):
        first = provider.access_token()
        clock.now += ACCESS_TTL - 59
        second = provider.access_token()

    assert second != first
    assert ksef.refreshes[NIP] == 1
    assert ksef.authentications[NIP] == 1


def test_no_refresh_before_skew(
    provider: TokenProvider, ksef: FakeKsef, clock: FakeClock
) -> None:
    """Just outside the skew the cached token is still returned."""
    with nip_context(NIP):
        first = provider.access_token()
        clock.now += ACCESS_TTL - 61
        second = provider.access_token()

    assert second is first
    assert ksef.refreshes[NIP] == 0


@pytest.mark.parametrize(
    "rejection",
    [
        UnauthorizedError("expired", status_code=401),
        ForbiddenError("no", status_code=403),
        BadRequestError("revoked", status_code=400, codes=(21301,)),
        BadRequestError("unknown", status_code=400, codes=(21304,)),
    ],
)
def test_rejected_refresh_falls_back_to_authentication(
    provider: TokenProvider,
    ksef: FakeKsef,
    clock: FakeClock,
    rejection: KsefApiError,
) -> None:
    """A refresh token KSeF no longer accepts leads to a full authentication."""
    ksef.refresh_error = rejection
    with nip_context(NIP):
        provider.access_token()
        clock.now += ACCESS_TTL
        token = provider.access_token()

    assert ksef.refreshes[NIP] == 1
    assert ksef.authentications[NIP] == 2
    assert token.reveal() == f"access-{NIP}-2"


@pytest.mark.parametrize(
    "failure",
    [
        ServerError("down", status_code=503),
        BadRequestError("other", status_code=400, codes=(21405,)),
    ],
)
def test_other_refresh_failures_propagate(
    provider: TokenProvider, ksef: FakeKsef, clock: FakeClock, failure: KsefApiError
) -> None:
    """A refresh failing for another reason is raised, with no new login."""
    ksef.refresh_error = failure
    with nip_context(NIP):
        provider.access_token()
        clock.now += ACCESS_TTL

        with pytest.raises(type(failure)):
            provider.access_token()

    assert ksef.authentications[NIP] == 1


def test_expired_refresh_token_authenticates_directly(
    provider: TokenProvider, ksef: FakeKsef, clock: FakeClock
) -> None:
    """Once the refresh token is past its expiry, no refresh is attempted."""
    with nip_context(NIP):
        provider.access_token()
        clock.now += REFRESH_TTL
        provider.access_token()

    assert ksef.refreshes[NIP] == 0
    assert ksef.authentications[NIP] == 2


def test_update_callback_kinds(
    provider: TokenProvider, ksef: FakeKsef, clock: FakeClock
) -> None:
    """Authentication reports 'refresh' (both new), a refresh reports 'access'."""
    with nip_context(NIP):
        first = provider.access_token()
        clock.now += ACCESS_TTL
        second = provider.access_token()

    assert [(nip, kind) for nip, kind, _ in ksef.updates] == [
        (NIP, "refresh"),
        (NIP, "access"),
    ]
    assert ksef.updates[0][2].access_token == first
    assert ksef.updates[1][2].access_token == second


def test_update_callback_error_reaches_caller(
    provider: TokenProvider, ksef: FakeKsef
) -> None:
    """An exception from the callback is raised from access_token()."""
    ksef.update_error = OSError("disk full")

    with nip_context(NIP), pytest.raises(OSError, match="disk full"):
        provider.access_token()


def test_update_callback_error_keeps_token_cached(
    provider: TokenProvider, ksef: FakeKsef
) -> None:
    """After a callback failure the new token is cached, so KSeF is not asked again."""
    ksef.update_error = OSError("disk full")
    with nip_context(NIP):
        with pytest.raises(OSError, match="disk full"):
            provider.access_token()
        ksef.update_error = None
        provider.access_token()

    assert ksef.authentications[NIP] == 1


def test_failed_authentication_is_shared_by_waiters(
    provider: TokenProvider, ksef: FakeKsef
) -> None:
    """Callers waiting on a failing authentication get its error, not a retry each."""
    ksef.auth_delay = 0.05
    ksef.auth_error = ServerError("down", status_code=503)
    barrier = threading.Barrier(10)
    errors: list[BaseException] = []

    def worker() -> None:
        with nip_context(NIP):
            barrier.wait()
            try:
                provider.access_token()
            except ServerError as error:
                errors.append(error)

    run_threads(10, worker)

    assert ksef.authentications[NIP] == 1
    assert len(errors) == 10


def test_next_call_after_failure_tries_again(
    provider: TokenProvider, ksef: FakeKsef
) -> None:
    """A failure is not cached: the next caller authenticates anew."""
    ksef.auth_error = ServerError("down", status_code=503)
    with nip_context(NIP):
        with pytest.raises(ServerError):
            provider.access_token()
        ksef.auth_error = None
        provider.access_token()

    assert ksef.authentications[NIP] == 2


def test_seed_tokens_skips_authentication(
    provider: TokenProvider, ksef: FakeKsef
) -> None:
    """Seeded tokens are used as they are, without calling KSeF."""
    seeded = ksef.issue(NIP)
    with nip_context(NIP):
        provider.seed_tokens(seeded)
        token = provider.access_token()
        cached = provider.cached_tokens()

    assert token is seeded.access_token
    assert cached is seeded
    assert ksef.authentications[NIP] == 0
    assert ksef.updates == []


def test_seed_tokens_rejects_other_types(provider: TokenProvider) -> None:
    """Seeding anything but a TokenSet is a TypeError."""
    with nip_context(NIP), pytest.raises(TypeError, match="must be a TokenSet"):
        provider.seed_tokens({"access": "x"})  # type: ignore[arg-type]


def test_seed_tokens_only_for_context_nip(
    provider: TokenProvider, ksef: FakeKsef
) -> None:
    """Tokens seeded for one NIP are not used for another."""
    with nip_context(NIP):
        provider.seed_tokens(ksef.issue(NIP))
    with nip_context(make_nip(1)):
        provider.access_token()

    assert ksef.authentications[make_nip(1)] == 1


def test_invalidate_makes_next_call_refresh(
    provider: TokenProvider, ksef: FakeKsef
) -> None:
    """After invalidate() the next call refreshes with the still valid refresh token."""
    with nip_context(NIP):
        first = provider.access_token()
        provider.invalidate()
        second = provider.access_token()

    assert second != first
    assert ksef.refreshes[NIP] == 1
    assert ksef.authentications[NIP] == 1


def test_invalidate_with_stale_token_keeps_newer(
    provider: TokenProvider, ksef: FakeKsef
) -> None:
    """invalidate(old) after a newer token was cached leaves the newer one alone."""
    with nip_context(NIP):
        old = provider.access_token()
        provider.invalidate(old)
        new = provider.access_token()
        provider.invalidate(old)
        again = provider.access_token()

    assert again is new
    assert ksef.refreshes[NIP] == 1


def test_invalidate_without_tokens_is_harmless(provider: TokenProvider) -> None:
    """Invalidating a NIP with nothing cached does nothing."""
    with nip_context(NIP):
        provider.invalidate()

        assert provider.cached_tokens() is None


def test_negative_skew_rejected(ksef: FakeKsef) -> None:
    """A negative refresh_skew is a ValueError."""
    with pytest.raises(ValueError, match="refresh_skew"):
        TokenProvider(ksef.authenticate, ksef.refresh, refresh_skew=timedelta(-1))


def test_provider_repr_is_short(provider: TokenProvider, ksef: FakeKsef) -> None:
    """The repr counts NIPs and shows no token."""
    with nip_context(NIP):
        token = provider.access_token()

    assert repr(provider) == "TokenProvider(nips=1)"
    assert token.reveal() not in repr(provider)


# Async provider.


async def test_async_first_call_authenticates_then_caches(
    async_provider: AsyncTokenProvider, ksef: FakeKsef
) -> None:
    """The first await authenticates; later ones return the cached token."""
    with nip_context(NIP):
        first = await async_provider.access_token()
        second = await async_provider.access_token()

    assert first is second
    assert ksef.authentications[NIP] == 1


async def test_async_fifty_tasks_one_nip_authenticate_once(
    async_provider: AsyncTokenProvider, ksef: FakeKsef
) -> None:
    """50 tasks asking at once for a cold NIP cause exactly one authentication."""
    ksef.auth_delay = 0.02

    async def worker() -> Secret:
        with nip_context(NIP):
            return await async_provider.access_token()

    tokens = await asyncio.gather(*(worker() for _ in range(50)))

    assert ksef.authentications[NIP] == 1
    assert {t.reveal() for t in tokens} == {f"access-{NIP}-1"}


async def test_async_stuck_authentication_blocks_no_other_nip(
    async_provider: AsyncTokenProvider, ksef: FakeKsef
) -> None:
    """While one NIP's authentication hangs, 39 other NIPs' tasks complete."""
    stuck = make_nip(0)
    ksef.task_gates[stuck] = asyncio.Event()

    async def fetch(nip: str) -> Secret:
        with nip_context(nip):
            return await async_provider.access_token()

    stuck_task = asyncio.ensure_future(fetch(stuck))
    await asyncio.sleep(0)
    others = [make_nip(i) for i in range(1, 40)]
    tokens = await asyncio.wait_for(
        asyncio.gather(*(fetch(nip) for nip in others)), timeout=5
    )

    assert len(tokens) == 39
    assert not stuck_task.done()

    ksef.task_gates[stuck].set()
    await asyncio.wait_for(stuck_task, timeout=5)
    assert ksef.authentications[stuck] == 1


async def test_async_refreshes_within_skew(
    async_provider: AsyncTokenProvider, ksef: FakeKsef, clock: FakeClock
) -> None:
    """Inside the skew the async provider refreshes and reports kind 'access'."""
    with nip_context(NIP):
        await async_provider.access_token()
        clock.now += ACCESS_TTL - 30
        await async_provider.access_token()

    assert ksef.refreshes[NIP] == 1
    assert [kind for _, kind, _ in ksef.updates] == ["refresh", "access"]


async def test_async_rejected_refresh_falls_back(
    async_provider: AsyncTokenProvider, ksef: FakeKsef, clock: FakeClock
) -> None:
    """A 401 on refresh leads the async provider to authenticate again."""
    ksef.refresh_error = UnauthorizedError("expired", status_code=401)
    with nip_context(NIP):
        await async_provider.access_token()
        clock.now += ACCESS_TTL
        await async_provider.access_token()

    assert ksef.authentications[NIP] == 2


async def test_async_update_callback_error_reaches_caller(
    async_provider: AsyncTokenProvider, ksef: FakeKsef
) -> None:
    """The async callback's exception is raised from access_token()."""
    ksef.update_error = OSError("disk full")

    with nip_context(NIP), pytest.raises(OSError, match="disk full"):
        await async_provider.access_token()


async def test_async_failed_authentication_is_shared(
    async_provider: AsyncTokenProvider, ksef: FakeKsef
) -> None:
    """Tasks waiting on a failing authentication share its error."""
    ksef.auth_delay = 0.02
    ksef.auth_error = ServerError("down", status_code=503)

    async def worker() -> BaseException | Secret:
        with nip_context(NIP):
            try:
                return await async_provider.access_token()
            except ServerError as error:
                return error

    results = await asyncio.gather(*(worker() for _ in range(10)))

    assert ksef.authentications[NIP] == 1
    assert all(isinstance(r, ServerError) for r in results)


async def test_async_seed_and_invalidate(
    async_provider: AsyncTokenProvider, ksef: FakeKsef
) -> None:
    """Seeded tokens are used; invalidate() makes the next await refresh."""
    seeded = ksef.issue(NIP)
    with nip_context(NIP):
        async_provider.seed_tokens(seeded)
        first = await async_provider.access_token()
        async_provider.invalidate(first)
        second = await async_provider.access_token()

    assert first is seeded.access_token
    assert second != first
    assert ksef.authentications[NIP] == 0
    assert ksef.refreshes[NIP] == 1


# httpx auth.


class RevokingServer:
    """A MockTransport handler that rejects revoked tokens with 401."""

    def __init__(self, revoked: set[str]) -> None:
        self.revoked = revoked
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        header = request.headers.get("Authorization", "")
        self.seen.append(header)
        token = header.removeprefix("Bearer ")
        if not header.startswith("Bearer ") or token in self.revoked:
            return httpx.Response(401, json={"title": "Unauthorized", "status": 401})
        return httpx.Response(200, json={"ok": True, "body": request.content.decode()})


def test_bearer_sets_authorization(provider: TokenProvider) -> None:
    """Requests carry the current NIP's access token."""
    server = RevokingServer(set())
    with (
        httpx.Client(transport=httpx.MockTransport(server)) as client,
        nip_context(NIP),
    ):
        response = client.get("https://ksef.test/x", auth=BearerAuth(provider))
        token = provider.access_token()

    assert response.status_code == 200
    assert server.seen == [f"Bearer {token.reveal()}"]


def test_bearer_replays_once_after_401(provider: TokenProvider, ksef: FakeKsef) -> None:
    """A 401 drops the token and the request is replayed with a new one, body intact."""
    seeded = ksef.issue(NIP)
    server = RevokingServer({seeded.access_token.reveal()})
    with (
        httpx.Client(transport=httpx.MockTransport(server)) as client,
        nip_context(NIP),
    ):
        provider.seed_tokens(seeded)
        response = client.post(
            "https://ksef.test/x", content=b"payload", auth=BearerAuth(provider)
        )

    assert response.status_code == 200
    assert response.json()["body"] == "payload"
    assert len(server.seen) == 2
    assert server.seen[0] != server.seen[1]
    assert ksef.refreshes[NIP] == 1


def test_bearer_gives_up_after_second_401(provider: TokenProvider) -> None:
    """If the fresh token is rejected too, the 401 is returned, not looped on."""
    server = RevokingServer(set())
    server.revoked = _AllTokens()
    with (
        httpx.Client(transport=httpx.MockTransport(server)) as client,
        nip_context(NIP),
    ):
        response = client.get("https://ksef.test/x", auth=BearerAuth(provider))

    assert response.status_code == 401
    assert len(server.seen) == 2


class _AllTokens(set[str]):
    def __contains__(self, item: object) -> bool:
        return True


def test_sync_bearer_refuses_async_client(provider: TokenProvider) -> None:
    """Using the sync auth with httpx.AsyncClient fails loudly."""

    async def attempt() -> None:
        transport = httpx.MockTransport(RevokingServer(set()))
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get("https://ksef.test/x", auth=BearerAuth(provider))

    with nip_context(NIP), pytest.raises(RuntimeError, match="cannot serve"):
        asyncio.run(attempt())


async def test_async_bearer_replays_once_after_401(
    async_provider: AsyncTokenProvider, ksef: FakeKsef
) -> None:
    """The async auth replays after a 401 with a refreshed token."""
    seeded = ksef.issue(NIP)
    server = RevokingServer({seeded.access_token.reveal()})
    transport = httpx.MockTransport(server)
    async with httpx.AsyncClient(transport=transport) as client:
        with nip_context(NIP):
            async_provider.seed_tokens(seeded)
            response = await client.get(
                "https://ksef.test/x", auth=AsyncBearerAuth(async_provider)
            )

    assert response.status_code == 200
    assert len(server.seen) == 2
    assert ksef.refreshes[NIP] == 1


def test_async_bearer_refuses_sync_client(async_provider: AsyncTokenProvider) -> None:
    """Using the async auth with httpx.Client fails loudly."""
    with (
        httpx.Client(transport=httpx.MockTransport(RevokingServer(set()))) as client,
        nip_context(NIP),
        pytest.raises(RuntimeError, match="cannot serve"),
    ):
        client.get("https://ksef.test/x", auth=AsyncBearerAuth(async_provider))


def test_warns_when_new_token_is_already_due(
    ksef: FakeKsef, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A skew longer than the token's life is reported instead of silently looping."""
    provider = TokenProvider(
        ksef.authenticate, ksef.refresh, refresh_skew=timedelta(hours=1), clock=clock
    )

    with nip_context(NIP):
        token = provider.access_token()

    assert token.reveal() == f"access-{NIP}-1"
    assert "expires within refresh_skew" in caplog.text
