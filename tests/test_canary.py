"""No secret reaches a log record, a repr, a str or an exception message.

``leak_check`` plants nothing by itself: a test builds objects with ``CANARY`` as
every secret, exercises them with all loggers at DEBUG, and hands the objects and
any exceptions to the fixture. At teardown every captured log record is checked too.
Add a test here for each public object that holds a secret.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ksef_facade.context import nip_context
from ksef_facade.errors import KsefError, error_from_response
from ksef_facade.secrets import Secret, SecretBytes
from ksef_facade.token_cache import TokenSet
from ksef_facade.tokens import (
    AsyncBearerAuth,
    AsyncTokenProvider,
    BearerAuth,
    TokenProvider,
)

CANARY = "CANARY-5ecr3t-7a1b9c-token"
_WATCHED_LOGGERS = ("", "ksef_facade", "httpx", "httpcore")


class LeakCheck:
    """Collects objects and exceptions and asserts the canary is in none of them."""

    def __init__(self, canary: str, caplog: pytest.LogCaptureFixture) -> None:
        self.canary = canary
        self._caplog = caplog

    def check_object(self, obj: object) -> None:
        """Assert that neither repr(obj) nor str(obj) shows the canary."""
        assert self.canary not in repr(obj), f"canary in repr of {type(obj)}"
        assert self.canary not in str(obj), f"canary in str of {type(obj)}"

    def check_exception(self, error: BaseException) -> None:
        """Assert the canary is in no message, arg or traceback text of the chain."""
        text = "".join(traceback.format_exception(error))
        assert self.canary not in text, f"canary in {type(error).__name__} chain"
        for arg in error.args:
            assert self.canary not in repr(arg)

    def check_logs(self) -> None:
        """Assert no captured record carries the canary in message, args or trace."""
        assert self._caplog.records is not None
        for record in self._caplog.records:
            where = f"log record from {record.name}"
            assert self.canary not in record.getMessage(), where
            assert self.canary not in repr(record.args), where
            assert self.canary not in (record.exc_text or ""), where
            if record.exc_info and record.exc_info[1] is not None:
                self.check_exception(record.exc_info[1])

    @property
    def record_count(self) -> int:
        """How many records were captured, so a test can prove logging happened."""
        return len(self._caplog.records)


@pytest.fixture
def leak_check(caplog: pytest.LogCaptureFixture) -> Iterator[LeakCheck]:
    """A LeakCheck with every watched logger at DEBUG; logs are checked at teardown."""
    for name in _WATCHED_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    check = LeakCheck(CANARY, caplog)

    yield check

    check.check_logs()


def canary_token_set() -> TokenSet:
    """A token set whose access and refresh tokens are both the canary."""
    later = datetime.now(UTC) + timedelta(hours=1)
    return TokenSet(
        access_token=Secret(CANARY),
        access_valid_until=later,
        refresh_token=Secret(CANARY),
        refresh_valid_until=later,
    )


def test_leak_check_catches_a_leak(caplog: pytest.LogCaptureFixture) -> None:
    """The checker itself fails when the canary is logged or shown."""
    check = LeakCheck(CANARY, caplog)
    caplog.set_level(logging.DEBUG, logger="ksef_facade")

    logging.getLogger("ksef_facade.test").debug("token %s", CANARY)

    with pytest.raises(AssertionError):
        check.check_logs()
    with pytest.raises(AssertionError):
        check.check_object([CANARY])
    with pytest.raises(AssertionError):
        check.check_exception(ValueError(f"bad {CANARY}"))


def test_secrets_hide_canary(leak_check: LeakCheck) -> None:
    """Secret and SecretBytes never show the canary."""
    leak_check.check_object(Secret(CANARY))
    leak_check.check_object(SecretBytes(CANARY.encode()))


def test_token_set_hides_canary(leak_check: LeakCheck) -> None:
    """A TokenSet's repr shows masked tokens only."""
    leak_check.check_object(canary_token_set())


def test_api_error_message_hides_echoed_details(leak_check: LeakCheck) -> None:
    """Server details echoing a secret stay out of the exception text."""
    body = {
        "exception": {
            "exceptionDetailList": [
                {
                    "exceptionCode": 21301,
                    "exceptionDescription": "Brak autoryzacji.",
                    "details": [f"Token {CANARY} został unieważniony."],
                }
            ]
        }
    }

    error = error_from_response(400, {}, json.dumps(body).encode())

    leak_check.check_exception(error)


def test_token_provider_and_bearer_never_leak(leak_check: LeakCheck) -> None:
    """Auth, refresh rejection, 401 replay and errors at DEBUG carry no token."""
    calls = {"auth": 0}

    def authenticate() -> TokenSet:
        calls["auth"] += 1
        if calls["auth"] == 2:
            raise error_from_response(403, {}, b"")
        return canary_token_set()

    def refresh(refresh_token: Secret) -> TokenSet:
        raise error_from_response(401, {}, b"")

    # The first request's token is refused, which forces a renewal.
    statuses = iter([401, 200, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(statuses))

    provider = TokenProvider(authenticate, refresh)
    auth = BearerAuth(provider)

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
        nip_context("5260001246"),
    ):
        provider.seed_tokens(canary_token_set())
        response = client.get("https://ksef.test/x", auth=auth)
        provider.invalidate()
        with pytest.raises(KsefError) as info:
            client.get("https://ksef.test/y", auth=auth)

    assert response.status_code == 200
    assert leak_check.record_count > 0
    leak_check.check_exception(info.value)
    for obj in (provider, auth, response.request):
        leak_check.check_object(obj)


async def test_async_token_provider_and_bearer_never_leak(
    leak_check: LeakCheck,
) -> None:
    """The async twins, through a 401 replay and a refresh, log no token."""
    statuses = iter([401, 200])

    async def authenticate() -> TokenSet:
        return canary_token_set()

    async def refresh(refresh_token: Secret) -> TokenSet:
        return canary_token_set()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(statuses))

    provider = AsyncTokenProvider(authenticate, refresh)
    auth = AsyncBearerAuth(provider)
    transport = httpx.MockTransport(handler)

    async with httpx.AsyncClient(transport=transport) as client:
        with nip_context("5260001246"):
            response = await client.get("https://ksef.test/x", auth=auth)

    assert response.status_code == 200
    assert leak_check.record_count > 0
    for obj in (provider, auth, response.request):
        leak_check.check_object(obj)
