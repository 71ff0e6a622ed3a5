"""Form codes: which invoice schema an online or batch session accepts.

The values are the table of ``OpenOnlineSessionRequest.formCode`` in the pinned spec
(2.9.0): system code, schema version and value, e.g. ``FA (3)``, ``1-0E``, ``FA``.
The table of ``OpenBatchSessionRequest.formCode`` is shorter: PEF (3) and
PEF_KOR (3) are sent in online sessions only.
"""

from __future__ import annotations

import enum

from ksef_api.models import FormCode as FormCodeModel

__all__ = ["FormCode", "check_batch_form_code"]


class FormCode(enum.Enum):
    """A KSeF invoice schema as ``(system code, schema version, value)``."""

    FA3 = ("FA (3)", "1-0E", "FA")
    FA2 = ("FA (2)", "1-0E", "FA")
    FA_RR1 = ("FA_RR (1)", "1-1E", "FA_RR")
    PEF3 = ("PEF (3)", "2-1", "PEF")
    PEF_KOR3 = ("PEF_KOR (3)", "2-1", "PEF")

    @property
    def system_code(self) -> str:
        """The ``systemCode``, such as ``FA (3)``."""
        return self.value[0]

    @property
    def schema_version(self) -> str:
        """The ``schemaVersion``, such as ``1-0E``."""
        return self.value[1]

    @property
    def form_value(self) -> str:
        """The ``value`` field, such as ``FA``."""
        return self.value[2]

    @property
    def in_batch(self) -> bool:
        """True when batch sessions accept this schema (OpenBatchSessionRequest)."""
        return self not in (FormCode.PEF3, FormCode.PEF_KOR3)

    def to_model(self) -> FormCodeModel:
        """Return the ``formCode`` object of a session-opening request."""
        return FormCodeModel(
            system_code=self.system_code,
            schema_version=self.schema_version,
            value=self.form_value,
        )

    @classmethod
    def parse(cls, text: str) -> FormCode:
        """Return the form code named like ``FA (3)``, ``FA3`` or ``fa3``."""
        wanted = text.strip().upper()
        for form in cls:
            if wanted in (form.name, form.system_code.upper()):
                return form
        known = ", ".join(form.system_code for form in cls)
        raise ValueError(f"Unknown form code {text!r}; expected one of {known}.")


def check_batch_form_code(form_code: FormCode) -> None:
    """Refuse what is not a form code, or one that batch sessions do not accept."""
    if not isinstance(form_code, FormCode):
        raise TypeError("form_code must be a FormCode, such as FormCode.FA3.")
    if not form_code.in_batch:
        raise ValueError(
            f"KSeF accepts {form_code.system_code} in online sessions only; "
            "send these invoices with an online session."
        )
