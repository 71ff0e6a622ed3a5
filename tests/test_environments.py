"""Tests for ksef_facade.environments."""

from __future__ import annotations

import attrs
import pytest

from ksef_facade.environments import DEMO, PROD, TEST, Environment


@pytest.mark.parametrize(
    ("env", "api", "qr"),
    [
        (TEST, "https://api-test.ksef.mf.gov.pl/v2", "https://qr-test.ksef.mf.gov.pl"),
        (DEMO, "https://api-demo.ksef.mf.gov.pl/v2", "https://qr-demo.ksef.mf.gov.pl"),
        (PROD, "https://api.ksef.mf.gov.pl/v2", "https://qr.ksef.mf.gov.pl"),
    ],
)
def test_builtin_environment_addresses(env: Environment, api: str, qr: str) -> None:
    """TEST, DEMO and PROD carry the addresses from srodowiska.md and kody-qr.md."""
    assert (env.api_base_url, env.qr_base_url) == (api, qr)


@pytest.mark.parametrize(
    ("text", "env"),
    [("test", TEST), ("DEMO", DEMO), (" Prod ", PROD)],
)
def test_parse_is_case_insensitive(text: str, env: Environment) -> None:
    """parse() accepts the three names in any case, with surrounding spaces."""
    assert Environment.parse(text) is env


@pytest.mark.parametrize("text", ["production", "prd", "", "te st"])
def test_parse_rejects_unknown_names(text: str) -> None:
    """An unknown name raises ValueError listing the valid ones."""
    with pytest.raises(ValueError, match="expected test, demo or prod"):
        Environment.parse(text)


def test_custom_strips_trailing_slash() -> None:
    """custom() normalises the base URLs and has no QR host unless given."""
    env = Environment.custom("http://127.0.0.1:8000/v2/")

    assert env.api_base_url == "http://127.0.0.1:8000/v2"
    assert env.qr_base_url is None
    assert env.name == "custom"


def test_custom_keeps_qr_host() -> None:
    """custom() keeps an explicit QR host."""
    env = Environment.custom("http://localhost:1/v2", "http://localhost:1/qr/")

    assert env.qr_base_url == "http://localhost:1/qr"


@pytest.mark.parametrize("url", ["api.ksef.mf.gov.pl/v2", "ftp://host/v2", "http://"])
def test_custom_rejects_non_http_urls(url: str) -> None:
    """A relative or non-http URL is a ValueError naming the parameter."""
    with pytest.raises(ValueError, match="api_base_url must be an absolute"):
        Environment.custom(url)


def test_environment_is_frozen() -> None:
    """Environments cannot be modified after creation."""
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        TEST.api_base_url = "https://example.com"  # type: ignore[misc]
