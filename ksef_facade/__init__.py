"""KSeF 2.0 client: a facade over the generated API client."""

from ksef_facade._async.auth import AsyncAuthFacade
from ksef_facade._async.client import AsyncKsefClient
from ksef_facade._async.encryption import AsyncEncryptionService
from ksef_facade._async.online import AsyncInvoiceHandle, AsyncOnlineSession
from ksef_facade._sync.auth import AuthFacade
from ksef_facade._sync.client import KsefClient
from ksef_facade._sync.encryption import EncryptionService
from ksef_facade._sync.online import InvoiceHandle, OnlineSession
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
from ksef_facade.forms import FormCode
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
    "AsyncAuthFacade",
    "AsyncBearerAuth",
    "AsyncEncryptionService",
    "AsyncInvoiceHandle",
    "AsyncKsefClient",
    "AsyncOnlineSession",
    "AsyncTokenProvider",
    "AuthFacade",
    "BadRequestError",
    "BearerAuth",
    "EncryptionService",
    "Environment",
    "ForbiddenError",
    "FormCode",
    "GoneError",
    "InvalidNipError",
    "InvoiceHandle",
    "InvoiceRejectedError",
    "KsefApiError",
    "KsefClient",
    "KsefError",
    "KsefTimeoutError",
    "KsefTransportError",
    "NipContextMissingError",
    "NotFoundError",
    "OnlineSession",
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
