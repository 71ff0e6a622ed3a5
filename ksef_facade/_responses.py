"""What the generated client's responses mean: checked statuses, typed bodies, headers.

Pure functions over ``ksef_api`` responses for both client flavours: a non-2xx
answer becomes the matching :mod:`ksef_facade.errors` exception, a body that does
not match the spec a :class:`KsefApiError`, and the headers the facade reads
(``x-continuation-token``, ``x-ms-meta-hash``) plain values.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx

from ksef_api.models import PublicKeyCertificate
from ksef_api.types import UNSET, Response, Unset
from ksef_facade.downloads import Download
from ksef_facade.errors import KsefApiError, KsefError, error_from_response
from ksef_facade.keys import PublishedCertificate

__all__ = [
    "checked",
    "download",
    "header",
    "next_token",
    "optional",
    "parsed",
    "published_certificate",
    "raised_by_parser",
    "unreadable",
]

T = TypeVar("T")
_Sent = Response[Any]


def raised_by_parser(error: BaseException) -> bool:
    """Tell whether ``error`` came from a generated ``_parse_response``.

    Other errors of these types (a caller's mistake surfacing from the token
    provider inside the httpx auth flow, say) must reach the caller unchanged.
    """
    trace = error.__traceback__
    while trace is not None:
        frame = trace.tb_frame
        module = str(frame.f_globals.get("__name__", ""))
        if frame.f_code.co_name == "_parse_response" and module.startswith("ksef_api."):
            return True
        trace = trace.tb_next
    return False


def unreadable(operation: str, response: httpx.Response | None) -> KsefError:
    """Describe a response whose body the generated parser rejected."""
    if response is None:
        return KsefError(f"KSeF's answer to {operation} could not be read.")
    if not response.is_success:
        return error_from_response(
            response.status_code, response.headers, response.content
        )
    return KsefApiError(
        f"KSeF answered {operation} with HTTP {response.status_code} and a body "
        "that does not match the API spec.",
        status_code=response.status_code,
    )


def checked(response: _Sent) -> _Sent:
    """Return a 2xx response; raise the matching facade error otherwise."""
    status = int(response.status_code)
    if not 200 <= status < 300:
        raise error_from_response(status, response.headers, response.content)
    return response


def parsed(operation: str, response: _Sent, model: type[T]) -> T:
    """Return the parsed body of a 2xx response, checked to be a ``model``."""
    body = checked(response).parsed
    if not isinstance(body, model):
        raise KsefApiError(
            f"KSeF answered {operation} with a body that does not match the API "
            f"spec (expected {model.__name__}).",
            status_code=int(response.status_code),
        )
    return body


def header(response: _Sent, name: str) -> str | None:
    """Return a response header's value, or None when absent or empty."""
    value = response.headers.get(name)
    return value if isinstance(value, str) and value else None


def optional(value: T | None) -> T | Unset:
    """Return ``value`` for a generated optional argument (UNSET when absent)."""
    return UNSET if value is None else value


def next_token(in_body: object, response: _Sent) -> str | None:
    """Return the continuation token of a page (body field, else header), if any."""
    if isinstance(in_body, str) and in_body:
        return in_body
    return header(response, "x-continuation-token")


def download(response: _Sent) -> Download:
    """Return an XML body with the ``x-ms-meta-hash`` KSeF sent along."""
    checked(response)
    return Download(response.content, header(response, "x-ms-meta-hash"))


def published_certificate(entry: object) -> PublishedCertificate:
    """Return one entry of ``GET /security/public-key-certificates``, checked."""
    if not isinstance(entry, PublicKeyCertificate):
        raise KsefApiError(
            "KSeF listed a public key certificate that does not match the API spec.",
            status_code=200,
        )
    return PublishedCertificate(
        certificate=entry.certificate,
        public_key_id=entry.public_key_id,
        valid_from=entry.valid_from,
        valid_to=entry.valid_to,
        usages=tuple(str(usage.value) for usage in entry.usage),
    )
