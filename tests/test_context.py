"""Tests for ksef_facade.context: NIP validation and the NIP context."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ksef_facade.context import current_nip, nip_context, peek_nip, validate_nip
from ksef_facade.errors import InvalidNipError, KsefError, NipContextMissingError

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


def test_validate_nip_accepts_valid_nip() -> None:
    """A ten-digit NIP with a correct check digit is returned unchanged."""
    assert validate_nip("5260001246") == "5260001246"


@pytest.mark.parametrize("written", ["526-000-12-46", "526 000 12 46", " 5260001246 "])
def test_validate_nip_strips_separators(written: str) -> None:
    """Hyphens, spaces and surrounding whitespace are removed."""
    assert validate_nip(written) == "5260001246"


@pytest.mark.parametrize("bad", ["526000124", "52600012466", "", "PL5260001246"])
def test_validate_nip_rejects_wrong_length(bad: str) -> None:
    """Anything but exactly ten digits is rejected with a message saying so."""
    with pytest.raises(InvalidNipError, match="exactly 10 digits"):
        validate_nip(bad)


@pytest.mark.parametrize(
    "bad",
    [
        "52600012a6",
        "\uff15\uff12\uff16\uff10\uff10\uff10\uff11\uff12\uff14\uff16",
        "526.000.1246",
    ],
)
def test_validate_nip_rejects_non_ascii_digits(bad: str) -> None:
    """Letters, full-width digits and other separators are rejected."""
    with pytest.raises(InvalidNipError, match="exactly 10 digits"):
        validate_nip(bad)


def test_validate_nip_rejects_wrong_check_digit() -> None:
    """A NIP whose last digit does not match the checksum is rejected."""
    with pytest.raises(InvalidNipError, match="invalid check digit"):
        validate_nip("5260001247")


@pytest.mark.parametrize("last", list("0123456789"))
def test_validate_nip_rejects_checksum_ten(last: str) -> None:
    """A base whose weighted sum mod 11 is 10 has no valid NIP at all."""
    with pytest.raises(InvalidNipError, match="invalid check digit"):
        validate_nip("100000016" + last)


def test_validate_nip_rejects_non_str() -> None:
    """Passing an int is a programmer mistake: TypeError."""
    with pytest.raises(TypeError, match="must be a str"):
        validate_nip(5260001246)  # type: ignore[arg-type]


def test_invalid_nip_error_is_value_error_and_ksef_error() -> None:
    """InvalidNipError can be caught as ValueError or as KsefError."""
    assert issubclass(InvalidNipError, ValueError)
    assert issubclass(InvalidNipError, KsefError)


def test_nip_context_sets_and_restores() -> None:
    """Inside the block current_nip() is the NIP; after it, none is set."""
    with nip_context("526-000-12-46") as nip:
        assert nip == "5260001246"
        assert current_nip() == "5260001246"

    with pytest.raises(NipContextMissingError):
        current_nip()


def test_nested_nip_context_restores_outer() -> None:
    """Leaving an inner block brings back the outer NIP."""
    outer, inner = make_nip(1), make_nip(2)
    with nip_context(outer):
        with nip_context(inner):
            assert current_nip() == inner
        assert current_nip() == outer


def test_nip_context_restores_after_exception() -> None:
    """An exception inside the block still resets the context."""
    with pytest.raises(RuntimeError), nip_context(make_nip(3)):
        raise RuntimeError("boom")

    with pytest.raises(NipContextMissingError):
        current_nip()


def test_invalid_nip_does_not_enter_context() -> None:
    """A malformed NIP raises before the block runs and sets nothing."""
    with pytest.raises(InvalidNipError), nip_context("123"):
        pytest.fail("block must not run")


def test_current_nip_without_context_says_what_to_do() -> None:
    """The missing-context error tells the caller to use nip_context."""
    with pytest.raises(NipContextMissingError, match=r"nip_context\(nip\)") as info:
        current_nip()

    assert isinstance(info.value, LookupError)


def test_threads_each_see_their_own_nip() -> None:
    """50 threads, each in its own NIP context, never observe another's NIP."""
    barrier = threading.Barrier(50)
    seen: dict[str, list[str]] = {}

    def worker(nip: str) -> None:
        with nip_context(nip):
            barrier.wait()
            seen[nip] = [current_nip() for _ in range(200)]

    threads = [threading.Thread(target=worker, args=(make_nip(i),)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(seen) == 50
    assert all(set(values) == {nip} for nip, values in seen.items())


async def test_tasks_each_see_their_own_nip() -> None:
    """50 asyncio tasks, each in its own NIP context, never observe another's NIP."""
    seen: dict[str, list[str]] = {}

    async def worker(nip: str) -> None:
        with nip_context(nip):
            values = []
            for _ in range(20):
                await asyncio.sleep(0)
                values.append(current_nip())
            seen[nip] = values

    await asyncio.gather(*(worker(make_nip(i)) for i in range(50)))

    assert len(seen) == 50
    assert all(set(values) == {nip} for nip, values in seen.items())


def test_peek_nip_returns_empty_without_context() -> None:
    """peek_nip() never raises: the NIP inside a context, '' outside."""
    assert peek_nip() == ""
    with nip_context("5260001246"):
        assert peek_nip() == "5260001246"
