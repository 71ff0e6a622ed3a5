"""KSeF's technical warnings, sent in the ``X-System-Warning`` response header."""

from __future__ import annotations

import re

import attrs

__all__ = ["SystemWarning", "parse_system_warnings"]

# Spec, schema SystemWarning: "[code]: message | [code]: message".
_WARNING = re.compile(r"\[(?P<code>[^\]]+)\]: (?P<message>[^|]+)")


@attrs.frozen
class SystemWarning:
    """One technical warning KSeF sent in an `X-System-Warning` header."""

    code: str
    message: str
    method: str = ""
    target: str = ""


def parse_system_warnings(value: str) -> list[SystemWarning]:
    """Split an `X-System-Warning` value into warnings (unparsable: one, no code)."""
    found = [
        SystemWarning(match["code"].strip(), match["message"].strip())
        for match in _WARNING.finditer(value)
    ]
    if found or not value.strip():
        return found
    return [SystemWarning("", value.strip())]
