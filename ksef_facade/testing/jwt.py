"""Minimal HS256 JSON Web Tokens for the simulator's access and refresh tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

__all__ = ["InvalidTokenError", "b64url", "decode", "encode", "unb64url"]


class InvalidTokenError(Exception):
    """Raised when a token is malformed or its signature does not match."""


def b64url(data: bytes) -> str:
    """Return unpadded URL-safe Base64 of ``data`` (RFC 7515, section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """Decode unpadded URL-safe Base64; raise ``ValueError`` when it is not."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(claims: dict[str, Any], secret: bytes) -> str:
    """Return a compact HS256 JWT carrying ``claims``."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def decode(token: str, secret: bytes) -> dict[str, Any]:
    """Return the claims of ``token`` after checking its HS256 signature."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidTokenError("not a compact JWT")

    try:
        signature = unb64url(parts[2])
        expected = hmac.new(
            secret, f"{parts[0]}.{parts[1]}".encode("ascii"), hashlib.sha256
        ).digest()
        if not hmac.compare_digest(signature, expected):
            raise InvalidTokenError("signature mismatch")
        claims = json.loads(unb64url(parts[1]))
    except (ValueError, UnicodeError) as exc:
        raise InvalidTokenError("malformed JWT") from exc

    if not isinstance(claims, dict):
        raise InvalidTokenError("claims are not an object")
    return claims
