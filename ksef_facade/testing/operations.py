"""The operations the simulator serves, named for fault injection and rate limits.

Paths under ``/v2`` are exactly the spec's; ``upload_part`` and ``download_upo`` are
the simulator's stand-ins for KSeF's pre-signed blob URLs and live outside ``/v2``.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "OPERATIONS",
    "Operation",
    "match_operation",
    "operation_names",
    "scope_operation",
]

API_PREFIX = "/v2"


@dataclass(frozen=True)
class Operation:
    """One served route: its name, HTTP method and path template."""

    name: str
    method: str
    path: str
    group: str

    @property
    def full_path(self) -> str:
        """The path as served, with the ``/v2`` prefix for API operations."""
        if self.group == "presigned":
            return self.path
        return API_PREFIX + self.path

    def pattern(self) -> re.Pattern[str]:
        """Return a regex matching concrete paths of this operation."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.full_path)
        return re.compile(f"^{regex}$")


# Group names are the rate-limit groups of the spec's 429 tables (limity-api.md).
OPERATIONS = (
    Operation(
        "get_public_key_certificates",
        "GET",
        "/security/public-key-certificates",
        "anonymous",
    ),
    Operation("auth_challenge", "POST", "/auth/challenge", "anonymous"),
    Operation("auth_ksef_token", "POST", "/auth/ksef-token", "anonymous"),
    Operation("auth_xades_signature", "POST", "/auth/xades-signature", "anonymous"),
    Operation("auth_sessions_list", "GET", "/auth/sessions", "other"),
    Operation("auth_status", "GET", "/auth/{referenceNumber}", "anonymous"),
    Operation("auth_redeem", "POST", "/auth/token/redeem", "anonymous"),
    Operation("auth_refresh", "POST", "/auth/token/refresh", "anonymous"),
    Operation(
        "auth_session_revoke_current", "DELETE", "/auth/sessions/current", "other"
    ),
    Operation(
        "auth_session_revoke", "DELETE", "/auth/sessions/{referenceNumber}", "other"
    ),
    Operation("tokens_generate", "POST", "/tokens", "other"),
    Operation("tokens_list", "GET", "/tokens", "other"),
    Operation("token_status", "GET", "/tokens/{referenceNumber}", "other"),
    Operation("token_revoke", "DELETE", "/tokens/{referenceNumber}", "other"),
    Operation("open_online_session", "POST", "/sessions/online", "onlineSession"),
    Operation(
        "send_online_invoice",
        "POST",
        "/sessions/online/{referenceNumber}/invoices",
        "invoiceSend",
    ),
    Operation(
        "close_online_session",
        "POST",
        "/sessions/online/{referenceNumber}/close",
        "onlineSessionClose",
    ),
    Operation("open_batch_session", "POST", "/sessions/batch", "batchSession"),
    Operation(
        "close_batch_session",
        "POST",
        "/sessions/batch/{referenceNumber}/close",
        "batchSessionClose",
    ),
    Operation("sessions_list", "GET", "/sessions", "sessionList"),
    Operation("session_status", "GET", "/sessions/{referenceNumber}", "sessionMisc"),
    Operation(
        "session_failed_invoices",
        "GET",
        "/sessions/{referenceNumber}/invoices/failed",
        "sessionInvoiceList",
    ),
    Operation(
        "session_invoices",
        "GET",
        "/sessions/{referenceNumber}/invoices",
        "sessionInvoiceList",
    ),
    Operation(
        "invoice_upo_by_ksef_number",
        "GET",
        "/sessions/{referenceNumber}/invoices/ksef/{ksefNumber}/upo",
        "sessionMisc",
    ),
    Operation(
        "invoice_upo_by_reference",
        "GET",
        "/sessions/{referenceNumber}/invoices/{invoiceReferenceNumber}/upo",
        "sessionMisc",
    ),
    Operation(
        "session_invoice_status",
        "GET",
        "/sessions/{referenceNumber}/invoices/{invoiceReferenceNumber}",
        "invoiceStatus",
    ),
    Operation(
        "session_upo",
        "GET",
        "/sessions/{referenceNumber}/upo/{upoReferenceNumber}",
        "sessionMisc",
    ),
    Operation("get_invoice", "GET", "/invoices/ksef/{ksefNumber}", "invoiceDownload"),
    Operation("start_export", "POST", "/invoices/exports", "invoiceExport"),
    Operation(
        "export_status",
        "GET",
        "/invoices/exports/{referenceNumber}",
        "invoiceExportStatus",
    ),
    Operation(
        "query_invoice_metadata", "POST", "/invoices/query/metadata", "invoiceMetadata"
    ),
    Operation("get_rate_limits", "GET", "/rate-limits", "other"),
    Operation("set_test_rate_limits", "POST", "/testdata/rate-limits", "other"),
    Operation("reset_test_rate_limits", "DELETE", "/testdata/rate-limits", "other"),
    Operation(
        "set_test_production_rate_limits",
        "POST",
        "/testdata/rate-limits/production",
        "other",
    ),
    Operation(
        "upload_part", "PUT", "/upload/{referenceNumber}/{ordinalNumber}", "presigned"
    ),
    Operation("download_upo", "GET", "/upo/{token}", "presigned"),
    Operation("download_export_part", "GET", "/export/{token}", "presigned"),
)

_BY_NAME = {operation.name: operation for operation in OPERATIONS}
_PATTERNS = [(operation, operation.pattern()) for operation in OPERATIONS]


def operation_names() -> frozenset[str]:
    """Return the names of all served operations."""
    return frozenset(_BY_NAME)


def match_operation(method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
    """Return the operation serving ``method path`` and its path parameters."""
    for operation, pattern in _PATTERNS:
        if operation.method != method:
            continue
        found = pattern.match(path)
        if found:
            return operation, found.groupdict()
    return None


_SCOPE_KEY = "ksef_sim.operation"


def scope_operation(
    scope: MutableMapping[str, Any],
) -> tuple[Operation, dict[str, str]] | None:
    """Return the operation of an HTTP scope, matched once and kept in the scope.

    The fault layer, the contract layer and the dispatcher all need it.
    """
    if _SCOPE_KEY not in scope:
        scope[_SCOPE_KEY] = match_operation(scope["method"], scope["path"])
    matched: tuple[Operation, dict[str, str]] | None = scope[_SCOPE_KEY]
    return matched
