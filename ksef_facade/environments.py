"""KSeF environments: where the API and the QR verification pages live.

Addresses from srodowiska.md (API) and kody-qr.md (QR hosts). Nothing defaults to
PROD: callers always name the environment they mean.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import attrs

__all__ = ["DEMO", "PROD", "TEST", "Environment"]


def _check_url(value: str, what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{what} must be an absolute http(s) URL, got {value!r}.")
    return value.rstrip("/")


@attrs.frozen
class Environment:
    """One KSeF deployment: its API base URL and its QR verification host."""

    name: str
    api_base_url: str
    qr_base_url: str | None

    @classmethod
    def custom(
        cls, api_base_url: str, qr_base_url: str | None = None, *, name: str = "custom"
    ) -> Environment:
        """Return an environment at other addresses, such as the local simulator."""
        api = _check_url(api_base_url, "api_base_url")
        qr = None if qr_base_url is None else _check_url(qr_base_url, "qr_base_url")
        return cls(name=name, api_base_url=api, qr_base_url=qr)

    @classmethod
    def parse(cls, value: str) -> Environment:
        """Return TEST, DEMO or PROD named by ``value`` (case-insensitive)."""
        found = _BY_NAME.get(value.strip().lower()) if isinstance(value, str) else None
        if found is None:
            raise ValueError(
                f"Unknown KSeF environment {value!r}; expected test, demo or prod."
            )
        return found


TEST = Environment(
    name="test",
    api_base_url="https://api-test.ksef.mf.gov.pl/v2",
    qr_base_url="https://qr-test.ksef.mf.gov.pl",
)
DEMO = Environment(
    name="demo",
    api_base_url="https://api-demo.ksef.mf.gov.pl/v2",
    qr_base_url="https://qr-demo.ksef.mf.gov.pl",
)
PROD = Environment(
    name="prod",
    api_base_url="https://api.ksef.mf.gov.pl/v2",
    qr_base_url="https://qr.ksef.mf.gov.pl",
)

_BY_NAME = {env.name: env for env in (TEST, DEMO, PROD)}
