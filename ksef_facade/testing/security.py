"""GET /security/public-key-certificates: the keys clients encrypt with."""

from __future__ import annotations

from .calls import Call, Reply

__all__ = ["get_public_key_certificates"]


def get_public_key_certificates(call: Call) -> Reply:
    """List the published certificates (klucze-publiczne-do-szyfrowania.md, 2)."""
    return Reply(200, [key.to_json() for key in call.sim.keys.published()])
