"""Tests for scripts/spec_diff.py (`make spec-diff`)."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "spec_diff.py"


def _load_script() -> ModuleType:
    """Import scripts/spec_diff.py by path (scripts/ is not a package)."""
    if "spec_diff" in sys.modules:
        return sys.modules["spec_diff"]

    spec = importlib.util.spec_from_file_location("spec_diff", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is built.
    sys.modules["spec_diff"] = module
    spec.loader.exec_module(module)
    return module


spec_diff = _load_script()

COLLECTIVE_AND_TESTDATA_OPERATIONS = {
    ("POST", "/collective-identifiers"),
    ("POST", "/collective-identifiers/query"),
    ("POST", "/collective-identifiers/invoices"),
    ("GET", "/collective-identifiers/ksef/{ksefNumber}"),
    ("PUT", "/testdata/certificates/{serialNumber}"),
}


# --- synthetic specs ----------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _base_spec() -> dict[str, Any]:
    """A tiny KSeF-shaped spec: two operations, three schemas."""
    return {
        "openapi": "3.0.4",
        "info": {
            "title": "KSeF",
            "version": "v2",
            "description": "**Wersja API:** 1.0.0 (build 1.0.0-te)<br>\nOpis",
        },
        "paths": {
            "/sessions/online": {
                "post": {
                    "summary": "Otwarcie sesji",
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "required": ["formCode"],
                                    "allOf": [_ref("OpenSession")],
                                }
                            }
                        }
                    },
                    "responses": {
                        "201": {
                            "description": "Created",
                            "content": {
                                "application/json": {"schema": _ref("Session")}
                            },
                        },
                        "429": {"description": "Too Many Requests"},
                    },
                    "x-rate-limits": {"perSecond": 10, "perMinute": 30},
                }
            },
            "/sessions": {
                "get": {
                    "summary": "Lista sesji",
                    "parameters": [
                        {
                            "name": "pageSize",
                            "in": "query",
                            "schema": {"type": "integer", "format": "int32"},
                        }
                    ],
                    "responses": {"200": {"description": "OK"}},
                }
            },
        },
        "components": {
            "schemas": {
                "OpenSession": {
                    "type": "object",
                    "required": ["formCode"],
                    "properties": {
                        "formCode": {"type": "string"},
                        "note": {"type": "string", "nullable": True},
                    },
                },
                "Session": {
                    "type": "object",
                    "required": ["referenceNumber"],
                    "properties": {
                        "referenceNumber": {"type": "string"},
                        "validUntil": {"type": "string", "format": "date-time"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "status": {"allOf": [_ref("Status")]},
                    },
                },
                "Status": {"type": "string", "enum": ["Open", "Closed"]},
            }
        },
    }


def _diff(old: dict[str, Any], new: dict[str, Any]) -> Any:
    return spec_diff.diff_specs(old, new)


def _only_schema_change(old: dict[str, Any], new: dict[str, Any]) -> Any:
    diff = _diff(old, new)
    assert len(diff.schemas_changed) == 1
    return diff.schemas_changed[0]


def _only_operation_change(old: dict[str, Any], new: dict[str, Any]) -> Any:
    diff = _diff(old, new)
    assert len(diff.operations_changed) == 1
    return diff.operations_changed[0]


@pytest.fixture
def old() -> dict[str, Any]:
    """The synthetic base spec."""
    return _base_spec()


@pytest.fixture
def new(old: dict[str, Any]) -> dict[str, Any]:
    """An independent copy of the base spec, for a test to modify."""
    return copy.deepcopy(old)


def _session_properties(spec: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = spec["components"]["schemas"]["Session"]["properties"]
    return properties


def _open_session(spec: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = spec["paths"]["/sessions/online"]["post"]
    return operation


# --- versions -----------------------------------------------------------------


def test_api_version_reads_the_release_from_the_description(
    old: dict[str, Any],
) -> None:
    """api_version takes the number after '**Wersja API:**', without the build."""
    assert spec_diff.api_version(old) == "1.0.0"


def test_api_version_rejects_a_description_without_it(old: dict[str, Any]) -> None:
    """A spec whose description carries no version raises a ValueError saying so."""
    old["info"]["description"] = "Opis bez wersji"

    with pytest.raises(ValueError, match="Wersja API"):
        spec_diff.api_version(old)


def test_api_version_of_the_real_specs(
    pinned_spec_path: Path, older_spec_path: Path
) -> None:
    """The shared specs are releases 2.6.0 and 2.9.0."""
    older = json.loads(older_spec_path.read_text(encoding="utf-8"))
    pinned = json.loads(pinned_spec_path.read_text(encoding="utf-8"))

    assert spec_diff.api_version(older) == "2.6.0"
    assert spec_diff.api_version(pinned) == "2.9.0"


# --- synthetic changes ------------------------------------------------------------


def test_identical_specs_have_no_changes(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """Comparing a spec with a copy of itself reports nothing."""
    diff = _diff(old, new)

    assert diff.is_empty
    assert spec_diff.render(diff) == (
        "KSeF OpenAPI spec diff: 1.0.0 -> 1.0.0\n\nNo changes.\n"
    )


def test_descriptions_and_examples_are_not_changes(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """Prose edits alone leave the diff empty."""
    _open_session(new)["description"] = "Nowy opis"
    _session_properties(new)["referenceNumber"]["example"] = "20250625-SO-X"

    assert _diff(old, new).is_empty


def test_property_type_change_is_a_retype(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """A property going from string to int64 is listed with both types."""
    _session_properties(new)["referenceNumber"] = {"type": "integer", "format": "int64"}

    change = _only_schema_change(old, new)

    assert change.name == "Session"
    assert change.properties_retyped == (
        spec_diff.Retype("referenceNumber", "string", "integer(int64)"),
    )


def test_property_ref_change_is_a_retype(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """Pointing a property's allOf at another schema counts as a retype."""
    _session_properties(new)["status"] = {"allOf": [_ref("OpenSession")]}

    change = _only_schema_change(old, new)

    assert change.properties_retyped == (
        spec_diff.Retype("status", "Status", "OpenSession"),
    )


