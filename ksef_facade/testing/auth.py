"""Authentication: challenge, KSeF-token auth, status, redeem, refresh, auth sessions.

uwierzytelnianie.md: a challenge lives 10 minutes; the client encrypts
``token|timestampMs`` with RSA-OAEP SHA-256 under the KsefTokenEncryption key;
authentication is asynchronous (status 100, then 200 or a failure code); tokens are
redeemed once; the refresh token renews the access token. auth/sesje.md: revoking an
auth session stops its refresh token, access tokens live until they expire.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from .calls import Call, Reply
from .errors import ApiError, timestamp
from .fields import b64_field, object_field, optional_digest, page_size, str_field
from .keys import unwrap
from .paging import paged_reply
from .state import AuthOperation, Challenge, Status

__all__ = [
    "auth_challenge",
    "auth_ksef_token",
    "auth_redeem",
    "auth_refresh",
    "auth_session_revoke",
    "auth_session_revoke_current",
    "auth_sessions_list",
    "auth_status",
    "auth_xades_signature",
    "decide_token_auth",
    "read_ip_policy",
]

_IN_PROGRESS = Status(100, "Uwierzytelnianie w toku")
_SUCCESS = Status(200, "Uwierzytelnianie zakończone sukcesem")
_REVOKED = Status(
    425,
    "Uwierzytelnienie unieważnione",
    (
        "Uwierzytelnienie i powiązane refresh tokeny zostały unieważnione "
        "przez użytkownika",
    ),
)
# spec: AuthenticationOperationStatusResponse, status 415.
_NO_PERMISSIONS = Status(
    415, "Uwierzytelnianie zakończone niepowodzeniem", ("Brak przypisanych uprawnień",)
)
_BAD_TOKEN = "Uwierzytelnianie zakończone niepowodzeniem z powodu błędnego tokenu"  # noqa: S105
_METHOD_INFO = {"category": "Token", "code": "Token.Ksef", "displayName": "Token KSeF"}
_CONTEXT_TYPES = ("Nip", "InternalId", "NipVatUe", "PeppolId")


def _failed(detail: str) -> Status:
    return Status(450, _BAD_TOKEN, (detail,))


def auth_challenge(call: Call) -> Reply:
    """POST /auth/challenge: issue a challenge and its timestamp."""
    sim = call.sim
    now = sim.now()
    # timestampMs is whole milliseconds, so keep the challenge time at that precision.
    issued = now.replace(microsecond=now.microsecond // 1000 * 1000)
    value = sim.new_reference("CR")
    sim.challenges[value] = Challenge(value, issued)
    return Reply(
        200,
        {
            "challenge": value,
            "timestamp": timestamp(issued),
            "timestampMs": int(issued.timestamp() * 1000),
            "clientIp": call.client_ip,
        },
    )


def decide_token_auth(
    call: Call, challenge: Challenge, context: dict[str, str], plaintext: bytes | None
) -> tuple[Status, str | None, list[str]]:
    """Return the auth outcome, the KSeF token's reference and its permissions."""
    if plaintext is None:
        return _failed("Nieprawidłowe szyfrowanie tokena"), None, []
    try:
        token, _, stamp = plaintext.decode("utf-8").rpartition("|")
    except UnicodeDecodeError:
        return _failed("Nieprawidłowe kodowanie tokena"), None, []

    # uwierzytelnianie.md: the token is encrypted as token|timestampMs of the challenge.
    if not token or stamp != str(int(challenge.issued.timestamp() * 1000)):
        return _failed("Nieprawidłowy czas tokena"), None, []

    record = next((r for r in call.sim.ksef_tokens.values() if r.secret == token), None)
    if record is None:
        return _failed("Nieprawidłowy token"), None, []
    if record.revoked:
        return _failed("Token unieważniony"), record.reference_number, []
    if call.sim.now() < record.active_from:
        return _failed("Token nieaktywny"), record.reference_number, []
    if context["type"] != "Nip" or context["value"] != record.nip:
        detail = f"Token nie może być użyty w kontekście {context['value']}"
        return _failed(detail), record.reference_number, []

    if not record.permissions:
        return _NO_PERMISSIONS, record.reference_number, []

    record.last_use = call.sim.now()
    return _SUCCESS, record.reference_number, list(record.permissions)


