"""API errors the simulator answers with, in both of KSeF's error formats.

The spec's 4xx responses carry ``ExceptionResponse`` (the legacy body) as
``application/json``, or Problem Details as ``application/problem+json`` when the
request carries ``X-Error-Format: problem-details``; 401 and 403 are Problem Details
only; 429 uses ``TooManyRequestsResponse`` or ``TooManyRequestsProblemDetails`` and a
``Retry-After`` header; 410 (a status past its retention) is Problem Details only.
Codes and descriptions come from the spec's error tables.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from starlette.responses import Response

__all__ = [
    "DESCRIPTIONS",
    "ApiError",
    "Forbidden",
    "Gone",
    "TooManyRequests",
    "Unauthorized",
    "render_bad_request",
    "render_forbidden",
    "render_gone",
    "render_too_many_requests",
    "render_unauthorized",
    "timestamp",
    "wants_problem_details",
]

# Descriptions of exception codes, as the spec's 400 tables word them.
DESCRIPTIONS = {
    21001: "Nieczytelna treść.",
    21111: "Nieprawidłowe wyzwanie autoryzacyjne.",
    21155: "Przekroczono dozwoloną liczbę faktur w sesji.",
    21157: "Nieprawidłowy rozmiar części pakietu.",
    21161: "Przekroczono dozwoloną liczbę części pakietu.",
    21164: "Faktura o podanym identyfikatorze nie istnieje.",
    21165: "Faktura o podanym numerze KSeF nie jest jeszcze dostępna.",
    21173: "Brak sesji o wskazanym numerze referencyjnym.",
    21175: "Wynik zapytania o podanym identyfikatorze nie istnieje.",
    21178: "Nie znaleziono UPO dla podanych kryteriów.",
    21180: "Status sesji nie pozwala na wykonanie operacji.",
    21181: "Nieprawidłowe żądanie eksportu faktur.",
    21182: "Osiągnięto limit trwających eksportów.",
    21183: "Zakres filtrowania wykracza poza dostępny zakres danych.",
    21205: "Pakiet nie może być pusty.",
    21208: "Czas oczekiwania na requesty upload lub finish został przekroczony.",
    21301: "Brak autoryzacji.",
    21304: "Brak uwierzytelnienia.",
    21402: "Nieprawidłowy rozmiar pliku.",
    21403: "Nieprawidłowy skrót pliku.",
    21405: "Błąd walidacji danych wejściowych.",
    21418: "Przekazany token kontynuacji ma nieprawidłowy format.",
    21470: (
        "Przesłany identyfikator klucza jest nieznany lub wskazuje na wycofany klucz."
    ),
    26001: "Nie można nadać tokenowi uprawnień których nie posiadasz.",
    26002: "Nie można wygenerować tokena dla obecnego typu kontekstu.",
}


class ApiError(Exception):
    """A 400 answer with one KSeF exception code and its details."""

    def __init__(self, code: int, *details: str) -> None:
        super().__init__(f"KSeF exception {code}")
        self.code = code
        self.description = DESCRIPTIONS.get(code, "Błąd.")
        self.details = list(details)


class Unauthorized(Exception):
    """A 401 answer: the bearer token is missing, invalid, expired or revoked."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Forbidden(Exception):
    """A 403 answer with a ``reasonCode`` from the spec's ForbiddenProblemDetails."""

    def __init__(
        self, reason_code: str, detail: str, security: dict[str, Any] | None = None
    ) -> None:
        super().__init__(detail)
        self.reason_code = reason_code
        self.detail = detail
        self.security = security


class Gone(Exception):
    """A 410 answer: an asynchronous operation's status is past its retention."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class TooManyRequests(Exception):
    """A 429 answer telling the client to wait ``retry_after`` seconds."""

    def __init__(self, retry_after: int, detail: str) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.detail = detail


def timestamp(moment: datetime) -> str:
    """Return ``moment`` as an RFC 3339 timestamp with milliseconds."""
    return moment.isoformat(timespec="milliseconds")


def wants_problem_details(headers: Any) -> bool:
    """Tell whether the request asked for Problem Details errors."""
    value = headers.get("x-error-format", "")
    return str(value).strip().lower() == "problem-details"


def _json(status: int, body: Any, media_type: str, **headers: str) -> Response:
    content = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return Response(content, status, headers=headers or None, media_type=media_type)


def render_bad_request(
    error: ApiError,
    *,
    problem: bool,
    path: str,
    now: datetime,
    trace_id: str,
    service: str,
) -> Response:
    """Return the 400 response for ``error`` in the requested format."""
    if problem:
        body: dict[str, Any] = {
            "title": "Bad Request",
            "status": 400,
            "instance": path,
            "detail": "Żądanie jest nieprawidłowe.",
            "errors": [
                {
                    "code": error.code,
                    "description": error.description,
                    "details": error.details,
                }
            ],
            "timestamp": timestamp(now),
            "traceId": trace_id,
        }
        return _json(400, body, "application/problem+json")

    body = {
        "exception": {
            "exceptionDetailList": [
                {
                    "exceptionCode": error.code,
                    "exceptionDescription": error.description,
                    "details": error.details,
                }
            ],
            "serviceCode": trace_id,
            "serviceCtx": "srvKSEFSIM",
            "serviceName": service,
            "timestamp": timestamp(now),
        }
    }
    return _json(400, body, "application/json")


def render_unauthorized(
    error: Unauthorized, *, path: str, now: datetime, trace_id: str
) -> Response:
    """Return the 401 Problem Details response the spec defines."""
    body = {
        "title": "Unauthorized",
        "status": 401,
        "detail": error.detail,
        "instance": path,
        "traceId": trace_id,
        "timestamp": timestamp(now),
    }
    return _json(401, body, "application/problem+json")


def render_forbidden(
    error: Forbidden, *, path: str, now: datetime, trace_id: str
) -> Response:
    """Return the 403 Problem Details response the spec defines."""
    body: dict[str, Any] = {
        "title": "Forbidden",
        "status": 403,
        "detail": error.detail,
        "instance": path,
        "reasonCode": error.reason_code,
        "traceId": trace_id,
        "timestamp": timestamp(now),
    }
    if error.security is not None:
        body["security"] = error.security
    return _json(403, body, "application/problem+json")


def render_gone(error: Gone, *, path: str, now: datetime, trace_id: str) -> Response:
    """Return the 410 Problem Details response (spec: GoneProblemDetails)."""
    body = {
        "title": "Gone",
        "status": 410,
        "instance": path,
        "detail": error.detail,
        "timestamp": timestamp(now),
        "traceId": trace_id,
    }
    return _json(410, body, "application/problem+json")


def render_too_many_requests(
    error: TooManyRequests, *, problem: bool, path: str, now: datetime, trace_id: str
) -> Response:
    """Return the 429 response with ``Retry-After`` in the requested format."""
    retry_after = str(error.retry_after)
    if problem:
        body: dict[str, Any] = {
            "title": "Too Many Requests",
            "status": 429,
            "instance": path,
            "detail": error.detail,
            "timestamp": timestamp(now),
            "traceId": trace_id,
        }
        return _json(
            429, body, "application/problem+json", **{"Retry-After": retry_after}
        )

    body = {
        "status": {
            "code": 429,
            "description": "Too Many Requests",
            "details": [error.detail],
        }
    }
    return _json(429, body, "application/json", **{"Retry-After": retry_after})
