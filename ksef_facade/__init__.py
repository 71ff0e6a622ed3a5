"""KSeF 2.0 client: a facade over the generated API client."""

from ksef_facade._async.api import AsyncKsefApi
from ksef_facade._async.auth import AsyncAuthFacade
from ksef_facade._async.batch import AsyncBatchSession
from ksef_facade._async.client import AsyncKsefClient
from ksef_facade._async.encryption import AsyncEncryptionService
from ksef_facade._async.online import AsyncInvoiceHandle, AsyncOnlineSession
from ksef_facade._sync.api import KsefApi
from ksef_facade._sync.auth import AuthFacade
from ksef_facade._sync.batch import BatchSession
from ksef_facade._sync.client import KsefClient
from ksef_facade._sync.encryption import EncryptionService
from ksef_facade._sync.online import InvoiceHandle, OnlineSession
from ksef_facade.attempts import RetryStats
from ksef_facade.auth_types import AccessToken, AuthOperation
from ksef_facade.batch_package import (
    BatchLimits,
    BatchPackage,
    BatchPackageError,
    CompressionType,
    build_batch_package,
)
from ksef_facade.batch_state import (
    BatchProgress,
    BatchResult,
    BatchUploadExpiredError,
    BatchUploadState,
    InvoiceOutcome,
    OutcomeKind,
)
from ksef_facade.context import current_nip, nip_context, validate_nip
from ksef_facade.crypto import PublicKeyInfo, load_certificate, load_public_key
from ksef_facade.environments import DEMO, PROD, TEST, Environment
from ksef_facade.errors import (
    AuthenticationFailedError,
    BadRequestError,
    ForbiddenError,
    GoneError,
    HashMismatchError,
    InvalidNipError,
    InvoiceHashMismatchError,
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
from ksef_facade.identifiers import is_valid_ksef_number, validate_ksef_number
from ksef_facade.keys import EncryptedData, KeyUsage
from ksef_facade.reconcile import ReconcilePolicy
from ksef_facade.retry import RetryPolicy, no_waits
from ksef_facade.secrets import Secret, SecretBytes
from ksef_facade.statuses import InvoiceStatus, Outcome, SessionStatus, Status
from ksef_facade.system_warnings import SystemWarning
from ksef_facade.throttle import Throttle
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
    "AccessToken",
    "AsyncAuthFacade",
    "AsyncBatchSession",
    "AsyncBearerAuth",
    "AsyncEncryptionService",
    "AsyncInvoiceHandle",
    "AsyncKsefApi",
    "AsyncKsefClient",
    "AsyncOnlineSession",
    "AsyncTokenProvider",
    "AuthFacade",
    "AuthOperation",
    "AuthenticationFailedError",
    "BadRequestError",
    "BatchLimits",
    "BatchPackage",
    "BatchPackageError",
    "BatchProgress",
    "BatchResult",
    "BatchSession",
    "BatchUploadExpiredError",
    "BatchUploadState",
    "BearerAuth",
    "CompressionType",
    "EncryptedData",
    "EncryptionService",
    "Environment",
    "ForbiddenError",
    "FormCode",
    "GoneError",
    "HashMismatchError",
    "InvalidNipError",
    "InvoiceHandle",
    "InvoiceHashMismatchError",
    "InvoiceOutcome",
    "InvoiceRejectedError",
    "InvoiceStatus",
    "KeyUsage",
    "KsefApi",
    "KsefApiError",
    "KsefClient",
    "KsefError",
    "KsefTimeoutError",
    "KsefTransportError",
    "NipContextMissingError",
    "NotFoundError",
    "OnlineSession",
    "Outcome",
    "OutcomeKind",
    "PublicKeyInfo",
    "RateLimitError",
    "ReconcilePolicy",
    "RetryPolicy",
    "RetryStats",
    "Secret",
    "SecretBytes",
    "ServerError",
    "SessionStatus",
    "Status",
    "SystemWarning",
    "Throttle",
    "TokenProvider",
    "TokenSet",
    "UnauthorizedError",
    "UpoHashMismatchError",
    "build_batch_package",
    "current_nip",
    "is_valid_ksef_number",
    "load_certificate",
    "load_public_key",
    "nip_context",
    "no_waits",
    "validate_ksef_number",
    "validate_nip",
]
