"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_SPECS = REPO_ROOT.parent / "shared" / "ksef-openapi"


def _pinned_spec() -> Path:
    configured = os.environ.get("KSEF_SPEC_FILE")
    return Path(configured) if configured else SHARED_SPECS / "ksef-openapi-2.9.0.json"


@pytest.fixture(scope="session")
def pinned_spec_path() -> Path:
    """Path of the pinned upstream spec (KSEF_SPEC_FILE or the shared copy)."""
    path = _pinned_spec()
    if not path.is_file():
        pytest.fail(f"pinned KSeF spec not found at {path}; set KSEF_SPEC_FILE")
    return path


@pytest.fixture(scope="session")
def older_spec_path() -> Path:
    """Path of the older upstream spec (2.6.0) used by spec-diff tests."""
    path = SHARED_SPECS / "ksef-openapi-2.6.0.json"
    if not path.is_file():
        pytest.fail(f"older KSeF spec not found at {path}")
    return path
