"""The request and reply objects that the simulator's handlers work with."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ApiError, Forbidden, Unauthorized
from .servercrypto import sha256_b64

if TYPE_CHECKING:
    from starlette.datastructures import Headers, QueryParams

    from .simulator import Simulator

__all__ = ["EXPIRED_LINK", "Access", "Call", "Reply", "document_reply", "text_reply"]


@dataclass(frozen=True)
class Access:
    """Who a bearer token speaks for: the context NIP and the granted permissions."""

    nip: str
    auth_reference: str
    permissions: tuple[str, ...]
    token_kind: str


@dataclass
class Reply:
    """A handler's answer: JSON, or raw content with a media type."""

    status: int
    body: Any = None
    content: bytes | None = None
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def document_reply(content: bytes, media_type: str = "application/xml") -> Reply:
    """Return 200 with ``content`` and its ``x-ms-meta-hash`` (Base64 SHA-256).

    The spec's invoice, UPO and export-part downloads all carry that header.
    """
    headers = {"x-ms-meta-hash": sha256_b64(content)}
    return Reply(200, content=content, media_type=media_type, headers=headers)


def text_reply(status: int, message: str) -> Reply:
    """Return a plain-text answer, as the blob links (not the API) give."""
    return Reply(status, content=message.encode("utf-8"), media_type="text/plain")


# The answer of a pre-signed link that is forged or past its expiry.
EXPIRED_LINK = (403, "Link wygasl lub jest nieprawidlowy.")


@dataclass
class Call:
    """One API request as the handlers see it."""

    sim: Simulator
    operation: str
    method: str
    path: str
    path_params: Mapping[str, str]
    query: QueryParams
    headers: Headers
    body: bytes
    client_ip: str
    origin: str

    def json(self) -> dict[str, Any]:
        """Return the body as a JSON object, or raise 21001/21405."""
        try:
            value = json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(21001, "Treść żądania nie jest poprawnym JSON.") from exc
        if not isinstance(value, dict):
            raise ApiError(21405, "Treść żądania musi być obiektem JSON.")
        return value

    def bearer(self) -> str:
        """Return the bearer token, or raise 401 when there is none."""
        header = self.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Wymagane jest uwierzytelnienie.")
        return token.strip()

    def access(self, *any_of: str) -> Access:
        """Check the access token and that it grants one of ``any_of``."""
        access = self.sim.verify_token(self.bearer(), ("access",))
        self._check_ip(access)
        if any_of and not set(any_of) & set(access.permissions):
            raise Forbidden(
                "missing-permissions",
                "Brak wymaganych uprawnień do wykonania operacji "
                "w bieżącym kontekście.",
                {
                    "requiredAnyOfPermissions": list(any_of),
                    "presentPermissions": list(access.permissions),
                },
            )
        return access

    def _check_ip(self, access: Access) -> None:
        # uwierzytelnianie.md: authorizationPolicy limits the IPs using the token.
        operation = self.sim.auth_operations[access.auth_reference]
        if operation.allowed_ips is None:
            return
        try:
            address = int(ipaddress.IPv4Address(self.client_ip))
        except ValueError:
            address = -1
        if not any(low <= address <= high for low, high in operation.allowed_ips):
            raise Forbidden(
                "ip-not-allowed",
                "Żądanie pochodzi z adresu IP innego niż wskazany podczas "
                "uwierzytelnienia.",
                {"clientIp": self.client_ip},
            )
