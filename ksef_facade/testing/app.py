"""The ASGI application: routing, error rendering, limits, faults and contract checks.

Layers, outermost first: fault injection (:mod:`.faults`), contract validation
(:mod:`.contract`, when switched on), then the dispatcher, which matches the
operation, reads the body, applies rate limits and calls the handler under the
simulator's lock.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from . import (
    auth,
    batch,
    exports,
    invoices,
    limits,
    online,
    security,
    status,
    tokens,
)
from .calls import Call, Reply
from .errors import (
    ApiError,
    SimulatorError,
    TooManyRequests,
    Unauthorized,
    render_error,
    timestamp,
    wants_problem_details,
)
from .operations import Operation, scope_operation

if TYPE_CHECKING:
    from .simulator import Simulator

__all__ = ["HANDLERS", "build_app"]

logger = logging.getLogger("ksef_facade.testing.app")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HANDLERS: dict[str, Callable[[Call], Reply]] = {
    "get_public_key_certificates": security.get_public_key_certificates,
    "auth_challenge": auth.auth_challenge,
    "auth_ksef_token": auth.auth_ksef_token,
    "auth_xades_signature": auth.auth_xades_signature,
    "auth_sessions_list": auth.auth_sessions_list,
    "auth_status": auth.auth_status,
    "auth_redeem": auth.auth_redeem,
    "auth_refresh": auth.auth_refresh,
    "auth_session_revoke_current": auth.auth_session_revoke_current,
    "auth_session_revoke": auth.auth_session_revoke,
    "tokens_generate": tokens.tokens_generate,
    "tokens_list": tokens.tokens_list,
    "token_status": tokens.token_status,
    "token_revoke": tokens.token_revoke,
    "open_online_session": online.open_online_session,
    "send_online_invoice": online.send_online_invoice,
    "close_online_session": online.close_online_session,
    "open_batch_session": batch.open_batch_session,
    "close_batch_session": batch.close_batch_session,
    "upload_part": batch.upload_part,
    "sessions_list": status.sessions_list,
    "session_status": status.session_status_endpoint,
    "session_invoices": status.session_invoices,
    "session_failed_invoices": status.session_failed_invoices,
    "session_invoice_status": status.session_invoice_status,
    "invoice_upo_by_ksef_number": status.invoice_upo_by_ksef_number,
    "invoice_upo_by_reference": status.invoice_upo_by_reference,
    "session_upo": status.session_upo,
    "download_upo": status.download_upo,
    "get_invoice": invoices.get_invoice,
    "query_invoice_metadata": invoices.query_invoice_metadata,
    "start_export": exports.start_export,
    "export_status": exports.get_export_status,
    "download_export_part": exports.download_export_part,
    "get_rate_limits": limits.get_rate_limits,
    "set_test_rate_limits": limits.set_test_rate_limits,
    "reset_test_rate_limits": limits.reset_test_rate_limits,
    "set_test_production_rate_limits": limits.set_test_production_rate_limits,
}

# Not a KSeF rule: a guard so that no JSON body can exhaust memory; the largest
# legitimate one (a 3 MB invoice in Base64 with its metadata) is about 4 MB.
MAX_JSON_BODY = 8_000_000


class BodyTooLarge(Exception):
    """Raised while reading a body that exceeds the operation's limit."""


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _to_response(reply: Reply) -> Response:
    if reply.status == 204 or (reply.body is None and reply.content is None):
        return Response(status_code=reply.status, headers=reply.headers)
    if reply.content is not None:
        return Response(reply.content, reply.status, reply.headers, reply.media_type)
    content = json.dumps(reply.body, ensure_ascii=False).encode("utf-8")
    return Response(content, reply.status, reply.headers, "application/json")


def _rate_key(
    sim: Simulator, request: Request, client_ip: str
) -> tuple[str, str | None]:
    """Return the counter key (context and IP, or IP alone) and the context NIP."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        try:
            nip = sim.verify_token(header[7:].strip(), ("access",)).nip
        except Unauthorized:
            pass
        else:
            return f"{nip}|{client_ip}", nip
    return client_ip, None


def _throttle(
    sim: Simulator,
    request: Request,
    client_ip: str,
    operation: Operation,
    now: datetime,
) -> None:
    """Raise 429 when the request is over its group's limit (if limits are on)."""
    # Checked first so that, with limits off, no request verifies its token twice.
    if not sim.rate_limiter.enabled:
        return

    key, context = _rate_key(sim, request, client_ip)
    wait = sim.rate_limiter.check(
        key, operation.group, now, operation.name, context=context
    )
    if wait is not None:
        raise TooManyRequests(
            wait,
            f"Przekroczono limit żądań dla grupy {operation.group}. "
            f"Spróbuj ponownie po {wait} sekundach.",
        )


