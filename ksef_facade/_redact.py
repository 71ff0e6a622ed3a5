"""Keeps pre-signed URLs out of the log records httpx writes.

httpx logs every request at INFO on the ``httpx`` logger with its full URL. A batch
part goes to a pre-signed URL that carries the key to write there (sesja-wsadowa.md,
section 5), so a filter on that logger rewrites each URL argument: the query string
and fragment go, and a URL outside the API keeps only its scheme and host. A filter
is not a handler: the library still configures no output.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import SplitResult, urlsplit

import httpx

from ksef_facade.rate_limits import api_path

__all__ = ["PRESIGNED", "HttpxUrlFilter", "install_httpx_url_filter"]

PRESIGNED = "<pre-signed URL>"

_lock = threading.Lock()


def _origin(parts: SplitResult) -> str:
    """Return ``scheme://host[:port]``, without any user name or password."""
    origin = f"{parts.scheme}://{parts.hostname or ''}"
    return origin if parts.port is None else f"{origin}:{parts.port}"


class HttpxUrlFilter(logging.Filter):
    """Rewrites URL arguments of log records: no query, no path outside the API."""

    def __init__(self) -> None:
        super().__init__()
        # Origin and base path of every API a client was built for; replaced whole,
        # so records are filtered without taking the lock.
        self._apis: frozenset[tuple[str, str]] = frozenset()

    def add_api(self, api_base_url: str) -> None:
        """Keep the path of URLs under ``api_base_url`` (still without a query)."""
        parts = urlsplit(api_base_url)
        with _lock:
            self._apis = self._apis | {(_origin(parts), parts.path)}

    def redact(self, url: str) -> str:
        """Return ``url`` without query and fragment, and its path only in the API."""
        try:
            parts = urlsplit(url)
            origin = _origin(parts)
        except ValueError:
            return PRESIGNED

        in_api = any(
            origin == api_origin and api_path(parts.path, base) is not None
            for api_origin, base in self._apis
        )
        return origin + parts.path if in_api else f"{origin}/{PRESIGNED}"

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's URL arguments; never drop the record."""
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, httpx.URL) for a in args):
            record.args = tuple(
                self.redact(str(a)) if isinstance(a, httpx.URL) else a for a in args
            )
        return True


_FILTER = HttpxUrlFilter()


def install_httpx_url_filter(api_base_url: str) -> HttpxUrlFilter:
    """Attach the URL filter to the ``httpx`` logger once; register an API's URL."""
    _FILTER.add_api(api_base_url)

    logger = logging.getLogger("httpx")
    with _lock:
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    return _FILTER
