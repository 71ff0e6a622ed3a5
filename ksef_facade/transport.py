"""The retrying httpx transports, blocking and asyncio, and what they report.

See ``ksef_facade._async.transport`` for the shells (the blocking one is
generated) and :mod:`ksef_facade.attempts` for the decisions they carry out.
"""

from ksef_facade._async.transport import AsyncRetryTransport
from ksef_facade._sync.transport import RetryTransport
from ksef_facade.attempts import THROTTLED, RetryStats
from ksef_facade.system_warnings import SystemWarning, parse_system_warnings

__all__ = [
    "THROTTLED",
    "AsyncRetryTransport",
    "RetryStats",
    "RetryTransport",
    "SystemWarning",
    "parse_system_warnings",
]
