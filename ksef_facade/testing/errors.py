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
from http import HTTPStatus
from typing import Any

from starlette.responses import Response

__all__ = [
    "DESCRIPTIONS",
    "ApiError",
    "Forbidden",
    "Gone",
    "SimulatorError",
    "TooManyRequests",
    "Unauthorized",
    "render_error",
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


class SimulatorError(Exception):
    """An error answer raised by a handler and rendered by :func:`render_error`."""

    status = 500

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def extensions(self) -> dict[str, Any]:
        """Return the members this error adds to its Problem Details body."""
        return {}


class ApiError(SimulatorError):
    """A 400 answer with one KSeF exception code and its details."""

    status = 400

    def __init__(self, code: int, *details: str) -> None:
        super().__init__(f"KSeF exception {code}")
        self.code = code
        self.description = DESCRIPTIONS.get(code, "Błąd.")
        self.details = list(details)


class Unauthorized(SimulatorError):
    """A 401 answer: the bearer token is missing, invalid, expired or revoked."""

    status = 401


class Forbidden(SimulatorError):
    """A 403 answer with a ``reasonCode`` from the spec's ForbiddenProblemDetails."""

    status = 403

    def __init__(
        self, reason_code: str, detail: str, security: dict[str, Any] | None = None
    ) -> None:
        super().__init__(detail)
        self.reason_code = reason_code
        self.security = security

    def extensions(self) -> dict[str, Any]:
        """Return ``reasonCode`` and, when known, ``security``."""
        members: dict[str, Any] = {"reasonCode": self.reason_code}
        if self.security is not None:
            members["security"] = self.security
        return members


class Gone(SimulatorError):
    """A 410 answer: an asynchronous operation's status is past its retention."""

    status = 410


class TooManyRequests(SimulatorError):
    """A 429 answer telling the client to wait ``retry_after`` seconds."""

    status = 429

    def __init__(self, retry_after: int, detail: str) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


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


def _legacy_body(
    error: SimulatorError, now: datetime, trace_id: str, service: str
) -> Any:
    if isinstance(error, TooManyRequests):
        # spec: TooManyRequestsResponse.
        return {
            "status": {
                "code": 429,
                "description": "Too Many Requests",
                "details": [error.detail],
            }
        }

    assert isinstance(error, ApiError)
    return {
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


def render_error(
    error: SimulatorError,
    *,
    problem: bool,
    path: str,
    now: datetime,
    trace_id: str,
    service: str,
) -> Response:
    """Return the response for ``error``, as Problem Details where the spec says so.

    400 and 429 follow ``problem`` (the request's ``X-Error-Format``); 401, 403 and
    410 are Problem Details only. 429 carries ``Retry-After``.
    """
    headers = {}
    if isinstance(error, TooManyRequests):
        headers["Retry-After"] = str(error.retry_after)
    if not problem and isinstance(error, ApiError | TooManyRequests):
        body = _legacy_body(error, now, trace_id, service)
        return _json(error.status, body, "application/json", **headers)

    members = error.extensions()
    detail = error.detail
    if isinstance(error, ApiError):
        detail = "Żądanie jest nieprawidłowe."
        members["errors"] = [
            {
                "code": error.code,
                "description": error.description,
                "details": error.details,
            }
        ]
    body = {
        "title": HTTPStatus(error.status).phrase,
        "status": error.status,
        "instance": path,
        "detail": detail,
        "timestamp": timestamp(now),
        "traceId": trace_id,
        **members,
    }
    return _json(error.status, body, "application/problem+json", **headers)
