"""KSeF token management: generate, list, status and revoke (tokeny-ksef.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from .calls import Call, Reply
from .errors import ApiError, timestamp
from .fields import page_size, str_field, str_list
from .paging import paged_reply
from .state import KsefTokenRecord

__all__ = ["token_revoke", "token_status", "tokens_generate", "tokens_list"]

# spec: TokenPermissionType and AuthenticationTokenStatus.
PERMISSIONS = (
    "InvoiceRead",
    "InvoiceWrite",
    "CredentialsRead",
    "CredentialsManage",
    "SubunitManage",
    "EnforcementOperations",
    "Introspection",
    "CollectiveIdentifierManage",
)
STATUSES = ("Pending", "Active", "Revoking", "Revoked", "Failed")


def _status(call: Call, record: KsefTokenRecord) -> str:
    if record.revoked:
        return "Revoked"
    return "Pending" if call.sim.now() < record.active_from else "Active"


def _token_json(call: Call, record: KsefTokenRecord) -> dict[str, Any]:
    body: dict[str, Any] = {
        "referenceNumber": record.reference_number,
        "authorIdentifier": {"type": "Nip", "value": record.author_nip},
        "contextIdentifier": {"type": "Nip", "value": record.nip},
        "description": record.description,
        "requestedPermissions": list(record.permissions),
        "dateCreated": timestamp(record.created),
        "status": _status(call, record),
    }
    if record.last_use is not None:
        body["lastUseDate"] = timestamp(record.last_use)
    return body


def tokens_generate(call: Call) -> Reply:
    """POST /tokens: a new KSeF token, active once processed, shown only once."""
    sim = call.sim
    access = call.access("CredentialsManage")
    body = call.json()
    permissions = str_list(body, "permissions", PERMISSIONS)
    # spec GenerateTokenRequest: a description of 5 to 256 characters.
    description = str_field(body, "description", min_length=5, max_length=256)

    missing = sorted(set(permissions) - set(access.permissions))
    if missing:
        raise ApiError(26001, f"Brakujące uprawnienia: {', '.join(missing)}.")

    reference = sim.new_reference("TK")
    secret = f"{reference}|nip-{access.nip}|{sim.random_hex(32).lower()}"
    sim.ksef_tokens[reference] = KsefTokenRecord(
        reference_number=reference,
        secret=secret,
        nip=access.nip,
        permissions=permissions,
        description=description,
        created=sim.now(),
        author_nip=access.nip,
        active_from=sim.now() + timedelta(seconds=sim.processing_delay),
    )
    return Reply(202, {"referenceNumber": reference, "token": secret})


def tokens_list(call: Call) -> Reply:
    """GET /tokens: the context's tokens, newest first, filtered and paged."""
    access = call.access()
    size = page_size(call.query, minimum=10, maximum=100, default=10)
    wanted = call.query.getlist("status")
    if any(value not in STATUSES for value in wanted):
        raise ApiError(21405, "Parametr 'status' zawiera nieznaną wartość.")
    description = call.query.get("description")
    author = call.query.get("authorIdentifier")

    records = [
        record
        for record in call.sim.ksef_tokens.values()
        if record.nip == access.nip
        and (not wanted or _status(call, record) in wanted)
        and (description is None or description.lower() in record.description.lower())
        and (author is None or author in record.author_nip)
    ]
    records.sort(key=lambda r: r.created, reverse=True)

    return paged_reply(
        call,
        "tokens",
        records,
        lambda record: _token_json(call, record),
        scope=f"tokens:{access.nip}",
        size=size,
    )


def _find(call: Call) -> KsefTokenRecord:
    access = call.access()
    reference = call.path_params["referenceNumber"]
    record = call.sim.ksef_tokens.get(reference)
    if record is None or record.nip != access.nip:
        raise ApiError(
            21405, f"Token o numerze referencyjnym {reference} nie istnieje."
        )
    return record


def token_status(call: Call) -> Reply:
    """GET /tokens/{referenceNumber}: one token's metadata and status."""
    return Reply(200, _token_json(call, _find(call)))


def token_revoke(call: Call) -> Reply:
    """DELETE /tokens/{referenceNumber}: revoke a token."""
    _find(call).revoked = True
    return Reply(204)
