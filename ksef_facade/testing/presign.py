"""Pre-signed URLs: the simulator's stand-in for KSeF's blob storage links.

Part upload URLs (sesja-wsadowa.md) and UPO download URLs (UpoPageResponse) carry
their own access key and are called without a bearer token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .errors import timestamp
from .jwt import b64url, unb64url

if TYPE_CHECKING:
    from .calls import Call

__all__ = ["LINK_TTL", "download_link", "sign", "verify"]

# How long the UPO and export-part download links stay valid.
LINK_TTL = timedelta(hours=1)


def sign(secret: bytes, payload: dict[str, Any]) -> str:
    """Return an opaque, signed token carrying ``payload``."""
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    body = b64url(raw)
    mac = hmac.new(secret, body.encode("ascii"), hashlib.sha256).hexdigest()[:32]
    return f"{body}.{mac}"


def download_link(call: Call, prefix: str, payload: dict[str, Any]) -> tuple[str, str]:
    """Return a signed ``{origin}/{prefix}/{token}`` link and its expiry timestamp."""
    expires = call.sim.now() + LINK_TTL
    token = sign(call.sim.presign_secret, {**payload, "e": int(expires.timestamp())})
    return f"{call.origin}/{prefix}/{token}", timestamp(expires)


def verify(secret: bytes, token: str, now: datetime | None) -> dict[str, Any] | None:
    """Return the payload of a valid token, else ``None``.

    The token must also be unexpired at ``now`` unless ``now`` is ``None``.
    """
    body, _, mac = token.partition(".")
    expected = hmac.new(
        secret, body.encode("ascii", "replace"), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(mac.encode(), expected[:32].encode()):
        return None
    try:
        payload = json.loads(unb64url(body))
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    if now is not None and payload.get("e", 0) < now.timestamp():
        return None
    return payload
