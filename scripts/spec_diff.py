"""Summarise what changed between two upstream KSeF OpenAPI specs.

Usage: ``python scripts/spec_diff.py OLD.json NEW.json``

The comparison is structural and one level deep: operations (parameters, request
body, responses, ``x-rate-limits``) and component schemas (properties, their
types, required-ness, enum values). Descriptions and examples are ignored, since
they change with every upstream build and say nothing about the wire format.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

Spec = Mapping[str, Any]

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# The spec carries its release only in prose: "**Wersja API:** 2.9.0 (build ...)".
_VERSION_PATTERN = re.compile(r"\*\*Wersja API:\*\*\s*([0-9][0-9A-Za-z.+-]*)")

UNKNOWN_VERSION = "unknown"


@dataclass(frozen=True, order=True)
class Operation:
    """One operation of a spec: path, HTTP method (upper case) and summary."""

    path: str
    method: str
    summary: str = ""


@dataclass(frozen=True, order=True)
class Field:
    """A parameter or property that appeared or disappeared, with its type."""

    name: str
    shape: str
    required: bool = False


@dataclass(frozen=True, order=True)
class Retype:
    """Something named `name` whose value went from `old` to `new`."""

    name: str
    old: str
    new: str


def _records_changes(change: Any, identity: str) -> bool:
    """True when any dataclass field other than `identity` is non-empty."""
    return any(getattr(change, f.name) for f in fields(change) if f.name != identity)


@dataclass(frozen=True)
class OperationChange:
    """How one operation present in both specs changed."""

    operation: Operation
    parameters_added: tuple[Field, ...] = ()
    parameters_removed: tuple[Field, ...] = ()
    parameters_changed: tuple[Retype, ...] = ()
    # Named by media type; a blank name is the body's own required-ness.
    request_body_changed: tuple[Retype, ...] = ()
    request_body_now_requires: tuple[str, ...] = ()
    request_body_no_longer_requires: tuple[str, ...] = ()
    responses_added: tuple[str, ...] = ()
    responses_removed: tuple[str, ...] = ()
    responses_changed: tuple[Retype, ...] = ()
    rate_limits_changed: tuple[Retype, ...] = ()

    @property
    def has_changes(self) -> bool:
        """True when anything besides the operation's identity is recorded."""
        return _records_changes(self, identity="operation")


@dataclass(frozen=True)
class SchemaChange:
    """How one component schema present in both specs changed."""

    name: str
    type_changed: Retype | None = None
    properties_added: tuple[Field, ...] = ()
    properties_removed: tuple[Field, ...] = ()
    properties_retyped: tuple[Retype, ...] = ()
    now_required: tuple[str, ...] = ()
    no_longer_required: tuple[str, ...] = ()
    enum_added: tuple[str, ...] = ()
    enum_removed: tuple[str, ...] = ()

    @property
    def has_changes(self) -> bool:
        """True when anything besides the schema's name is recorded."""
        return _records_changes(self, identity="name")


