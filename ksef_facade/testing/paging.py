"""Opaque continuation tokens for the list endpoints."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .calls import Call, Reply
from .errors import ApiError

__all__ = ["page", "paged_reply"]

T = TypeVar("T")


def _encode(scope: str, offset: int) -> str:
    raw = json.dumps({"s": scope, "o": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _decode(scope: str, token: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        offset = data["o"]
        valid = data["s"] == scope and isinstance(offset, int) and offset >= 0
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeError) as exc:
        raise ApiError(21418) from exc
    if not valid:
        raise ApiError(21418)
    return int(offset)


def page(
    items: Sequence[T], scope: str, continuation: str | None, size: int
) -> tuple[list[T], str | None]:
    """Return one page of ``items`` and the token for the next (or ``None``)."""
    offset = _decode(scope, continuation) if continuation else 0
    chunk = list(items[offset : offset + size])
    following = offset + size
    return chunk, _encode(scope, following) if following < len(items) else None


def paged_reply(
    call: Call,
    key: str,
    items: Sequence[T],
    render: Callable[[T], dict[str, Any]],
    *,
    scope: str,
    size: int,
) -> Reply:
    """Return the page the request's ``x-continuation-token`` points at, as ``key``."""
    chunk, following = page(
        items, scope, call.headers.get("x-continuation-token"), size
    )
    body: dict[str, Any] = {key: [render(item) for item in chunk]}
    if following:
        body["continuationToken"] = following
    return Reply(200, body)