def _ip_range(text: str, kind: str) -> tuple[int, int]:
    try:
        if kind == "ip4Masks":
            network = ipaddress.IPv4Network(text, strict=False)
            return int(network.network_address), int(network.broadcast_address)
        if kind == "ip4Ranges":
            first, _, last = text.partition("-")
            return int(ipaddress.IPv4Address(first)), int(ipaddress.IPv4Address(last))
        address = int(ipaddress.IPv4Address(text))
    except ValueError as exc:
        raise ApiError(
            21405, f"Nieprawidłowa wartość w authorizationPolicy: {text}"
        ) from exc
    return address, address


def read_ip_policy(body: dict[str, Any]) -> list[tuple[int, int]] | None:
    """Return the allowed IPv4 ranges of ``authorizationPolicy``, if it sets any."""
    policy = body.get("authorizationPolicy")
    allowed = policy.get("allowedIps") if isinstance(policy, dict) else None
    if not isinstance(allowed, dict):
        return None

    ranges = []
    for kind in ("ip4Addresses", "ip4Ranges", "ip4Masks"):
        values = allowed.get(kind) or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ApiError(
                21405, f"Pole 'authorizationPolicy.allowedIps.{kind}' jest błędne."
            )
        ranges += [_ip_range(value, kind) for value in values]
    return ranges or None


def auth_ksef_token(call: Call) -> Reply:
    """POST /auth/ksef-token: start authentication with an encrypted KSeF token."""
    sim = call.sim
    body = call.json()
    challenge_value = str_field(body, "challenge", min_length=36, max_length=36)
    context = object_field(body, "contextIdentifier")
    context_type = str_field(context, "type", choices=_CONTEXT_TYPES)
    context_value = str_field(context, "value")
    encrypted = b64_field(body, "encryptedToken")
    key_id = optional_digest(body, "publicKeyId")
    keys = sim.keys.candidates("KsefTokenEncryption", key_id)

    # uwierzytelnianie.md: the challenge is valid for 10 minutes and used once.
    challenge = sim.challenges.get(challenge_value)
    age = (sim.now() - challenge.issued).total_seconds() if challenge else 0.0
    if challenge is None or challenge.used or age > sim.challenge_ttl:
        raise ApiError(21111)
    challenge.used = True

    plaintext = unwrap(keys, encrypted)
    allowed_ips = read_ip_policy(body)
    context_id = {"type": context_type, "value": context_value}
    outcome, token_reference, permissions = decide_token_auth(
        call, challenge, context_id, plaintext
    )
    operation = AuthOperation(
        reference_number=sim.new_reference("AU"),
        nip=context_value,
        started=sim.now(),
        ready_at=sim.ready_at(),
        outcome=outcome,
        permissions=permissions,
        token_reference=token_reference,
        allowed_ips=allowed_ips,
    )
    sim.auth_operations[operation.reference_number] = operation
    token, valid_until = sim.issue_token(
        "authentication", operation, sim.authentication_token_ttl
    )
    return Reply(
        202,
        {
            "referenceNumber": operation.reference_number,
            "authenticationToken": {
                "token": token,
                "validUntil": timestamp(valid_until),
            },
        },
    )


def auth_xades_signature(call: Call) -> Reply:
    """POST /auth/xades-signature: not supported by the simulator yet."""
    # TODO: XAdES signature verification is not simulated yet; until it is, clients
    # get a clear 400 instead of a silent success.
    raise ApiError(
        21405,
        "Uwierzytelnianie podpisem XAdES nie jest jeszcze obsługiwane w symulatorze.",
    )


def _current_status(call: Call, operation: AuthOperation) -> Status:
    if operation.revoked:
        return _REVOKED
    if call.sim.now() < operation.ready_at:
        return _IN_PROGRESS
    return operation.outcome


def _describe(call: Call, operation: AuthOperation) -> dict[str, Any]:
    body: dict[str, Any] = {
        "startDate": timestamp(operation.started),
        "authenticationMethod": "Token",
        "authenticationMethodInfo": dict(_METHOD_INFO),
        "status": _current_status(call, operation).to_json(),
        "isTokenRedeemed": operation.redeemed,
    }
    if operation.last_refresh is not None:
        body["lastTokenRefreshDate"] = timestamp(operation.last_refresh)
    if operation.refresh_valid_until is not None:
        body["refreshTokenValidUntil"] = timestamp(operation.refresh_valid_until)
    return body