@dataclass(frozen=True)
class SpecDiff:
    """Everything that changed between an old and a new spec, sorted."""

    old_version: str
    new_version: str
    operations_added: tuple[Operation, ...] = ()
    operations_removed: tuple[Operation, ...] = ()
    operations_changed: tuple[OperationChange, ...] = ()
    schemas_added: tuple[str, ...] = ()
    schemas_removed: tuple[str, ...] = ()
    schemas_changed: tuple[SchemaChange, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when the two specs do not differ in anything compared."""
        return not (
            self.operations_added
            or self.operations_removed
            or self.operations_changed
            or self.schemas_added
            or self.schemas_removed
            or self.schemas_changed
        )


# --- versions ---------------------------------------------------------------


def api_version(spec: Spec) -> str:
    """Return the API release named in ``info.description`` (e.g. "2.9.0")."""
    description = spec.get("info", {}).get("description") or ""
    match = _VERSION_PATTERN.search(description)
    if match is None:
        raise ValueError(
            "spec info.description has no '**Wersja API:** X.Y.Z' line; "
            "is this a KSeF 2.0 OpenAPI document?"
        )
    return match.group(1)


def _version_or_unknown(spec: Spec) -> str:
    try:
        return api_version(spec)
    except ValueError:
        return UNKNOWN_VERSION


# --- shapes -----------------------------------------------------------------


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def shape(node: Any) -> str:
    """Render a schema's type as short text: `Ref`, `array<T>`, `string(date)`."""
    if not isinstance(node, Mapping):
        return "any"

    text = _bare_shape(node)

    if node.get("nullable"):
        text += " | null"
    return text


def _bare_shape(node: Mapping[str, Any]) -> str:
    if "$ref" in node:
        return _ref_name(node["$ref"])

    for combinator in ("allOf", "oneOf", "anyOf"):
        parts = node.get(combinator)
        if parts:
            # A lone allOf wrapper is how the KSeF spec attaches a description
            # to a $ref; it means the referenced type itself.
            if combinator == "allOf" and len(parts) == 1:
                return shape(parts[0])
            return f"{combinator}[{', '.join(shape(part) for part in parts)}]"

    kind = node.get("type", "object" if "properties" in node else "any")
    if kind == "array":
        return f"array<{shape(node.get('items'))}>"
    if kind == "object" and isinstance(node.get("additionalProperties"), Mapping):
        return f"map<{shape(node['additionalProperties'])}>"
    if "format" in node:
        return f"{kind}({node['format']})"
    return str(kind)


def _resolve(spec: Spec, node: Any) -> Any:
    """Follow a local `$ref` (e.g. to components/parameters) once."""
    if not isinstance(node, Mapping) or "$ref" not in node:
        return node
    target: Any = spec
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target.get(part, {}) if isinstance(target, Mapping) else {}
    return target


# --- small set helpers ------------------------------------------------------


def _added(old: Iterable[str], new: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(new) - set(old)))


def _common(old: Iterable[str], new: Iterable[str]) -> list[str]:
    return sorted(set(old) & set(new))


def _values(values: Iterable[Any]) -> list[str]:
    return [json.dumps(value, ensure_ascii=False) for value in values]


def _required_word(required: bool) -> str:
    return "required" if required else "optional"


# --- operations -------------------------------------------------------------

OperationKey = tuple[str, str]


def _operations(spec: Spec) -> dict[OperationKey, Mapping[str, Any]]:
    """Map (path, METHOD) to each operation, path-level parameters merged in."""
    found: dict[OperationKey, Mapping[str, Any]] = {}
    for path, item in (spec.get("paths") or {}).items():
        for method in HTTP_METHODS:
            if method in item:
                found[(path, method.upper())] = _with_path_parameters(item, method)
    return found


def _with_path_parameters(item: Mapping[str, Any], method: str) -> Mapping[str, Any]:
    operation: Mapping[str, Any] = item[method]
    shared = item.get("parameters")
    if not shared:
        return operation
    return {**operation, "parameters": [*shared, *operation.get("parameters", [])]}


def _operation(key: OperationKey, operation: Mapping[str, Any]) -> Operation:
    return Operation(key[0], key[1], str(operation.get("summary") or ""))


def _parameters(spec: Spec, operation: Mapping[str, Any]) -> dict[str, Field]:
    """Map "in name" (e.g. "query pageSize") to the parameter as a Field."""
    found = {}
    for raw in operation.get("parameters", []):
        param = _resolve(spec, raw)
        name = f"{param.get('in')} {param.get('name')}"
        # A later entry wins: operation parameters override path-level ones.
        found[name] = Field(
            name, shape(param.get("schema")), bool(param.get("required"))
        )
    return found


def _required_changes(
    before: Mapping[str, Field], after: Mapping[str, Field]
) -> list[Retype]:
    """Fields present on both sides whose required-ness flipped."""
    return [
        Retype(
            name,
            _required_word(before[name].required),
            _required_word(after[name].required),
        )
        for name in _common(before, after)
        if before[name].required != after[name].required
    ]


def _shape_changes(
    before: Mapping[str, Field], after: Mapping[str, Field]
) -> list[Retype]:
    """Fields present on both sides whose type changed."""
    return [
        Retype(name, before[name].shape, after[name].shape)
        for name in _common(before, after)
        if before[name].shape != after[name].shape
    ]


