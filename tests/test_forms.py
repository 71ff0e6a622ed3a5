"""Form codes match the OpenOnlineSessionRequest.formCode table of the spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ksef_facade.forms import FormCode, check_batch_form_code


def _spec_form_codes(
    spec_path: Path, request: str = "OpenOnlineSessionRequest"
) -> set[tuple[str, str, str]]:
    """Read (systemCode, schemaVersion, value) rows from a request's table."""
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    schema = spec["components"]["schemas"][request]
    table = schema["properties"]["formCode"]["description"]
    rows = set()
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("["):
            system_code = cells[0][1 : cells[0].index("]")]
            rows.add((system_code, cells[1], cells[2]))
    return rows


def test_form_codes_are_the_specs(pinned_spec_path: Path) -> None:
    """Every form code the spec lists is offered, with the same three values."""
    assert {form.value for form in FormCode} == _spec_form_codes(pinned_spec_path)


def test_batch_form_codes_are_the_specs(pinned_spec_path: Path) -> None:
    """Batch sessions take exactly the form codes of OpenBatchSessionRequest."""
    batch = _spec_form_codes(pinned_spec_path, "OpenBatchSessionRequest")

    assert {form.value for form in FormCode if form.in_batch} == batch


def test_batch_refuses_online_only_form_code() -> None:
    """PEF (3) in a batch session raises ValueError saying to go online."""
    with pytest.raises(ValueError, match="online sessions only"):
        check_batch_form_code(FormCode.PEF3)


def test_batch_form_code_must_be_a_form_code() -> None:
    """A string where a FormCode belongs raises TypeError."""
    with pytest.raises(TypeError, match="FormCode"):
        check_batch_form_code("FA (3)")  # type: ignore[arg-type]


def test_fa3_fields() -> None:
    """FA (3) is system code 'FA (3)', schema 1-0E, value FA."""
    form = FormCode.FA3
    assert (form.system_code, form.schema_version, form.form_value) == (
        "FA (3)",
        "1-0E",
        "FA",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FA (3)", FormCode.FA3),
        ("fa2", FormCode.FA2),
        ("PEF_KOR (3)", FormCode.PEF_KOR3),
    ],
)
def test_parse(text: str, expected: FormCode) -> None:
    """Form codes parse from their system code or member name."""
    assert FormCode.parse(text) is expected


def test_parse_unknown_names_known_codes() -> None:
    """An unknown form code is a ValueError listing the known ones."""
    with pytest.raises(ValueError, match=r"FA \(3\)"):
        FormCode.parse("FA (9)")


def test_to_model_carries_the_three_fields() -> None:
    """The generated formCode object gets system code, schema version and value."""
    model = FormCode.FA3.to_model()

    assert model.to_dict() == {
        "systemCode": "FA (3)",
        "schemaVersion": "1-0E",
        "value": "FA",
    }
