"""Tests for scripts/fetch_spec.py: the pin guards which upstream spec is used."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "scripts", copy / "scripts")
    shutil.copytree(
        ROOT / "openapi", copy / "openapi", ignore=shutil.ignore_patterns(".cache")
    )
    return copy


def _fetch(repo: Path, spec: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KSEF_SPEC_FILE": str(spec)}
    return subprocess.run(
        [sys.executable, str(repo / "scripts" / "fetch_spec.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_pinned_spec_is_taken_into_the_cache(
    repo: Path, pinned_spec_path: Path
) -> None:
    """The pinned file passes the check and lands in openapi/.cache."""
    result = _fetch(repo, pinned_spec_path)

    assert result.returncode == 0, result.stderr
    assert "API 2.9.0" in result.stdout
    cached = repo / "openapi" / ".cache" / "upstream.json"
    assert cached.read_bytes() == pinned_spec_path.read_bytes()


def test_other_spec_is_refused_with_advice(repo: Path, older_spec_path: Path) -> None:
    """A file that is not the pinned one is refused, saying what to do."""
    result = _fetch(repo, older_spec_path)

    assert result.returncode == 1
    assert "not the pinned one" in result.stderr
    assert "make spec-update" in result.stderr
    assert not (repo / "openapi" / ".cache" / "upstream.json").exists()


def test_update_rewrites_the_pin(
    repo: Path, pinned_spec_path: Path, older_spec_path: Path
) -> None:
    """spec-update accepts a new upstream and records its version and hash."""
    assert _fetch(repo, pinned_spec_path).returncode == 0

    result = _fetch(repo, older_spec_path, "--update")

    assert result.returncode == 0, result.stderr
    pin = json.loads((repo / "openapi" / "pin.json").read_text("utf-8"))
    assert pin["api_version"] == "2.6.0"
    assert (repo / "openapi" / ".cache" / "previous.json").read_bytes() == (
        pinned_spec_path.read_bytes()
    )
    assert _fetch(repo, older_spec_path).returncode == 0