class Dispatcher:
    """Matches a request to its operation and runs the handler."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return

        request = Request(scope, receive)
        matched = scope_operation(scope)
        if matched is None:
            response = Response(
                json.dumps({"title": "Not Found", "status": 404}),
                404,
                media_type="application/problem+json",
            )
            await response(scope, receive, send)
            return

        operation, params = matched
        response = await self._handle(request, receive, operation, params)
        await response(scope, receive, send)

    async def _handle(
        self,
        request: Request,
        receive: Receive,
        operation: Operation,
        params: dict[str, str],
    ) -> Response:
        sim = self.sim
        problem = wants_problem_details(request.headers)
        limit = (
            batch.MAX_ENCRYPTED_PART_SIZE
            if operation.name == "upload_part"
            else MAX_JSON_BODY
        )
        client_ip = request.client.host if request.client else "127.0.0.1"
        with sim.lock:
            trace_id = sim.random_hex(16).lower()
            now = sim.now()
        path = request.url.path

        try:
            try:
                body = await _read_body(receive, limit)
            except BodyTooLarge as exc:
                raise ApiError(
                    21405, "Treść żądania przekracza dozwolony rozmiar."
                ) from exc

            call = Call(
                sim=sim,
                operation=operation.name,
                method=request.method,
                path=path,
                path_params=params,
                query=request.query_params,
                headers=request.headers,
                body=body,
                client_ip=client_ip,
                origin=f"{request.url.scheme}://{request.url.netloc}",
            )
            with sim.lock:
                sim.request_counts[operation.name] += 1
                _throttle(sim, request, client_ip, operation, now)
                reply = HANDLERS[operation.name](call)
        except SimulatorError as error:
            return render_error(
                error,
                problem=problem,
                path=path,
                now=now,
                trace_id=trace_id,
                service=operation.name,
            )

        logger.debug("%s %s -> %s", request.method, operation.full_path, reply.status)
        response = _to_response(reply)
        warning = request.headers.get("x-test-system-warning")
        if warning:
            # spec SystemWarning: X-Test-System-Warning is echoed as X-System-Warning.
            response.headers["X-System-Warning"] = warning
        return response


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def drop_connection(send: Send) -> None:
    """Abort the client connection without sending a response."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None and hasattr(transport, "abort"):
        transport.abort()
        # Let the server notice the disconnect before the app returns.
        await asyncio.sleep(0.01)
        return

    import httpx

    raise httpx.RemoteProtocolError("Server disconnected without sending a response.")


class FaultLayer:
    """Applies the simulator's fault rules before (or after) the wrapped app."""

    def __init__(self, sim: Simulator, app: ASGIApp) -> None:
        self.sim = sim
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        matched = scope_operation(scope)
        if matched is None:
            await self.app(scope, receive, send)
            return

        name = matched[0].name
        delay, fault = self.sim.faults.select(name)
        if delay:
            await asyncio.sleep(delay)
        if fault is None:
            await self.app(scope, receive, send)
            return

        logger.debug("injecting %s into %s", fault.kind, name)
        if fault.kind == "drop_before":
            await drop_connection(send)
        elif fault.kind == "drop_after":
            await self.app(scope, receive, _discard)
            await drop_connection(send)
        else:
            response = self._error_response(
                scope, fault.kind, fault.status, fault.retry_after
            )
            await response(scope, receive, send)

    def _error_response(
        self, scope: Scope, kind: str, status: int, retry_after: int
    ) -> Response:
        request = Request(scope)
        now = self.sim.now()
        if kind == "rate_limit":
            return render_error(
                TooManyRequests(retry_after, "Przekroczono limit żądań (symulowane)."),
                problem=wants_problem_details(request.headers),
                path=scope["path"],
                now=now,
                trace_id="fault",
                service="fault",
            )
        body = {
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": "Błąd serwera wstrzyknięty przez symulator.",
            "timestamp": timestamp(now),
        }
        return Response(json.dumps(body), status, media_type="application/problem+json")


async def _discard(message: Message) -> None:
    del message


def build_app(sim: Simulator) -> ASGIApp:
    """Return the simulator's ASGI app with its fault and contract layers."""
    app: ASGIApp = Dispatcher(sim)
    if sim.validate_contract:
        from .contract import ContractLayer

        app = ContractLayer(sim, app)
    return FaultLayer(sim, app)
