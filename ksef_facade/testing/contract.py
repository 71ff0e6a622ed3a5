"""Contract validation of simulator traffic against the pinned KSeF spec.

The spec is read from ``KSEF_SPEC_FILE`` or ``<repo>/../shared/ksef-openapi/
ksef-openapi-2.9.0.json`` (it is never copied into the repository). Building the
validator takes a few seconds, so it is built once per process and spec path.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers, QueryParams

from .operations import scope_operation

if TYPE_CHECKING:
    from .simulator import Simulator

__all__ = [
    "ContractLayer",
    "ContractValidator",
    "ContractViolation",
    "default_spec_path",
    "shared_validator",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Requests are presented as if sent to the spec's own server, so paths resolve.
_SPEC_HOST = "https://api-test.ksef.mf.gov.pl"
_validators: dict[Path, ContractValidator] = {}
_validators_lock = threading.Lock()


def default_spec_path() -> Path:
    """Return the pinned spec's path: ``KSEF_SPEC_FILE`` or the shared copy."""
    configured = os.environ.get("KSEF_SPEC_FILE")
    if configured:
        return Path(configured)
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "ksef-openapi" / "ksef-openapi-2.9.0.json"


class ContractViolation(AssertionError):
    """Raised by :meth:`Simulator.check_contract` when traffic broke the spec."""


@dataclass
class _Request:
    method: str
    path: str
    query: QueryParams
    headers: Headers
    body: bytes

    def __post_init__(self) -> None:
        from openapi_core.datatypes import RequestParameters

        # openapi-core fills in the path parameters on this object, so keep one.
        self.parameters = RequestParameters(
            query=self.query, header=self.headers, cookie={}
        )

    @property
    def host_url(self) -> str:
        return _SPEC_HOST

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type") or "application/octet-stream"


@dataclass
class _Response:
    status_code: int
    headers: Headers
    data: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type") or ""


def _xml_as_text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _safe_str(error: object) -> str:
    try:
        return str(error)
    except Exception:  # some openapi-core errors fail to format themselves
        return type(error).__name__


def _describe(errors: list[Exception]) -> str:
    parts = []
    for error in errors:
        causes = getattr(error, "schema_errors", None) or [
            getattr(error, "__cause__", None) or error
        ]
        for cause in causes:
            text = getattr(cause, "message", None) or _safe_str(cause)
            location = "/".join(str(p) for p in getattr(cause, "absolute_path", []))
            parts.append(
                f"{type(error).__name__}: {text}"
                + (f" at {location}" if location else "")
            )
    return "; ".join(parts)[:2000]


class ContractValidator:
    """Validates requests and responses against one spec file."""

    def __init__(self, spec_path: Path) -> None:
        from openapi_core import Config, OpenAPI

        self.spec_path = spec_path
        # Problem Details are JSON; XML bodies are declared as plain strings.
        deserializers: dict[str, Callable[[bytes], Any]] = {
            "application/problem+json": json.loads,
            "application/xml": _xml_as_text,
        }
        config = Config(extra_media_type_deserializers=deserializers)
        self._openapi = OpenAPI.from_file_path(str(spec_path), config=config)
        self._lock = threading.Lock()

    def request_errors(self, request: _Request) -> str | None:
        """Return a readable description of what is wrong with ``request``."""
        with self._lock:
            errors = list(self._openapi.iter_request_errors(request))
        return _describe(errors) if errors else None

    def response_errors(self, request: _Request, response: _Response) -> str | None:
        """Return a readable description of what is wrong with ``response``."""
        with self._lock:
            errors = list(self._openapi.iter_response_errors(request, response))
        return _describe(errors) if errors else None


def shared_validator(spec_path: str | Path | None = None) -> ContractValidator:
    """Return the process-wide validator for ``spec_path`` (default: pinned spec)."""
    path = Path(spec_path) if spec_path else default_spec_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"pinned KSeF spec not found at {path}; set KSEF_SPEC_FILE"
        )
    with _validators_lock:
        validator = _validators.get(path)
        if validator is None:
            try:
                validator = ContractValidator(path)
            except ImportError as exc:
                raise ImportError(
                    "contract validation needs openapi-core: install the 'contract' "
                    "extra (pip install 'ksef-facade[contract]')"
                ) from exc
            _validators[path] = validator
        return validator


class ContractLayer:
    """Checks each ``/v2`` request and response; records readable violations."""

    def __init__(self, sim: Simulator, app: ASGIApp) -> None:
        self.sim = sim
        self.app = app
        self.validator = sim.contract()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = scope_operation(scope) if scope["type"] == "http" else None
        if matched is None or matched[0].group == "presigned":
            await self.app(scope, receive, send)
            return

        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        body = b"".join(chunks)

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        await self.app(scope, replay, capture)

        request = _Request(
            method=scope["method"].lower(),
            path=scope["path"],
            query=QueryParams(scope.get("query_string", b"")),
            headers=Headers(scope=scope),
            body=body,
        )
        self._check(matched[0].name, request, captured)
        for message in captured:
            await send(message)

    def _check(self, name: str, request: _Request, captured: list[Message]) -> None:
        start = next(m for m in captured if m["type"] == "http.response.start")
        data = b"".join(
            m.get("body", b"") for m in captured if m["type"] == "http.response.body"
        )
        headers = Headers(raw=list(start.get("headers", [])))
        response = _Response(start["status"], headers, data)

        problem = self.validator.request_errors(request)
        if problem:
            self.sim.record_contract_violation(
                "request",
                f"{request.method.upper()} {request.path} ({name}): {problem}",
            )
        problem = self.validator.response_errors(request, response)
        if problem:
            snippet = json.dumps(data[:300].decode("utf-8", "replace"))
            self.sim.record_contract_violation(
                "response",
                f"{request.method.upper()} {request.path} ({name}) -> "
                f"{response.status_code}: "
                f"{problem}; body starts {snippet}",
            )
