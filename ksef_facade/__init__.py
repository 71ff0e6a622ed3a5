"""KSeF 2.0 client: a facade over the generated API client."""

from ksef_facade.context import current_nip, nip_context, validate_nip
from ksef_facade.environments import DEMO, PROD, TEST, Environment
from ksef_facade.errors import (
    BadRequestError,
    ForbiddenError,
    GoneError,
    InvalidNipError,
    InvoiceRejectedError,
    KsefApiError,
    KsefError,
    KsefTimeoutError,
    KsefTransportError,
    NipContextMissingError,
    NotFoundError,
    RateLimitError,
    ServerError,
    UnauthorizedError,
    UpoHashMismatchError,
)
from ksef_facade.secrets import Secret, SecretBytes
from ksef_facade.tokens import (
    AsyncBearerAuth,
    AsyncTokenProvider,
    BearerAuth,
    TokenProvider,
    TokenSet,
)

__all__ = [
    "DEMO",
    "PROD",
    "TEST",
    "AsyncBearerAuth",
    "AsyncTokenProvider",
    "BadRequestError",
    "BearerAuth",
    "Environment",
    "ForbiddenError",
    "GoneError",
    "InvalidNipError",
    "InvoiceRejectedError",
    "KsefApiError",
    "KsefError",
    "KsefTimeoutError",
    "KsefTransportError",
    "NipContextMissingError",
    "NotFoundError",
    "RateLimitError",
    "Secret",
    "SecretBytes",
    "ServerError",
    "TokenProvider",
    "TokenSet",
    "UnauthorizedError",
    "UpoHashMismatchError",
    "current_nip",
    "nip_context",
    "validate_nip",
]
