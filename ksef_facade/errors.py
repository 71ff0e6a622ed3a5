"""The facade's exceptions, all under :class:`KsefError`.

::

    KsefError
    ├── KsefApiError                    KSeF answered with an error status
    │   ├── BadRequestError             400
    │   ├── UnauthorizedError           401
    │   ├── ForbiddenError              403
    │   ├── NotFoundError               404
    │   ├── GoneError                   410
    │   ├── RateLimitError              429
    │   ├── ServerError                 5xx
    │   └── AuthenticationFailedError   an authentication ended with status >= 400
    ├── KsefTransportError              no HTTP answer (connection, TLS, read error)
    ├── KsefTimeoutError                waiting for a final status gave up
    ├── InvoiceRejectedError            an invoice ended with a rejection status
    ├── HashMismatchError               a download does not match its x-ms-meta-hash
    │   ├── UpoHashMismatchError        ... a UPO
    │   └── InvoiceHashMismatchError    ... an invoice
    ├── InvalidNipError                 also ValueError: a malformed NIP
    ├── NipContextMissingError          also LookupError: no nip_context() is active
    ├── BatchPackageError               batch_package.py, also ValueError: a batch
    │                                   breaks a documented limit or holds a bad
    │                                   invoice (one subclass per rule, same module)
    └── BatchUploadExpiredError         batch_state.py: the upload window has closed

:func:`error_from_response` turns any error response into the right
:class:`KsefApiError`. It reads both documented bodies: the legacy
``ExceptionResponse`` (and the legacy 429 ``TooManyRequestsResponse``) and Problem
Details (``application/problem+json``; requested with :data:`ERROR_FORMAT_HEADERS`,
api-changelog.md 2.4.0), and never fails on an empty, HTML or garbled body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from ksef_facade.retry import parse_retry_after

__all__ = [
    "ERROR_FORMAT_HEADERS",
    "AuthenticationFailedError",
    "BadRequestError",
    "ForbiddenError",
    "GoneError",
    "HashMismatchError",
    "InvalidNipError",
    "InvoiceHashMismatchError",
    "InvoiceRejectedError",
    "KsefApiError",
    "KsefError",
    "KsefTimeoutError",
    "KsefTransportError",
    "NipContextMissingError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "UnauthorizedError",
    "UpoHashMismatchError",
    "error_from_response",
]

# Spec 2.9.0, every operation: "X-Error-Format: problem-details" asks for Problem
# Details instead of the deprecated ExceptionResponse. Send it on every request.
ERROR_FORMAT_HEADERS: Mapping[str, str] = {"X-Error-Format": "problem-details"}

# Longest piece of server text quoted in an exception message.
_MAX_QUOTED = 200


class KsefError(Exception):
    """Base class of every error raised by the facade."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take keyword-only arguments, which Exception's default pickling
        # cannot replay; rebuild from args and attributes instead (multiprocessing).
        return (_restore_error, (type(self), self.args, dict(self.__dict__)))


def _restore_error(
    cls: type[KsefError], args: tuple[Any, ...], state: dict[str, Any]
) -> KsefError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class KsefApiError(KsefError):
    """KSeF answered with an error status; the attributes say what it reported."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        codes: tuple[int, ...] = (),
        description: str | None = None,
        details: tuple[str, ...] = (),
        reference_number: str | None = None,
        retry_after: float | None = None,
        trace_id: str | None = None,
        reason_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.codes = codes
        self.description = description
        self.details = details
        self.reference_number = reference_number
        self.retry_after = retry_after
        self.trace_id = trace_id
        self.reason_code = reason_code

    @property
    def code(self) -> int | None:
        """The first KSeF exception code, or None when the body carried none."""
        return self.codes[0] if self.codes else None


class BadRequestError(KsefApiError):
    """400: KSeF rejected the request; ``codes`` and ``details`` say why."""


class UnauthorizedError(KsefApiError):
    """401: the access token is missing, expired or revoked."""


class ForbiddenError(KsefApiError):
    """403: the token lacks a permission; ``reason_code`` names the reason."""


class NotFoundError(KsefApiError):
    """404: the addressed resource does not exist."""


class GoneError(KsefApiError):
    """410: the operation's status has passed its retention period."""