def test_array_items_change_is_a_retype(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """Changing an array's item type is shown as array<old> -> array<new>."""
    _session_properties(new)["tags"]["items"] = _ref("Status")

    change = _only_schema_change(old, new)

    assert change.properties_retyped == (
        spec_diff.Retype("tags", "array<string>", "array<Status>"),
    )


def test_format_and_nullable_changes_are_retypes(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """A new format and a property becoming nullable both count as retypes."""
    _session_properties(new)["validUntil"]["format"] = "date"
    new["components"]["schemas"]["OpenSession"]["properties"]["note"]["nullable"] = (
        False
    )

    diff = _diff(old, new)

    retyped = {c.name: c.properties_retyped for c in diff.schemas_changed}
    assert retyped == {
        "OpenSession": (spec_diff.Retype("note", "string | null", "string"),),
        "Session": (
            spec_diff.Retype("validUntil", "string(date-time)", "string(date)"),
        ),
    }


def test_property_becoming_required_is_reported(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """Adding an existing property to `required` lists it as now required."""
    new["components"]["schemas"]["Session"]["required"].append("validUntil")

    change = _only_schema_change(old, new)

    assert change.now_required == ("validUntil",)
    assert change.no_longer_required == ()


def test_property_no_longer_required_is_reported(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """Dropping a property from `required` lists it as no longer required."""
    new["components"]["schemas"]["Session"]["required"] = []

    change = _only_schema_change(old, new)

    assert change.no_longer_required == ("referenceNumber",)
    assert change.now_required == ()


def test_properties_added_and_removed_carry_type_and_required(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """New and dropped properties are listed with their type and required-ness."""
    del _session_properties(new)["tags"]
    _session_properties(new)["upo"] = {"type": "string", "format": "uri"}
    new["components"]["schemas"]["Session"]["required"].append("upo")

    change = _only_schema_change(old, new)

    assert change.properties_added == (spec_diff.Field("upo", "string(uri)", True),)
    assert change.properties_removed == (
        spec_diff.Field("tags", "array<string>", False),
    )
    assert change.now_required == ()


def test_enum_values_added_and_removed(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """Enum values that appear or disappear are each listed."""
    new["components"]["schemas"]["Status"]["enum"] = ["Open", "Cancelled", "Expired"]

    change = _only_schema_change(old, new)

    assert change.name == "Status"
    assert change.enum_added == ('"Cancelled"', '"Expired"')
    assert change.enum_removed == ('"Closed"',)


def test_schema_removed_and_added(old: dict[str, Any], new: dict[str, Any]) -> None:
    """Schemas present on one side only are listed by name, sorted."""
    schemas = new["components"]["schemas"]
    del schemas["Status"]
    schemas["Zeta"] = {"type": "string"}
    schemas["Alpha"] = {"type": "string"}

    diff = _diff(old, new)

    assert diff.schemas_removed == ("Status",)
    assert diff.schemas_added == ("Alpha", "Zeta")


def test_schema_type_change_is_reported(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """A schema turning from a string enum into an integer is a type change."""
    new["components"]["schemas"]["Status"] = {
        "type": "integer",
        "enum": ["Open", "Closed"],
    }

    change = _only_schema_change(old, new)

    assert change.type_changed == spec_diff.Retype("Status", "string", "integer")


def test_rate_limit_change_is_reported(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """Changed, added and dropped x-rate-limits windows are listed per operation."""
    _open_session(new)["x-rate-limits"] = {"perSecond": 20, "perHour": 120}

    change = _only_operation_change(old, new)

    assert (change.operation.method, change.operation.path) == (
        "POST",
        "/sessions/online",
    )
    assert change.rate_limits_changed == (
        spec_diff.Retype("perHour", "(none)", "120"),
        spec_diff.Retype("perMinute", "30", "(none)"),
        spec_diff.Retype("perSecond", "10", "20"),
    )


def test_parameter_added(old: dict[str, Any], new: dict[str, Any]) -> None:
    """A new query parameter is listed with its location, type and required-ness."""
    new["paths"]["/sessions"]["get"]["parameters"].append(
        {"name": "status", "in": "query", "required": True, "schema": _ref("Status")}
    )

    change = _only_operation_change(old, new)

    assert change.parameters_added == (spec_diff.Field("query status", "Status", True),)
    assert change.parameters_removed == ()


def test_parameter_removed(old: dict[str, Any], new: dict[str, Any]) -> None:
    """A dropped parameter is listed as removed."""
    new["paths"]["/sessions"]["get"]["parameters"] = []

    change = _only_operation_change(old, new)

    assert change.parameters_removed == (
        spec_diff.Field("query pageSize", "integer(int32)", False),
    )


def test_parameter_required_change(old: dict[str, Any], new: dict[str, Any]) -> None:
    """A parameter turning required is listed as optional -> required."""
    new["paths"]["/sessions"]["get"]["parameters"][0]["required"] = True

    change = _only_operation_change(old, new)

    assert change.parameters_changed == (
        spec_diff.Retype("query pageSize", "optional", "required"),
    )


def test_path_level_parameters_belong_to_each_operation(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """A parameter declared on the path item counts for the operation under it."""
    new["paths"]["/sessions"]["parameters"] = [
        {"name": "X-Trace", "in": "header", "schema": {"type": "string"}}
    ]

    change = _only_operation_change(old, new)

    assert change.parameters_added == (
        spec_diff.Field("header X-Trace", "string", False),
    )


def test_request_body_schema_change(old: dict[str, Any], new: dict[str, Any]) -> None:
    """A body pointing at another schema is listed per media type."""
    body = _open_session(new)["requestBody"]["content"]["application/json"]
    body["schema"]["allOf"] = [_ref("Session")]

    change = _only_operation_change(old, new)

    assert change.request_body_changed == (
        spec_diff.Retype("application/json", "OpenSession", "Session"),
    )


def test_request_body_required_fields_change(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """Fields added to the body wrapper's `required` list are reported."""
    body = _open_session(new)["requestBody"]["content"]["application/json"]
    body["schema"]["required"] = ["note"]

    change = _only_operation_change(old, new)

    assert change.request_body_now_requires == ("note",)
    assert change.request_body_no_longer_requires == ("formCode",)


def test_request_body_becoming_required(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """A body flagged required is shown as "request body: optional -> required"."""
    _open_session(new)["requestBody"]["required"] = True

    change = _only_operation_change(old, new)

    assert change.request_body_changed == (
        spec_diff.Retype("", "optional", "required"),
    )
    assert "    ~ request body: optional -> required\n" in spec_diff.render(
        _diff(old, new)
    )


def test_responses_added_and_removed(old: dict[str, Any], new: dict[str, Any]) -> None:
    """Status codes that appear or disappear are listed."""
    responses = _open_session(new)["responses"]
    del responses["429"]
    responses["400"] = {"description": "Bad Request"}

    change = _only_operation_change(old, new)

    assert change.responses_added == ("400",)
    assert change.responses_removed == ("429",)


def test_response_schema_change(old: dict[str, Any], new: dict[str, Any]) -> None:
    """A response body of another type is listed with status and media type."""
    content = _open_session(new)["responses"]["201"]["content"]
    content["application/json"]["schema"] = _ref("Status")

    change = _only_operation_change(old, new)

    assert change.responses_changed == (
        spec_diff.Retype("201 application/json", "Session", "Status"),
    )


def test_operations_added_and_removed_are_sorted(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """Operations on one side only are listed sorted by path, then method."""
    del new["paths"]["/sessions"]
    new["paths"]["/zeta"] = {"get": {"summary": "Z", "responses": {}}}
    new["paths"]["/alpha"] = {
        "put": {"summary": "A2", "responses": {}},
        "delete": {"summary": "A1", "responses": {}},
    }

    diff = _diff(old, new)

    assert diff.operations_added == (
        spec_diff.Operation("/alpha", "DELETE", "A1"),
        spec_diff.Operation("/alpha", "PUT", "A2"),
        spec_diff.Operation("/zeta", "GET", "Z"),
    )
    assert diff.operations_removed == (
        spec_diff.Operation("/sessions", "GET", "Lista sesji"),
    )


def test_render_groups_changes_by_section(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """The text names both versions and puts each change under its section."""
    new["info"]["description"] = "**Wersja API:** 1.1.0 (build x)"
    new["components"]["schemas"]["Status"]["enum"].append("Expired")
    _open_session(new)["x-rate-limits"]["perSecond"] = 5

    text = spec_diff.render(_diff(old, new))

    assert text == (
        "KSeF OpenAPI spec diff: 1.0.0 -> 1.1.0\n"
        "\n"
        "Operations changed (1):\n"
        "  POST   /sessions/online  (Otwarcie sesji)\n"
        "    ~ rate limit perSecond: 10 -> 5\n"
        "\n"
        "Schemas changed (1):\n"
        "  Status\n"
        '    + enum value "Expired"\n'
    )


def test_render_is_stable_under_key_order(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """Reversing the order of paths and schemas in the input changes no output."""
    new["paths"]["/b"] = {"get": {"responses": {}}}
    new["paths"]["/a"] = {"get": {"responses": {}}}
    new["components"]["schemas"]["B"] = {"type": "string"}
    new["components"]["schemas"]["A"] = {"type": "string"}
    reordered = copy.deepcopy(new)
    reordered["paths"] = dict(reversed(list(new["paths"].items())))
    reordered["components"]["schemas"] = dict(
        reversed(list(new["components"]["schemas"].items()))
    )

    assert spec_diff.render(_diff(old, new)) == spec_diff.render(_diff(old, reordered))


def test_unknown_version_is_rendered_as_unknown(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """A spec without a version line still diffs; its version shows as unknown."""
    del new["info"]

    diff = _diff(old, new)

    assert diff.new_version == "unknown"
    assert spec_diff.render(diff).startswith(
        "KSeF OpenAPI spec diff: 1.0.0 -> unknown\n"
    )


# --- the real specs: 2.6.0 -> 2.9.0 ------------------------------------------------


@pytest.fixture(scope="module")
def real_diff(pinned_spec_path: Path, older_spec_path: Path) -> Any:
    """The diff between the shared 2.6.0 and 2.9.0 specs."""
    older = json.loads(older_spec_path.read_text(encoding="utf-8"))
    pinned = json.loads(pinned_spec_path.read_text(encoding="utf-8"))
    return spec_diff.diff_specs(older, pinned)


def test_real_specs_add_exactly_the_five_operations(real_diff: Any) -> None:
    """2.6.0 -> 2.9.0 adds the collective-identifier operations and a test-data PUT."""
    added = {(op.method, op.path) for op in real_diff.operations_added}

    assert added == COLLECTIVE_AND_TESTDATA_OPERATIONS


def test_real_specs_remove_no_operation(real_diff: Any) -> None:
    """No operation of 2.6.0 is gone in 2.9.0."""
    assert real_diff.operations_removed == ()


def test_real_specs_raise_session_close_rate_limits(real_diff: Any) -> None:
    """2.9.0 doubles the rate limits of closing online and batch sessions."""
    limits = {
        c.operation.path: c.rate_limits_changed
        for c in real_diff.operations_changed
        if c.rate_limits_changed
    }

    assert limits == {
        "/sessions/batch/{referenceNumber}/close": (
            spec_diff.Retype("perHour", "60", "120"),
            spec_diff.Retype("perMinute", "20", "40"),
            spec_diff.Retype("perSecond", "10", "20"),
        ),
        "/sessions/online/{referenceNumber}/close": (
            spec_diff.Retype("perHour", "120", "240"),
            spec_diff.Retype("perMinute", "30", "60"),
            spec_diff.Retype("perSecond", "10", "20"),
        ),
    }


def test_real_specs_add_collective_identifier_schemas(real_diff: Any) -> None:
    """The request schemas of the new operations are new, and no schema is gone."""
    assert "GenerateCollectiveIdentifierRequest" in real_diff.schemas_added
    assert "TestDataUpdateCertificateRequest" in real_diff.schemas_added
    assert real_diff.schemas_removed == ()


def test_real_specs_add_a_permission_enum_value(real_diff: Any) -> None:
    """2.9.0 adds the CollectiveIdentifierManage permission type."""
    changes = {c.name: c for c in real_diff.schemas_changed}

    assert changes["PersonPermissionType"].enum_added == (
        '"CollectiveIdentifierManage"',
    )


# --- command line ----------------------------------------------------------------


def _run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
        timeout=60,
    )


def test_cli_prints_the_real_diff(
    pinned_spec_path: Path, older_spec_path: Path
) -> None:
    """The script exits 0 and prints versions and the five added operations."""
    result = _run_cli(older_spec_path, pinned_spec_path)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "KSeF OpenAPI spec diff: 2.6.0 -> 2.9.0"
    section = lines[lines.index("Operations added (5):") + 1 :][:5]
    assert {tuple(line.split()[:2]) for line in section} == (
        COLLECTIVE_AND_TESTDATA_OPERATIONS
    )
    assert "Operations removed" not in result.stdout


def test_cli_rejects_a_missing_file(tmp_path: Path, pinned_spec_path: Path) -> None:
    """A missing spec file gives exit status 2 and a message naming it."""
    missing = tmp_path / "absent.json"

    result = _run_cli(missing, pinned_spec_path)

    assert result.returncode == 2
    assert "absent.json" in result.stderr
    assert result.stdout == ""


def test_cli_rejects_a_non_openapi_file(tmp_path: Path, pinned_spec_path: Path) -> None:
    """A JSON file without `paths` is refused as not an OpenAPI document."""
    bogus = tmp_path / "bogus.json"
    bogus.write_text("[1, 2]", encoding="utf-8")

    result = _run_cli(pinned_spec_path, bogus)

    assert result.returncode == 2
    assert "not an OpenAPI document" in result.stderr
