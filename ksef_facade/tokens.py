"""Access tokens per NIP: the TokenProvider twins, their httpx auth and the core.

See ``ksef_facade._async.tokens`` for the behaviour; the sync twins are generated.
"""

from ksef_facade._async.bearer import AsyncBearerAuth
from ksef_facade._async.tokens import AsyncTokenProvider, TokenKind
from ksef_facade._sync.bearer import BearerAuth
from ksef_facade._sync.tokens import TokenProvider
from ksef_facade.token_cache import TokenAction, TokenSet, decide

__all__ = [
    "AsyncBearerAuth",
    "AsyncTokenProvider",
    "BearerAuth",
    "TokenAction",
    "TokenKind",
    "TokenProvider",
    "TokenSet",
    "decide",
]