class RateLimitError(KsefApiError):
    """429: a rate limit was exceeded; ``retry_after`` says how long to wait."""


class ServerError(KsefApiError):
    """5xx: KSeF failed to handle the request."""


class AuthenticationFailedError(KsefApiError):
    """An authentication operation ended with a failure status (400 and up).

    ``status_code`` is the HTTP status of the status poll (200); ``code`` is the
    authentication status, for example 450 for an invalid KSeF token (spec,
    ``AuthenticationOperationStatusResponse.status``), and ``reference_number``
    the operation's.
    """


class KsefTransportError(KsefError):
    """The request got no HTTP answer (connection, TLS or read failure)."""


class KsefTimeoutError(KsefError):
    """Waiting for an operation to reach a final status took too long."""

    def __init__(
        self,
        message: str,
        *,
        reference_number: str | None = None,
        last_status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.reference_number = reference_number
        self.last_status_code = last_status_code


class InvoiceRejectedError(KsefError):
    """KSeF processed an invoice and rejected it with a status code."""

    def __init__(
        self,
        *,
        status_code: int,
        description: str | None,
        invoice_reference: str,
        details: tuple[str, ...] = (),
    ) -> None:
        what = _quote(description) if description else "no description"
        super().__init__(
            f"KSeF rejected invoice {invoice_reference} with status {status_code}: "
            f"{what}."
        )
        self.status_code = status_code
        self.description = description
        self.invoice_reference = invoice_reference
        self.details = details


class HashMismatchError(KsefError):
    """A downloaded document's SHA-256 differs from the hash KSeF announced for it.

    ``expected`` is the announced hash (``x-ms-meta-hash``), ``actual`` the hash of
    the bytes received, both Base64.
    """

    # How the message names the document, with and without a reference number.
    _document = "Document"
    _document_of = "Document {}"

    def __init__(
        self, *, expected: str, actual: str, reference_number: str | None = None
    ) -> None:
        what = (
            self._document_of.format(reference_number)
            if reference_number
            else self._document
        )
        super().__init__(
            f"{what} has SHA-256 {actual} but KSeF announced {expected}; "
            "download it again."
        )
        self.expected = expected
        self.actual = actual
        self.reference_number = reference_number


class UpoHashMismatchError(HashMismatchError):
    """A downloaded UPO's SHA-256 differs from the hash KSeF announced for it."""

    _document = "UPO"
    _document_of = "UPO for {}"


class InvoiceHashMismatchError(HashMismatchError):
    """A downloaded invoice's SHA-256 differs from the hash KSeF announced for it."""

    _document = "Invoice"
    _document_of = "Invoice {}"


class InvalidNipError(KsefError, ValueError):
    """A NIP is not ten digits with a valid check digit."""


class NipContextMissingError(KsefError, LookupError):
    """A call needs the NIP but no ``nip_context(...)`` is active."""


_CLASS_BY_STATUS: Mapping[int, type[KsefApiError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    410: GoneError,
    429: RateLimitError,
}


def error_from_response(
    status_code: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime | None = None,
) -> KsefApiError:
    """Return the exception describing an error response; never raises itself.

    ``now`` (timezone-aware, default the current time) dates a Retry-After given as
    an HTTP-date.
    """
    fields = _parse_body(body)
    error_class = _CLASS_BY_STATUS.get(status_code)
    if error_class is None:
        error_class = ServerError if 500 <= status_code <= 599 else KsefApiError

    codes: tuple[int, ...] = fields.get("codes", ())
    description: str | None = fields.get("description")
    message = _message(status_code, codes, description, fields.get("unparsed"))

    return error_class(
        message,
        status_code=status_code,
        codes=codes,
        description=description,
        details=fields.get("details", ()),
        reference_number=fields.get("reference_number"),
        retry_after=_retry_after(headers, now or datetime.now(UTC)),
        trace_id=fields.get("trace_id"),
        reason_code=fields.get("reason_code"),
    )


def _parse_body(body: bytes) -> dict[str, Any]:
    """Return the fields found in an error body, by whichever schema it follows."""
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return {}

    try:
        data = json.loads(text)
    except ValueError:
        return {"unparsed": text}
    if not isinstance(data, dict):
        return {"unparsed": text}

    if isinstance(data.get("exception"), dict):
        return _parse_exception_response(data["exception"])
    if isinstance(data.get("status"), dict):
        return _parse_legacy_too_many_requests(data["status"])
    if "title" in data or "detail" in data or "errors" in data:
        return _parse_problem_details(data)
    return {"unparsed": text}


def _parse_exception_response(exception: dict[str, Any]) -> dict[str, Any]:
    """Read the deprecated ``ExceptionResponse.exception`` (ExceptionInfo)."""
    entries = _dicts(exception.get("exceptionDetailList"))
    codes = tuple(
        e["exceptionCode"] for e in entries if _is_int(e.get("exceptionCode"))
    )
    descriptions = [_str(e.get("exceptionDescription")) for e in entries]

    return {
        "codes": codes,
        "description": next((d for d in descriptions if d), None),
        "details": tuple(d for e in entries for d in _strs(e.get("details"))),
        "reference_number": _str(exception.get("referenceNumber")),
        "trace_id": _str(exception.get("serviceCode")),
    }


def _parse_legacy_too_many_requests(status: dict[str, Any]) -> dict[str, Any]:
    """Read the deprecated ``TooManyRequestsResponse.status`` (its code is HTTP's)."""
    details = _strs(status.get("details"))
    # The description only repeats "Too Many Requests"; the first detail says which
    # limit was hit and when to come back.
    return {
        "description": details[0] if details else _str(status.get("description")),
        "details": details,
    }


def _parse_problem_details(data: dict[str, Any]) -> dict[str, Any]:
    """Read any of the spec's ``*ProblemDetails`` schemas (400, 401, 403, 410, 429)."""
    errors = _dicts(data.get("errors"))
    codes = tuple(e["code"] for e in errors if _is_int(e.get("code")))
    descriptions = [_str(e.get("description")) for e in errors]
    details = tuple(d for e in errors for d in _strs(e.get("details")))
    detail = _str(data.get("detail"))

    return {
        "codes": codes,
        # With a list of errors (400) the top-level detail is a generic summary;
        # without one (401, 403, 410, 429) it is the only explanation KSeF gives.
        "description": next((d for d in descriptions if d), None) or detail,
        "details": details,
        "trace_id": _str(data.get("traceId")),
        "reason_code": _str(data.get("reasonCode")),
    }


def _message(
    status_code: int,
    codes: tuple[int, ...],
    description: str | None,
    unparsed: str | None,
) -> str:
    """Return a one-sentence message quoting at most ``_MAX_QUOTED`` server chars."""
    try:
        phrase = f"{status_code} {HTTPStatus(status_code).phrase}"
    except ValueError:
        phrase = str(status_code)

    if codes:
        code_text = ", ".join(str(c) for c in codes)
        what = f" (code {code_text})" if len(codes) == 1 else f" (codes {code_text})"
    else:
        what = ""

    if description:
        return f"KSeF API returned {phrase}{what}: {_quote(description)}"
    if unparsed:
        return (
            f"KSeF API returned {phrase} with an unrecognised body: {_quote(unparsed)}"
        )
    return f"KSeF API returned {phrase}{what} without an error description."


def _retry_after(headers: Mapping[str, str], now: datetime) -> float | None:
    """Return the Retry-After header in seconds, or None when absent or unreadable."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    return parse_retry_after(value, now)


def _quote(text: str) -> str:
    """Return server text on one line, cut to ``_MAX_QUOTED`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_QUOTED else flat[: _MAX_QUOTED - 1] + "…"


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _strs(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