def auth_status(call: Call) -> Reply:
    """GET /auth/{referenceNumber}: the status of an authentication."""
    access = call.sim.verify_token(call.bearer(), ("authentication",))
    reference = call.path_params["referenceNumber"]
    operation = call.sim.auth_operations.get(reference)
    if operation is None or reference != access.auth_reference:
        raise ApiError(
            21304,
            f"Operacja uwierzytelniania o numerze referencyjnym {reference} "
            "nie została znaleziona.",
        )
    call.sim.check_retention(operation.started)
    return Reply(200, _describe(call, operation))


def auth_redeem(call: Call) -> Reply:
    """POST /auth/token/redeem: hand out the access and refresh token, once."""
    sim = call.sim
    access = sim.verify_token(call.bearer(), ("authentication",))
    operation = sim.auth_operations[access.auth_reference]

    status = _current_status(call, operation)
    if operation.redeemed:
        raise ApiError(
            21301,
            f"Tokeny dla operacji uwierzytelniania {operation.reference_number} "
            "zostały już pobrane.",
        )
    if status.code != 200:
        raise ApiError(
            21301,
            f"Status uwierzytelniania ({status.code}) nie pozwala na pobranie tokenów.",
        )
    token_record = sim.ksef_tokens.get(operation.token_reference or "")
    if token_record is not None and token_record.revoked:
        raise ApiError(21301, "Token KSeF został unieważniony.")

    operation.redeemed = True
    access_token, access_until = sim.issue_token(
        "access", operation, sim.access_token_ttl
    )
    refresh_token, refresh_until = sim.issue_token(
        "refresh", operation, sim.refresh_token_ttl
    )
    operation.refresh_valid_until = refresh_until
    return Reply(
        200,
        {
            "accessToken": {
                "token": access_token,
                "validUntil": timestamp(access_until),
            },
            "refreshToken": {
                "token": refresh_token,
                "validUntil": timestamp(refresh_until),
            },
        },
    )


def auth_refresh(call: Call) -> Reply:
    """POST /auth/token/refresh: a new access token for a valid refresh token."""
    sim = call.sim
    access = sim.verify_token(call.bearer(), ("refresh",))
    operation = sim.auth_operations[access.auth_reference]

    token_record = sim.ksef_tokens.get(operation.token_reference or "")
    if token_record is not None and token_record.revoked:
        raise ApiError(21301, "Token KSeF został unieważniony.")

    operation.last_refresh = sim.now()
    token, valid_until = sim.issue_token("access", operation, sim.access_token_ttl)
    return Reply(
        200, {"accessToken": {"token": token, "validUntil": timestamp(valid_until)}}
    )


def _active(call: Call, operation: AuthOperation) -> bool:
    until = operation.refresh_valid_until
    return (
        operation.redeemed
        and not operation.revoked
        and until is not None
        and (call.sim.now() < until)
    )


def auth_sessions_list(call: Call) -> Reply:
    """GET /auth/sessions: active auth sessions of the context, newest first."""
    access = call.access()
    size = page_size(call.query, minimum=10, maximum=100, default=10)
    operations = [
        op
        for op in call.sim.auth_operations.values()
        if op.nip == access.nip and _active(call, op)
    ]
    operations.sort(key=lambda op: op.started, reverse=True)

    def render(operation: AuthOperation) -> dict[str, Any]:
        return _describe(call, operation) | {
            "referenceNumber": operation.reference_number,
            "isCurrent": operation.reference_number == access.auth_reference,
        }

    return paged_reply(
        call, "items", operations, render, scope=f"auth:{access.nip}", size=size
    )


def auth_session_revoke_current(call: Call) -> Reply:
    """DELETE /auth/sessions/current: revoke the session of the calling token."""
    access = call.sim.verify_token(call.bearer(), ("access", "refresh"))
    call.sim.auth_operations[access.auth_reference].revoked = True
    return Reply(204)


def auth_session_revoke(call: Call) -> Reply:
    """DELETE /auth/sessions/{referenceNumber}: revoke one auth session."""
    access = call.access()
    reference = call.path_params["referenceNumber"]
    operation = call.sim.auth_operations.get(reference)
    if operation is None or operation.nip != access.nip:
        raise ApiError(
            21405, f"Sesja uwierzytelnienia {reference} nie została znaleziona."
        )
    operation.revoked = True
    return Reply(204)
