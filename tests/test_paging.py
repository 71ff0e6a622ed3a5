"""Page sizes refused before sending when the spec's bounds rule them out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ksef_facade import Environment, Secret, nip_context
from ksef_facade._async.client import AsyncKsefClient
from ksef_facade._paging import (
    AUTH_SESSIONS_PAGE,
    SESSION_INVOICES_PAGE,
    PageBounds,
    check_page_size,
)


@pytest.mark.parametrize(
    ("bounds", "path"),
    [
        (AUTH_SESSIONS_PAGE, "/auth/sessions"),
        (SESSION_INVOICES_PAGE, "/sessions/{referenceNumber}/invoices"),
        (SESSION_INVOICES_PAGE, "/sessions/{referenceNumber}/invoices/failed"),
    ],
)
def test_bounds_match_pinned_spec(
    pinned_spec_path: Path, bounds: PageBounds, path: str
) -> None:
    """Each listing's bounds are the pageSize range the pinned spec gives."""
    spec = json.loads(pinned_spec_path.read_text(encoding="utf-8"))
    parameters = spec["paths"][path]["get"]["parameters"]
    schema = next(p["schema"] for p in parameters if p["name"] == "pageSize")

    assert bounds == PageBounds(schema["minimum"], schema["maximum"])


@pytest.mark.parametrize("size", [None, 10, 100])
def test_page_size_within_bounds_passes(size: int | None) -> None:
    """None and sizes at either bound are accepted."""
    check_page_size(size, AUTH_SESSIONS_PAGE)


@pytest.mark.parametrize("size", [9, 101, 0, True, "50"])
def test_page_size_outside_bounds_is_refused(size: object) -> None:
    """A size outside the bounds, or not an int, raises ValueError naming them."""
    with pytest.raises(ValueError, match="from 10 to 100"):
        check_page_size(size, AUTH_SESSIONS_PAGE)  # type: ignore[arg-type]


async def test_session_invoices_page_size_refused_before_any_request() -> None:
    """A session invoice listing with page_size 5 fails without reaching KSeF."""
    client = AsyncKsefClient(
        Environment.custom("http://127.0.0.1:9"), ksef_token=Secret("unused")
    )

    async with client:
        with nip_context("5265877635"), pytest.raises(ValueError, match="page_size"):
            async for _ in client.session_invoices("ref", page_size=5):
                pass
