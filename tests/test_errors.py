"""Tests for ksef_facade.errors: the tree and error_from_response."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ksef_facade import batch_package, batch_state, errors
from ksef_facade.errors import (
    AuthenticationFailedError,
    BadRequestError,
    ForbiddenError,
    GoneError,
    HashMismatchError,
    InvoiceHashMismatchError,
    InvoiceRejectedError,
    KsefApiError,
    KsefError,
    NotFoundError,
    RateLimitError,
    ServerError,
    UnauthorizedError,
    UpoHashMismatchError,
    error_from_response,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def examples(pinned_spec_path: Path) -> dict[str, Any]:
    """The spec's example error bodies, keyed by schema name."""
    schemas = json.loads(pinned_spec_path.read_text())["components"]["schemas"]
    found = {
        name: schemas[name]["example"] for name in schemas if "example" in schemas[name]
    }
    # GoneProblemDetails has its example on the response, not on the schema.
    paths = json.loads(pinned_spec_path.read_text())["paths"]
    gone = paths["/auth/{referenceNumber}"]["get"]["responses"]["410"]
    found["GoneProblemDetails"] = gone["content"]["application/problem+json"]["example"]
    return found


def body(example: dict[str, Any]) -> bytes:
    return json.dumps(example).encode()


def test_every_class_derives_from_ksef_error() -> None:
    """Every exception the module exports sits under KsefError."""
    exported = [getattr(errors, name) for name in errors.__all__]
    classes = [c for c in exported if isinstance(c, type)]

    assert classes
    assert all(issubclass(c, KsefError) for c in classes)


def test_tree_is_drawn_in_docstring() -> None:
    """The module docstring names every exception class it exports."""
    doc = errors.__doc__ or ""
    names = [n for n in errors.__all__ if isinstance(getattr(errors, n), type)]

    assert [n for n in names if n not in doc] == []


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, BadRequestError),
        (401, UnauthorizedError),
        (403, ForbiddenError),
        (404, NotFoundError),
        (410, GoneError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
        (599, ServerError),
        (409, KsefApiError),
        (418, KsefApiError),
    ],
)
def test_class_follows_status(status: int, expected: type[KsefApiError]) -> None:
    """The status picks the class, whatever the body."""
    error = error_from_response(status, {}, b"", now=NOW)

    assert type(error) is expected
    assert error.status_code == status


def test_legacy_exception_response(examples: dict[str, Any]) -> None:
    """The spec's ExceptionResponse example yields code, texts and reference number."""
    error = error_from_response(400, {}, body(examples["ExceptionResponse"]), now=NOW)

    assert error.codes == (12345,)
    assert error.code == 12345
    assert error.description == "Opis błędu."
    assert error.details == ("Opcjonalne dodatkowe szczegóły błędu.",)
    assert error.reference_number == "a1b2c3d4-e5f6-4789-ab12-cd34ef567890"
    assert error.trace_id == "00-c02cc3747020c605be02159bf3324f0e-eee7647dc67aa74a-00"
    assert str(error) == "KSeF API returned 400 Bad Request (code 12345): Opis błędu."


def test_bad_request_problem_details(examples: dict[str, Any]) -> None:
    """The spec's BadRequestProblemDetails example yields every error code."""
    example = examples["BadRequestProblemDetails"]

    error = error_from_response(400, {}, body(example), now=NOW)

    assert error.codes == (21405, 21157)
    assert error.description == "Błąd walidacji danych wejściowych."
    assert error.details == (
        "Wskazany kod formularza nie jest wspierany.",
        "Rozmiar części 1 przekroczył dozwolony rozmiar 100MB.",
    )
    assert error.trace_id == "673843e023c432286660bc0501a3af44"
    assert "(codes 21405, 21157)" in str(error)


def test_unauthorized_problem_details(examples: dict[str, Any]) -> None:
    """The 401 Problem Details example gives its detail as description."""
    example = examples["UnauthorizedProblemDetails"]

    error = error_from_response(401, {}, body(example), now=NOW)

    assert isinstance(error, UnauthorizedError)
    assert error.codes == ()
    assert error.code is None
    assert error.description == "Wymagane jest uwierzytelnienie."
    assert str(error) == (
        "KSeF API returned 401 Unauthorized: Wymagane jest uwierzytelnienie."
    )