def _appeared(
    before: Mapping[str, Field], after: Mapping[str, Field]
) -> tuple[Field, ...]:
    return tuple(after[name] for name in _added(before, after))


def _content_schemas(spec: Spec, holder: Any) -> dict[str, Mapping[str, Any]]:
    """Map each media type of a request body or response to its schema."""
    holder = _resolve(spec, holder)
    if not isinstance(holder, Mapping):
        return {}
    content = holder.get("content") or {}
    return {media: entry.get("schema") or {} for media, entry in content.items()}


def _diff_content_shapes(
    before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]]
) -> list[Retype]:
    """Media types whose schema type changed, appeared or disappeared."""
    absent = "(none)"
    old = {media: shape(schema) for media, schema in before.items()}
    new = {media: shape(schema) for media, schema in after.items()}
    return [
        Retype(media, old.get(media, absent), new.get(media, absent))
        for media in sorted(old.keys() | new.keys())
        if old.get(media) != new.get(media)
    ]


def _wrapper_required(schemas: Mapping[str, Mapping[str, Any]]) -> set[str]:
    # KSeF bodies list required fields on the allOf wrapper around the $ref,
    # so the referenced schema's own `required` does not show them.
    return {name for schema in schemas.values() for name in schema.get("required", ())}


def _diff_request_body(
    old_spec: Spec, new_spec: Spec, old: Mapping[str, Any], new: Mapping[str, Any]
) -> tuple[tuple[Retype, ...], tuple[str, ...], tuple[str, ...]]:
    """Body changes: per media type and presence, fields newly (not) required."""
    old_body = _resolve(old_spec, old.get("requestBody")) or {}
    new_body = _resolve(new_spec, new.get("requestBody")) or {}
    before = _content_schemas(old_spec, old_body)
    after = _content_schemas(new_spec, new_body)

    changed = _diff_content_shapes(before, after)
    old_required, new_required = (
        bool(old_body.get("required")),
        bool(new_body.get("required")),
    )
    if old_body and new_body and old_required != new_required:
        changed.append(
            Retype("", _required_word(old_required), _required_word(new_required))
        )

    old_fields, new_fields = _wrapper_required(before), _wrapper_required(after)
    return (
        tuple(changed),
        _added(old_fields, new_fields),
        _added(new_fields, old_fields),
    )


def _diff_responses(
    old_spec: Spec, new_spec: Spec, old: Mapping[str, Any], new: Mapping[str, Any]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Retype, ...]]:
    """Status codes added and removed, and response bodies whose type changed."""
    before, after = old.get("responses") or {}, new.get("responses") or {}

    changed: list[Retype] = []
    for status in _common(before, after):
        shapes = _diff_content_shapes(
            _content_schemas(old_spec, before[status]),
            _content_schemas(new_spec, after[status]),
        )
        changed += [Retype(f"{status} {s.name}", s.old, s.new) for s in shapes]

    return _added(before, after), _added(after, before), tuple(changed)


def _diff_rate_limits(
    old: Mapping[str, Any], new: Mapping[str, Any]
) -> tuple[Retype, ...]:
    """Windows of the `x-rate-limits` extension whose limit changed."""
    absent = "(none)"
    before = old.get("x-rate-limits") or {}
    after = new.get("x-rate-limits") or {}
    return tuple(
        Retype(window, str(before.get(window, absent)), str(after.get(window, absent)))
        for window in sorted(before.keys() | after.keys())
        if before.get(window) != after.get(window)
    )


def _diff_operation(
    old_spec: Spec,
    new_spec: Spec,
    operation: Operation,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
) -> OperationChange:
    """Compare one operation present in both specs."""
    before, after = _parameters(old_spec, old), _parameters(new_spec, new)
    body = _diff_request_body(old_spec, new_spec, old, new)
    responses = _diff_responses(old_spec, new_spec, old, new)

    return OperationChange(
        operation,
        parameters_added=_appeared(before, after),
        parameters_removed=_appeared(after, before),
        parameters_changed=tuple(
            sorted(_required_changes(before, after) + _shape_changes(before, after))
        ),
        request_body_changed=body[0],
        request_body_now_requires=body[1],
        request_body_no_longer_requires=body[2],
        responses_added=responses[0],
        responses_removed=responses[1],
        responses_changed=responses[2],
        rate_limits_changed=_diff_rate_limits(old, new),
    )


