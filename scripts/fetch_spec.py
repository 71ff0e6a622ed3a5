"""Obtain the upstream KSeF spec and check it against the pin in openapi/pin.json.

Usage:
  python scripts/fetch_spec.py            # take the pinned spec into openapi/.cache/
  python scripts/fetch_spec.py --update   # accept a new upstream, rewrite the pin

The spec comes from the file named by KSEF_SPEC_FILE when set, otherwise from the
official URL recorded in the pin (KSEF_SPEC_URL overrides it, e.g. for the demo or
production hosts, which serve theirs at the same path). The spec is never committed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from spec_diff import api_version

ROOT = Path(__file__).resolve().parent.parent
PIN_FILE = ROOT / "openapi" / "pin.json"
CACHE = ROOT / "openapi" / ".cache"
CACHED_SPEC = CACHE / "upstream.json"
PREVIOUS_SPEC = CACHE / "previous.json"


def read_upstream(pin: dict[str, str]) -> bytes:
    """Read the upstream spec from KSEF_SPEC_FILE or download it."""
    configured = os.environ.get("KSEF_SPEC_FILE")
    if configured:
        return Path(configured).read_bytes()

    url = os.environ.get("KSEF_SPEC_URL", pin["source"])
    if not url.startswith("https://"):
        raise ValueError(f"refusing to download the spec over a non-HTTPS URL: {url}")
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data: bytes = response.read()
    except OSError as error:
        raise SpecUnavailable(
            f"could not download the spec from {url} ({error}); set KSEF_SPEC_FILE "
            "to a local copy of it"
        ) from error
    return data


class SpecUnavailable(Exception):
    """The upstream spec could not be read."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="accept a new upstream")
    args = parser.parse_args(argv)

    pin = json.loads(PIN_FILE.read_text("utf-8"))
    try:
        data = read_upstream(pin)
    except SpecUnavailable as error:
        print(f"spec: {error}", file=sys.stderr)
        return 1
    digest = hashlib.sha256(data).hexdigest()
    version = api_version(json.loads(data))
    CACHE.mkdir(parents=True, exist_ok=True)

    if args.update:
        if CACHED_SPEC.is_file():
            CACHED_SPEC.replace(PREVIOUS_SPEC)
        pin.update(api_version=version, sha256=digest)
        PIN_FILE.write_text(json.dumps(pin, indent=2) + "\n", "utf-8")
        print(f"spec: pin updated to API {version} (sha256 {digest})")
    elif digest != pin["sha256"]:
        print(
            f"spec: the upstream spec (API {version}, sha256 {digest}) is not the "
            f"pinned one (API {pin['api_version']}, sha256 {pin['sha256']}). Point "
            "KSEF_SPEC_FILE at the pinned file, or run 'make spec-update' to accept "
            "the new upstream, then 'make generate' and review the diff.",
            file=sys.stderr,
        )
        return 1

    CACHED_SPEC.write_bytes(data)
    print(f"spec: API {version} -> {CACHED_SPEC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