def test_forbidden_problem_details(examples: dict[str, Any]) -> None:
    """The 403 Problem Details example carries its reasonCode."""
    example = examples["ForbiddenProblemDetails"]

    error = error_from_response(403, {}, body(example), now=NOW)

    assert isinstance(error, ForbiddenError)
    assert error.reason_code == "missing-permissions"
    assert error.description == example["detail"]


def test_gone_problem_details(examples: dict[str, Any]) -> None:
    """The 410 Problem Details example maps to GoneError with its detail."""
    error = error_from_response(410, {}, body(examples["GoneProblemDetails"]), now=NOW)

    assert isinstance(error, GoneError)
    assert error.description == "Operacja wygasła i nie jest już dostępna."


def test_too_many_requests_problem_details(examples: dict[str, Any]) -> None:
    """The 429 Problem Details example plus Retry-After gives retry_after."""
    example = examples["TooManyRequestsProblemDetails"]

    error = error_from_response(429, {"Retry-After": "30"}, body(example), now=NOW)

    assert isinstance(error, RateLimitError)
    assert error.retry_after == 30.0
    assert error.description == example["detail"]


def test_too_many_requests_legacy(examples: dict[str, Any]) -> None:
    """The deprecated TooManyRequestsResponse yields its description and details."""
    example = examples["TooManyRequestsResponse"]

    error = error_from_response(429, {"retry-after": "7"}, body(example), now=NOW)

    assert error.retry_after == 7.0
    assert error.codes == ()
    assert error.description == example["status"]["details"][0]
    assert error.details == tuple(example["status"]["details"])


def test_retry_after_http_date() -> None:
    """An HTTP-date Retry-After is measured from ``now``."""
    headers = {"RETRY-AFTER": "Thu, 01 Jan 2026 12:00:45 GMT"}

    error = error_from_response(429, headers, b"", now=NOW)

    assert error.retry_after == 45.0


@pytest.mark.parametrize("value", ["soon", "-3", ""])
def test_unreadable_retry_after_is_none(value: str) -> None:
    """A Retry-After that is not seconds or a date gives None."""
    assert (
        error_from_response(429, {"Retry-After": value}, b"", now=NOW).retry_after
        is None
    )


def test_retry_after_absent_is_none() -> None:
    """Without the header retry_after is None."""
    assert error_from_response(503, {}, b"", now=NOW).retry_after is None


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"   ",
        b"null",
        b"[1, 2]",
        b'"text"',
        b"{",
        b"\xff\xfe\x00garbage",
        b'{"exception": null}',
        b'{"exception": {"exceptionDetailList": [{"exceptionCode": "x"}, 5]}}',
        b'{"errors": "nope", "title": 5}',
        b'{"status": {"details": [1, null]}}',
        b'{"unrelated": true}',
    ],
)
def test_malformed_bodies_never_crash(payload: bytes) -> None:
    """Odd bodies still give a status-based error with a one-line message."""
    error = error_from_response(502, {}, payload, now=NOW)

    assert isinstance(error, ServerError)
    assert str(error).startswith("KSeF API returned 502 Bad Gateway")
    assert "\n" not in str(error)


def test_html_body_is_quoted_truncated() -> None:
    """An HTML page is quoted on one line and cut to about 200 characters."""
    page = b"<html>\n<body>" + b"x" * 5000 + b"</body></html>"

    message = str(error_from_response(504, {}, page, now=NOW))

    assert "unrecognised body: <html> <body>xxx" in message
    assert len(message) < 300
    assert message.endswith("…")


def test_empty_body_message() -> None:
    """An empty body says there was no description."""
    message = str(error_from_response(404, {}, b"", now=NOW))

    assert message == "KSeF API returned 404 Not Found without an error description."


def test_unknown_status_has_plain_number() -> None:
    """A status outside the HTTP registry is still reported."""
    error = error_from_response(599, {}, b"", now=NOW)

    assert str(error) == "KSeF API returned 599 without an error description."


def test_long_description_is_truncated() -> None:
    """Server text in the message is cut; the attribute keeps it whole."""
    long_text = "a" * 1000
    payload = json.dumps({"title": "Bad Request", "status": 400, "detail": long_text})

    error = error_from_response(400, {}, payload.encode(), now=NOW)

    assert error.description == long_text
    assert len(str(error)) < 300


