"""The page sizes KSeF accepts for the listings the facade follows.

Each bound is the ``pageSize`` range of the operation in the pinned spec (2.9.0);
KSeF answers a size outside it with HTTP 400, so it is refused here before sending.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "AUTH_SESSIONS_PAGE",
    "SESSION_INVOICES_PAGE",
    "PageBounds",
    "check_page_size",
]


class PageBounds(NamedTuple):
    """The smallest and largest ``pageSize`` one listing accepts."""

    minimum: int
    maximum: int


# Spec, GET /auth/sessions: pageSize from 10 to 100.
AUTH_SESSIONS_PAGE = PageBounds(10, 100)

# Spec, GET /sessions/{referenceNumber}/invoices[/failed]: pageSize from 10 to 1000.
SESSION_INVOICES_PAGE = PageBounds(10, 1000)


def check_page_size(page_size: int | None, bounds: PageBounds) -> None:
    """Refuse a ``page_size`` outside ``bounds``; None leaves KSeF's default."""
    if page_size is None:
        return
    if (
        not isinstance(page_size, int)
        or isinstance(page_size, bool)
        or not bounds.minimum <= page_size <= bounds.maximum
    ):
        raise ValueError(
            f"page_size must be an int from {bounds.minimum} to {bounds.maximum}, "
            f"got {page_size!r}."
        )
