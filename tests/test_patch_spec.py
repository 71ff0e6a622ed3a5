"""Tests for scripts/patch_spec.py: each patch fixes what it claims, and only that."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_schema_validator import OAS30Validator, oas30_strict_format_checker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import patch_spec

REAL_HASH = base64.b64encode(hashlib.sha256(b"<Faktura/>").digest()).decode()


@pytest.fixture(scope="module")
def upstream(pinned_spec_path: Path) -> dict[str, Any]:
    return json.loads(pinned_spec_path.read_text("utf-8"))


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return patch_spec.load_config()


@pytest.fixture(scope="module")
def patched(upstream: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    return patch_spec.patch_spec(upstream, config)[0]


def _decoded_length_validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    """A strict validator that, like ogen, measures format: byte lengths in bytes."""

    def byte_length(check: str):  # type: ignore[no-untyped-def]
        def validate(validator, limit, instance, schema):  # type: ignore[no-untyped-def]
            if not isinstance(instance, str):
                return
            size = len(instance)
            if schema.get("format") == "byte":
                size = len(base64.b64decode(instance))
            too_short = check == "min" and size < limit
            if too_short or (check == "max" and size > limit):
                yield jsonschema.ValidationError(
                    f"length {size} violates {check} {limit}"
                )

        return validate

    strict = jsonschema.validators.extend(
        OAS30Validator,
        {"minLength": byte_length("min"), "maxLength": byte_length("max")},
    )
    return strict(schema, format_checker=oas30_strict_format_checker)


def _sha256_schema(spec: dict[str, Any]) -> dict[str, Any]:
    return spec["components"]["schemas"]["Sha256HashBase64"]


WRONG_HASHES = [
    REAL_HASH[:-2] + "=",  # 43 characters
    REAL_HASH[:-1] + "A",  # no padding
    "!" * 43 + "=",  # not Base64
    base64.b64encode(b"x" * 33).decode(),  # 44 characters, 33 bytes
    REAL_HASH[:-2] + "B=",  # non-zero trailing bits: not canonical Base64
]


def test_upstream_hash_schema_rejects_a_real_hash_under_decoded_lengths(
    upstream: dict[str, Any],
) -> None:
    """The unpatched schema fails a real SHA-256 under byte-length semantics."""
    validator = _decoded_length_validator(_sha256_schema(upstream))

    assert not validator.is_valid(REAL_HASH)


def test_patched_hash_schema_accepts_a_real_hash(patched: dict[str, Any]) -> None:
    """The patched schema accepts a real 44-character Base64 SHA-256."""
    schema = _sha256_schema(patched)

    _decoded_length_validator(schema).validate(REAL_HASH)
    OAS30Validator(schema, format_checker=oas30_strict_format_checker).validate(
        REAL_HASH
    )


@pytest.mark.parametrize("wrong", WRONG_HASHES)
def test_patched_hash_schema_rejects_wrong_values(
    patched: dict[str, Any], wrong: str
) -> None:
    """The patched schema still rejects values that are not a Base64 SHA-256."""
    schema = _sha256_schema(patched)

    assert not _decoded_length_validator(schema).is_valid(wrong)
    assert not OAS30Validator(
        schema, format_checker=oas30_strict_format_checker
    ).is_valid(wrong)


def test_public_key_id_fields_are_patched_too(patched: dict[str, Any]) -> None:
    """Every publicKeyId property validates a real key id."""
    schemas = patched["components"]["schemas"]
    for owner in (
        "EncryptionInfo",
        "InitTokenAuthenticationRequest",
        "PublicKeyCertificate",
    ):
        schema = schemas[owner]["properties"]["publicKeyId"]
        _decoded_length_validator(schema).validate(REAL_HASH)


def _without_429(spec: dict[str, Any]) -> dict[str, Any]:
    stripped = copy.deepcopy(spec)
    for _, _, operation in patch_spec.operations(stripped):
        operation["responses"].pop("429", None)
    return stripped


def test_operations_without_429_get_one_with_retry_after(
    upstream: dict[str, Any], config: dict[str, Any]
) -> None:
    """A spec lacking 429 responses gets one with an integer Retry-After everywhere."""
    spec = _without_429(upstream)

    changes = patch_spec.patch_too_many_requests(spec, config["too_many_requests"])

    assert len(changes) == len(patch_spec.operations(spec)) == 83
    for method, path, operation in patch_spec.operations(spec):
        header = operation["responses"]["429"]["headers"]["Retry-After"]
        assert header["schema"]["type"] == "integer", f"{method} {path}"


def test_spec_with_429_everywhere_is_left_untouched(
    upstream: dict[str, Any], config: dict[str, Any]
) -> None:
    """2.9.0 already declares 429 with Retry-After, so the patch changes nothing."""
    spec = copy.deepcopy(upstream)

    changes = patch_spec.patch_too_many_requests(spec, config["too_many_requests"])

    assert changes == []
    assert spec == upstream


def test_every_operation_gets_an_english_module_and_name(
    patched: dict[str, Any],
) -> None:
    """Modules and function names are unique ASCII snake_case identifiers."""
    seen = set()
    for method, path, operation in patch_spec.operations(patched):
        (module,) = operation["tags"]
        name = operation["operationId"]
        assert module.isascii(), f"{method} {path}"
        assert module.isidentifier(), f"{method} {path}"
        assert name.isascii(), f"{method} {path}"
        assert name.isidentifier(), f"{method} {path}"
        assert name.islower(), f"{method} {path}"
        seen.add(name)
    assert len(seen) == 83


def test_unnamed_upstream_operation_fails_naming_it(
    upstream: dict[str, Any], config: dict[str, Any]
) -> None:
    """An operation missing from operations.toml stops the patch and is named."""
    spec = copy.deepcopy(upstream)
    spec["paths"]["/invoices/new-thing"] = {
        "get": {
            "tags": ["Pobieranie faktur"],
            "responses": {"200": {"description": "OK"}},
        }
    }

    with pytest.raises(patch_spec.PatchError, match="GET /invoices/new-thing"):
        patch_spec.patch_english_names(spec, config["english_names"])


def test_single_allof_bodies_become_required_refs(patched: dict[str, Any]) -> None:
    """Request bodies are required and no longer wrapped in a single allOf."""
    operation = patched["paths"]["/sessions/online"]["post"]
    body = operation["requestBody"]

    assert body["required"] is True
    schema = body["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/OpenOnlineSessionRequest"}


def test_xml_bodies_are_binary(patched: dict[str, Any]) -> None:
    """XML request and response bodies are typed as binary strings."""
    xades = patched["paths"]["/auth/xades-signature"]["post"]["requestBody"]
    upo = patched["paths"]["/sessions/{referenceNumber}/upo/{upoReferenceNumber}"][
        "get"
    ]

    assert xades["content"]["application/xml"]["schema"]["format"] == "binary"
    assert upo["responses"]["200"]["content"]["application/xml"]["schema"] == {
        "type": "string",
        "format": "binary",
    }


def test_patching_is_idempotent(
    patched: dict[str, Any], config: dict[str, Any]
) -> None:
    """Patching a patched spec changes nothing more."""
    again, changes = patch_spec.patch_spec(patched, config)

    assert changes == []
    assert again == patched


def test_patch_does_not_modify_its_input(
    upstream: dict[str, Any], pinned_spec_path: Path, config: dict[str, Any]
) -> None:
    """The upstream document handed in is left as it was."""
    patch_spec.patch_spec(upstream, config)

    assert upstream == json.loads(pinned_spec_path.read_text("utf-8"))
