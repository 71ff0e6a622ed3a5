"""Reading generated-client responses: statuses, typed bodies and headers."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest

from ksef_api.types import UNSET, Response
from ksef_facade._responses import (
    checked,
    download,
    next_token,
    optional,
    parsed,
    published_certificate,
)
from ksef_facade.errors import KsefApiError, NotFoundError

PROBLEM = b'{"title": "Not Found", "status": 404, "detail": "No such session."}'


def response(
    status: int, headers: dict[str, str] | None = None, parsed: Any = None
) -> Response[Any]:
    """A generated-client response with the given status, headers and body."""
    return Response(
        status_code=HTTPStatus(status),
        content=b"<UPO/>",
        headers=headers or {},
        parsed=parsed,
    )


def test_error_status_raises_the_mapped_error() -> None:
    """A non-2xx response raises the facade error for its status."""
    failed = Response(
        status_code=HTTPStatus(404), content=PROBLEM, headers={}, parsed=None
    )

    with pytest.raises(NotFoundError):
        checked(failed)


def test_body_of_another_type_is_an_api_error() -> None:
    """A 2xx body the parser did not type as expected names the operation."""
    with pytest.raises(KsefApiError, match="GET /x") as raised:
        parsed("GET /x", response(200, parsed="text"), dict)

    assert raised.value.status_code == 200


def test_continuation_token_in_body_wins_over_header() -> None:
    """The body's continuation token is used; the header only when it is absent."""
    sent = response(200, {"x-continuation-token": "from-header"})

    assert next_token("from-body", sent) == "from-body"
    assert next_token(UNSET, sent) == "from-header"
    assert next_token(None, response(200)) is None


def test_download_keeps_the_announced_hash() -> None:
    """A download carries its content and x-ms-meta-hash (None when absent)."""
    assert download(response(200, {"x-ms-meta-hash": "AAA="})).announced_hash == "AAA="
    assert download(response(200)).announced_hash is None


def test_optional_maps_none_to_unset() -> None:
    """None becomes UNSET for a generated optional argument; values pass through."""
    assert optional(None) is UNSET
    assert optional(0) == 0


def test_unexpected_certificate_entry_is_an_api_error() -> None:
    """A keys list entry of the wrong type is reported, not passed on."""
    with pytest.raises(KsefApiError, match="public key certificate"):
        published_certificate({"certificate": "x"})