def test_details_stay_out_of_message() -> None:
    """Details may echo request content, so they are attributes, not message text."""
    payload = {
        "exception": {
            "exceptionDetailList": [
                {
                    "exceptionCode": 21405,
                    "exceptionDescription": "Błąd walidacji danych wejściowych.",
                    "details": ["<P_1>SECRET-INVOICE-VALUE</P_1>"],
                }
            ]
        }
    }

    error = error_from_response(400, {}, json.dumps(payload).encode(), now=NOW)

    assert error.details == ("<P_1>SECRET-INVOICE-VALUE</P_1>",)
    assert "SECRET-INVOICE-VALUE" not in str(error)


def test_invoice_rejected_error_message() -> None:
    """InvoiceRejectedError names the invoice reference, status and description."""
    error = InvoiceRejectedError(
        status_code=450,
        description="Błąd weryfikacji semantyki dokumentu faktury",
        invoice_reference="20250625-EE-319D7EE000-B67F415CDC-2C",
    )

    assert str(error) == (
        "KSeF rejected invoice 20250625-EE-319D7EE000-B67F415CDC-2C with status 450: "
        "Błąd weryfikacji semantyki dokumentu faktury."
    )


def test_upo_hash_mismatch_error_attributes() -> None:
    """UpoHashMismatchError keeps both hashes."""
    error = UpoHashMismatchError(expected="AAA=", actual="BBB=", reference_number="R1")

    assert (error.expected, error.actual) == ("AAA=", "BBB=")
    assert "R1" in str(error)


def test_hash_mismatch_errors_share_a_base() -> None:
    """UPO and invoice hash mismatches are both HashMismatchError, not API errors."""
    for cls in (UpoHashMismatchError, InvoiceHashMismatchError):
        assert issubclass(cls, HashMismatchError)
    assert issubclass(HashMismatchError, KsefError)
    assert not issubclass(HashMismatchError, KsefApiError)


def test_invoice_hash_mismatch_error_message() -> None:
    """InvoiceHashMismatchError names the invoice and both hashes."""
    error = InvoiceHashMismatchError(
        expected="AAA=", actual="BBB=", reference_number="KSEF-1"
    )

    assert str(error) == (
        "Invoice KSEF-1 has SHA-256 BBB= but KSeF announced AAA=; download it again."
    )


def test_hash_mismatch_error_survives_pickling() -> None:
    """A hash mismatch keeps its class and hashes across pickling."""
    error = UpoHashMismatchError(expected="AAA=", actual="BBB=", reference_number="R")

    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes

    assert type(copy) is UpoHashMismatchError
    assert (copy.expected, copy.actual, str(copy)) == ("AAA=", "BBB=", str(error))


def test_authentication_failed_is_an_api_error() -> None:
    """AuthenticationFailedError is caught by an existing except KsefApiError."""
    error = AuthenticationFailedError(
        "Authentication R failed with status 450.", status_code=200, codes=(450,)
    )

    assert isinstance(error, KsefApiError)
    assert error.code == 450


@pytest.mark.parametrize(
    ("module", "name"),
    [
        (batch_package, "BatchPackageError"),
        (batch_state, "BatchUploadExpiredError"),
    ],
)
def test_tree_names_errors_of_other_modules(module: Any, name: str) -> None:
    """The tree also draws errors defined elsewhere, with their module's file."""
    doc = errors.__doc__ or ""
    line = next((ln for ln in doc.splitlines() if f" {name} " in ln), "")

    assert issubclass(getattr(module, name), KsefError)
    assert f"{module.__name__.rsplit('.', 1)[1]}.py" in line


def test_api_error_survives_pickling(examples: dict[str, Any]) -> None:
    """Errors cross process boundaries with their class and attributes intact."""
    error = error_from_response(
        429,
        {"Retry-After": "5"},
        body(examples["TooManyRequestsProblemDetails"]),
        now=NOW,
    )

    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes

    assert type(copy) is RateLimitError
    assert str(copy) == str(error)
    assert (copy.status_code, copy.retry_after, copy.trace_id) == (
        429,
        5.0,
        error.trace_id,
    )


def test_keyword_only_errors_survive_pickling() -> None:
    """Errors built from keyword-only arguments unpickle too."""
    error = InvoiceRejectedError(
        status_code=450, description="x", invoice_reference="R"
    )

    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes

    assert (copy.status_code, copy.invoice_reference, str(copy)) == (
        450,
        "R",
        str(error),
    )
