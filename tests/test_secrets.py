"""Tests for ksef_facade.secrets."""

from __future__ import annotations

import copy
import pickle

import pytest

from ksef_facade.secrets import Secret, SecretBytes

CANARY = "canary-7f3a9c-do-not-leak"


@pytest.mark.parametrize("render", [repr, str, "{}".format, "{!r}".format])
def test_secret_renders_masked(render: object) -> None:
    """repr, str and formatting show Secret('***') and never the value."""
    text = render(Secret(CANARY))  # type: ignore[operator]

    assert text == "Secret('***')"


@pytest.mark.parametrize("render", [repr, str])
def test_secret_bytes_renders_masked(render: object) -> None:
    """SecretBytes renders as SecretBytes('***')."""
    assert render(SecretBytes(CANARY.encode())) == "SecretBytes('***')"  # type: ignore[operator]


def test_reveal_returns_value() -> None:
    """reveal() is the one way to get the value back."""
    assert Secret(CANARY).reveal() == CANARY
    assert SecretBytes(b"\x00key").reveal() == b"\x00key"


def test_secret_in_container_repr_is_masked() -> None:
    """A secret inside a list or dict stays masked in the container's repr."""
    assert CANARY not in repr({"token": [Secret(CANARY)]})


def test_equality_is_by_value() -> None:
    """Two secrets with the same value are equal; different values are not."""
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert SecretBytes(b"a") == SecretBytes(b"a")
    assert SecretBytes(b"a") != SecretBytes(b"b")


def test_secret_never_equals_plain_value() -> None:
    """A Secret does not compare equal to the bare str or to SecretBytes."""
    assert Secret("a") != "a"
    assert Secret("a") != SecretBytes(b"a")


def test_secrets_are_unhashable() -> None:
    """Secrets have no hash, so none derived from the value can be logged."""
    with pytest.raises(TypeError):
        hash(Secret("a"))
    with pytest.raises(TypeError):
        hash(SecretBytes(b"a"))


def test_secret_is_immutable() -> None:
    """Assigning to a secret's attribute fails."""
    with pytest.raises(AttributeError):
        Secret("a")._value = "b"  # type: ignore[misc]


def test_secret_cannot_be_pickled() -> None:
    """Pickling would write the value out, so it is refused."""
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Secret(CANARY))
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(SecretBytes(b"k"))


def test_copies_are_the_same_immutable_object() -> None:
    """copy and deepcopy work (e.g. on a containing object) and return the secret."""
    secret, key = Secret(CANARY), SecretBytes(b"k")

    assert copy.copy(secret) is secret
    assert copy.deepcopy({"k": key})["k"] is key


def test_wrong_value_types_raise_type_error() -> None:
    """Secret takes str and SecretBytes takes bytes; the message hides the value."""
    with pytest.raises(TypeError, match="not bytes") as info:
        Secret(CANARY.encode())  # type: ignore[arg-type]
    assert CANARY not in str(info.value)

    with pytest.raises(TypeError, match="not str"):
        SecretBytes(CANARY)  # type: ignore[arg-type]


def test_secret_bytes_length() -> None:
    """len() of SecretBytes is the key length, which is not secret."""
    assert len(SecretBytes(bytes(32))) == 32
