"""Apply the patches declared in openapi/patches.toml to an upstream KSeF spec.

Usage: python scripts/patch_spec.py UPSTREAM.json PATCHED.json

Every patch is a pure function of the spec and its settings, idempotent, and
returns a list of what it changed so that the script can report it.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

OPENAPI_DIR = Path(__file__).resolve().parent.parent / "openapi"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

Spec = dict[str, Any]


class PatchError(Exception):
    """The upstream spec does not fit a patch; the message says what to change."""


def load_config(openapi_dir: Path = OPENAPI_DIR) -> dict[str, Any]:
    """Read patches.toml and the names table it points at."""
    config = tomllib.loads((openapi_dir / "patches.toml").read_text("utf-8"))
    table_file = openapi_dir / config["english_names"]["table"]
    config["english_names"]["names"] = tomllib.loads(table_file.read_text("utf-8"))
    return config


def operations(spec: Spec) -> list[tuple[str, str, dict[str, Any]]]:
    """List (METHOD, path, operation) for every operation of the spec."""
    found = []
    for path, item in spec.get("paths", {}).items():
        for method in HTTP_METHODS:
            if method in item:
                found.append((method.upper(), path, item[method]))
    return found


def patch_base64_sha256(spec: Spec, settings: dict[str, Any]) -> list[str]:
    """Replace byte-length limits of Base64 SHA-256 fields with a pattern."""
    schemas = spec["components"]["schemas"]
    targets = [(name, schemas.get(name)) for name in settings["schemas"]]
    for dotted in settings["properties"]:
        owner, prop = dotted.split(".")
        properties = schemas.get(owner, {}).get("properties", {})
        targets.append((dotted, properties.get(prop)))

    changes = []
    for name, schema in targets:
        if schema is None:
            raise PatchError(
                f"base64_sha256: {name} is not in the spec; update patches.toml"
            )
        if _pin_base64(schema, settings["pattern"]):
            changes.append(f"base64_sha256: {name}")
    return changes


def _pin_base64(schema: dict[str, Any], pattern: str) -> bool:
    before = dict(schema)
    if schema.get("format") == "byte":
        del schema["format"]
    schema.pop("minLength", None)
    schema.pop("maxLength", None)
    schema["pattern"] = pattern
    return schema != before


def patch_too_many_requests(spec: Spec, settings: dict[str, Any]) -> list[str]:
    """Give every operation a 429 response with an integer Retry-After header."""
    status = settings["status"]
    changes = []
    for method, path, operation in operations(spec):
        responses = operation.setdefault("responses", {})
        response = responses.get(status)
        if response is None:
            responses[status] = {
                "description": settings["description"],
                "headers": {"Retry-After": _retry_after_header(settings)},
            }
            changes.append(f"too_many_requests: {method} {path} gets {status}")
        elif "Retry-After" not in response.get("headers", {}):
            response.setdefault("headers", {})["Retry-After"] = _retry_after_header(
                settings
            )
            changes.append(f"too_many_requests: {method} {path} gets Retry-After")
    return changes


def _retry_after_header(settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": settings["retry_after_description"],
        "schema": {"type": "integer", "format": "int32"},
    }


def patch_english_names(spec: Spec, settings: dict[str, Any]) -> list[str]:
    """Set English tags (modules) and operationIds (functions) from the table."""
    tags = settings["names"]["tags"]
    names = settings["names"]["operations"]
    missing = [
        f"{method} {path}"
        for method, path, _ in operations(spec)
        if f"{method} {path}" not in names
    ]
    if missing:
        listed = ", ".join(missing)
        raise PatchError(
            f"english_names: no English name for {listed}; "
            "add it to openapi/operations.toml"
        )

    changes = []
    for method, path, operation in operations(spec):
        module = _english_tag(operation, tags, f"{method} {path}")
        wanted = {"tags": [module], "operationId": names[f"{method} {path}"]}
        if any(operation.get(key) != value for key, value in wanted.items()):
            operation.update(wanted)
            changes.append(
                f"english_names: {method} {path} -> {module}.{wanted['operationId']}"
            )

    english = sorted(set(tags.values()))
    if [tag.get("name") for tag in spec.get("tags", [])] != english:
        spec["tags"] = [{"name": name} for name in english]
        changes.append("english_names: tag list")
    return changes


def _english_tag(operation: dict[str, Any], tags: dict[str, str], label: str) -> str:
    current = operation.get("tags") or []
    if len(current) != 1:
        raise PatchError(f"english_names: {label} has tags {current}, expected one")
    tag = current[0]
    if tag in tags.values():
        return tag
    if tag not in tags:
        raise PatchError(
            f"english_names: tag {tag!r} of {label} is not in operations.toml"
        )
    return tags[tag]


def patch_required_bodies(spec: Spec, settings: dict[str, Any]) -> list[str]:
    """Unwrap single-allOf request bodies and mark the bodies required."""
    changes = []
    for method, path, operation in operations(spec):
        body = operation.get("requestBody")
        if body is None:
            continue
        for media in body.get("content", {}).values():
            schema = media.get("schema", {})
            all_of = schema.get("allOf")
            if isinstance(all_of, list) and len(all_of) == 1 and "$ref" in all_of[0]:
                media["schema"] = {"$ref": all_of[0]["$ref"]}
                changes.append(f"required_bodies: {method} {path} unwrapped")
        if body.get("required") is not True:
            body["required"] = True
            changes.append(f"required_bodies: {method} {path} required")
    return changes


def patch_xml_as_binary(spec: Spec, settings: dict[str, Any]) -> list[str]:
    """Type XML request and response bodies as binary so they travel as bytes."""
    changes = []
    for method, path, operation in operations(spec):
        bodies = [("request", operation.get("requestBody", {}))]
        bodies += [(status, r) for status, r in operation.get("responses", {}).items()]
        for where, body in bodies:
            for media_type in settings["media_types"]:
                schema = body.get("content", {}).get(media_type, {}).get("schema")
                if schema == {"type": "string"}:
                    schema["format"] = "binary"
                    changes.append(f"xml_as_binary: {method} {path} {where}")
    return changes


PATCHES = (
    ("base64_sha256", patch_base64_sha256),
    ("too_many_requests", patch_too_many_requests),
    ("english_names", patch_english_names),
    ("required_bodies", patch_required_bodies),
    ("xml_as_binary", patch_xml_as_binary),
)


def patch_spec(spec: Spec, config: dict[str, Any]) -> tuple[Spec, list[str]]:
    """Return a patched copy of ``spec`` and the list of changes made."""
    patched = copy.deepcopy(spec)
    changes: list[str] = []
    for name, patch in PATCHES:
        changes.extend(patch(patched, config[name]))
    return patched, changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("upstream", type=Path)
    parser.add_argument("patched", type=Path)
    parser.add_argument("--quiet", action="store_true", help="do not list changes")
    args = parser.parse_args(argv)

    spec = json.loads(args.upstream.read_text("utf-8"))
    try:
        patched, changes = patch_spec(spec, load_config())
    except PatchError as error:
        print(f"patch_spec: {error}", file=sys.stderr)
        return 1

    args.patched.write_text(
        json.dumps(patched, indent=2, ensure_ascii=False) + "\n", "utf-8"
    )
    if not args.quiet:
        for change in changes:
            print(change)
    print(f"patch_spec: {len(changes)} changes -> {args.patched}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