def diff_operations(
    old_spec: Spec, new_spec: Spec
) -> tuple[tuple[Operation, ...], tuple[Operation, ...], tuple[OperationChange, ...]]:
    """Return the operations added, removed and changed between two specs."""
    before, after = _operations(old_spec), _operations(new_spec)

    added = sorted(_operation(key, after[key]) for key in after.keys() - before.keys())
    removed = sorted(
        _operation(key, before[key]) for key in before.keys() - after.keys()
    )

    changed = []
    for key in sorted(before.keys() & after.keys()):
        operation = _operation(key, after[key])
        change = _diff_operation(old_spec, new_spec, operation, before[key], after[key])
        if change.has_changes:
            changed.append(change)

    return tuple(added), tuple(removed), tuple(changed)


# --- schemas ----------------------------------------------------------------


def _schemas(spec: Spec) -> Mapping[str, Mapping[str, Any]]:
    components: Mapping[str, Any] = spec.get("components") or {}
    schemas: Mapping[str, Mapping[str, Any]] = components.get("schemas") or {}
    return schemas


def _properties(schema: Mapping[str, Any]) -> dict[str, Field]:
    """Map each property name to a Field; required-ness from the schema's list."""
    required = set(schema.get("required") or ())
    return {
        name: Field(name, shape(node), name in required)
        for name, node in (schema.get("properties") or {}).items()
    }


