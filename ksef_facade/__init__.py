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

__all__ = [
    "DEMO",
    "PROD",
    "TEST",
    "BadRequestError",
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
    "UnauthorizedError",
    "UpoHashMismatchError",
    "current_nip",
    "nip_context",
    "validate_nip",
]