def _diff_schema(
    name: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> SchemaChange:
    """Compare one schema present in both specs."""
    old_shape, new_shape = shape(old), shape(new)
    type_changed = (
        Retype(name, old_shape, new_shape) if old_shape != new_shape else None
    )

    before, after = _properties(old), _properties(new)
    required = _required_changes(before, after)

    old_enum, new_enum = _values(old.get("enum") or ()), _values(new.get("enum") or ())

    return SchemaChange(
        name,
        type_changed=type_changed,
        properties_added=_appeared(before, after),
        properties_removed=_appeared(after, before),
        properties_retyped=tuple(_shape_changes(before, after)),
        now_required=tuple(c.name for c in required if c.new == "required"),
        no_longer_required=tuple(c.name for c in required if c.old == "required"),
        enum_added=_added(old_enum, new_enum),
        enum_removed=_added(new_enum, old_enum),
    )


def diff_schemas(
    old_spec: Spec, new_spec: Spec
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[SchemaChange, ...]]:
    """Return the component schemas added, removed and changed."""
    before, after = _schemas(old_spec), _schemas(new_spec)

    changed = []
    for name in _common(before, after):
        change = _diff_schema(name, before[name], after[name])
        if change.has_changes:
            changed.append(change)

    return _added(before, after), _added(after, before), tuple(changed)


def diff_specs(old: Spec, new: Spec) -> SpecDiff:
    """Compare two OpenAPI documents (already parsed from JSON)."""
    operations_added, operations_removed, operations_changed = diff_operations(old, new)
    schemas_added, schemas_removed, schemas_changed = diff_schemas(old, new)

    return SpecDiff(
        old_version=_version_or_unknown(old),
        new_version=_version_or_unknown(new),
        operations_added=operations_added,
        operations_removed=operations_removed,
        operations_changed=operations_changed,
        schemas_added=schemas_added,
        schemas_removed=schemas_removed,
        schemas_changed=schemas_changed,
    )


# --- rendering --------------------------------------------------------------


def _operation_line(operation: Operation) -> str:
    line = f"{operation.method:<7}{operation.path}"
    return f"{line}  ({operation.summary})" if operation.summary else line


def _field_text(field: Field) -> str:
    return f"{field.name} ({_required_word(field.required)}, {field.shape})"


def _arrow(change: Retype) -> str:
    """Render "name: old -> new"; a blank name leaves only the values."""
    name = f" {change.name}" if change.name else ""
    return f"{name}: {change.old} -> {change.new}"


def _operation_change_lines(change: OperationChange) -> list[str]:
    return [
        _operation_line(change.operation),
        *(f"  + parameter {_field_text(f)}" for f in change.parameters_added),
        *(f"  - parameter {_field_text(f)}" for f in change.parameters_removed),
        *(f"  ~ parameter{_arrow(c)}" for c in change.parameters_changed),
        *(f"  ~ request body{_arrow(c)}" for c in change.request_body_changed),
        *(
            f"  ~ request body now requires {n}"
            for n in change.request_body_now_requires
        ),
        *(
            f"  ~ request body no longer requires {n}"
            for n in change.request_body_no_longer_requires
        ),
        *(f"  + response {status}" for status in change.responses_added),
        *(f"  - response {status}" for status in change.responses_removed),
        *(f"  ~ response{_arrow(c)}" for c in change.responses_changed),
        *(f"  ~ rate limit{_arrow(c)}" for c in change.rate_limits_changed),
    ]


def _schema_change_lines(change: SchemaChange) -> list[str]:
    retype = change.type_changed
    return [
        change.name,
        *([f"  ~ type: {retype.old} -> {retype.new}"] if retype else []),
        *(f"  + property {_field_text(f)}" for f in change.properties_added),
        *(f"  - property {_field_text(f)}" for f in change.properties_removed),
        *(f"  ~ property{_arrow(c)}" for c in change.properties_retyped),
        *(f"  ~ now required: {name}" for name in change.now_required),
        *(f"  ~ no longer required: {name}" for name in change.no_longer_required),
        *(f"  + enum value {value}" for value in change.enum_added),
        *(f"  - enum value {value}" for value in change.enum_removed),
    ]


def _sections(diff: SpecDiff) -> list[tuple[str, int, list[str]]]:
    """Each section as (title, number of entries, lines)."""
    return [
        (
            "Operations added",
            len(diff.operations_added),
            [_operation_line(op) for op in diff.operations_added],
        ),
        (
            "Operations removed",
            len(diff.operations_removed),
            [_operation_line(op) for op in diff.operations_removed],
        ),
        (
            "Operations changed",
            len(diff.operations_changed),
            [
                line
                for c in diff.operations_changed
                for line in _operation_change_lines(c)
            ],
        ),
        ("Schemas added", len(diff.schemas_added), list(diff.schemas_added)),
        ("Schemas removed", len(diff.schemas_removed), list(diff.schemas_removed)),
        (
            "Schemas changed",
            len(diff.schemas_changed),
            [line for c in diff.schemas_changed for line in _schema_change_lines(c)],
        ),
    ]


def render(diff: SpecDiff) -> str:
    """Render a diff as plain text: a version line, then one section per kind."""
    out = [f"KSeF OpenAPI spec diff: {diff.old_version} -> {diff.new_version}"]
    if diff.is_empty:
        return "\n".join([*out, "", "No changes."]) + "\n"

    for title, count, lines in _sections(diff):
        if count:
            out += ["", f"{title} ({count}):", *(f"  {line}" for line in lines)]

    return "\n".join(out) + "\n"


# --- command line -----------------------------------------------------------


def load_spec(path: Path) -> dict[str, Any]:
    """Read one spec file, raising ValueError naming the file when it is unusable."""
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read spec {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"spec {path} is not valid JSON: {exc.msg}") from exc

    if not isinstance(loaded, dict) or "paths" not in loaded:
        raise ValueError(f"spec {path} is not an OpenAPI document (no 'paths')")
    return loaded


def main(argv: list[str] | None = None) -> int:
    """Print the diff between the two spec files named on the command line."""
    parser = argparse.ArgumentParser(
        description="Summarise what changed between two KSeF OpenAPI specs."
    )
    parser.add_argument("old", type=Path, help="older upstream spec (JSON)")
    parser.add_argument("new", type=Path, help="newer upstream spec (JSON)")
    args = parser.parse_args(argv)

    try:
        old, new = load_spec(args.old), load_spec(args.new)
    except ValueError as exc:
        parser.error(str(exc))

    sys.stdout.write(render(diff_specs(old, new)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
