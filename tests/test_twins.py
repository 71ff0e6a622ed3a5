"""Every Async class in ksef_facade._async has a sync twin with the same methods."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

import ksef_facade._async
import ksef_facade._sync


def _load_unasync() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "scripts" / "unasync.py"
    spec = importlib.util.spec_from_file_location("unasync_for_twins", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


UNASYNC = _load_unasync()


def _modules(package: ModuleType) -> dict[str, ModuleType]:
    names = [info.name for info in pkgutil.iter_modules(package.__path__)]
    return {
        name: importlib.import_module(f"{package.__name__}.{name}") for name in names
    }


def _own_classes(module: ModuleType) -> dict[str, type]:
    return {
        name: value
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and value.__module__ == module.__name__
        and not name.startswith("_")
    }


def _public_methods(cls: type) -> set[str]:
    """Public callables that a ksef_facade class in the MRO defines."""
    own = [c for c in cls.__mro__ if c.__module__.startswith("ksef_facade.")]
    return {
        name
        for c in own
        for name, value in vars(c).items()
        if not name.startswith("_") and callable(getattr(cls, name, None))
    }


def _sync_name(name: str) -> str:
    """The name unasync gives a method (async_auth_flow becomes sync_auth_flow)."""
    return str(UNASYNC.rewrite(name))


def _pairs() -> list[tuple[str, type, type | None]]:
    sync_modules = _modules(ksef_facade._sync)
    pairs: list[tuple[str, type, type | None]] = []
    for module_name, module in sorted(_modules(ksef_facade._async).items()):
        sync_module = sync_modules.get(module_name)
        for name, cls in sorted(_own_classes(module).items()):
            twin_name = name.removeprefix("Async")
            twin = getattr(sync_module, twin_name, None) if sync_module else None
            pairs.append((f"{module_name}.{name}", cls, twin))
    return pairs


PAIRS = _pairs()


def test_async_package_has_modules() -> None:
    """The discovery sees the sync package mirror every async module."""
    async_names = set(_modules(ksef_facade._async))
    sync_names = set(_modules(ksef_facade._sync))

    assert async_names == sync_names


@pytest.mark.parametrize(
    ("label", "async_cls", "sync_cls"), PAIRS, ids=[p[0] for p in PAIRS]
)
def test_twin_exists(label: str, async_cls: type, sync_cls: type | None) -> None:
    """Each class in _async has a same-named (minus Async) class in _sync."""
    assert sync_cls is not None, f"{label} has no sync twin"


@pytest.mark.parametrize(
    ("label", "async_cls", "sync_cls"), PAIRS, ids=[p[0] for p in PAIRS]
)
def test_twin_public_methods_match(
    label: str, async_cls: type, sync_cls: type | None
) -> None:
    """An async class and its sync twin expose the same public methods."""
    assert sync_cls is not None
    expected = {_sync_name(name) for name in _public_methods(async_cls)}
    assert _public_methods(sync_cls) == expected


@pytest.mark.parametrize(
    ("label", "async_cls", "sync_cls"), PAIRS, ids=[p[0] for p in PAIRS]
)
def test_twin_coroutines_become_plain_methods(
    label: str, async_cls: type, sync_cls: type | None
) -> None:
    """Methods that are coroutines in the async class are plain in the sync twin."""
    assert sync_cls is not None
    for name in _public_methods(async_cls):
        sync_method = getattr(sync_cls, _sync_name(name))
        assert not inspect.iscoroutinefunction(sync_method), f"{label}.{name}"
        assert not inspect.isasyncgenfunction(sync_method), f"{label}.{name}"


@pytest.mark.parametrize(
    ("label", "async_cls", "sync_cls"), PAIRS, ids=[p[0] for p in PAIRS]
)
def test_twin_parameters_match(
    label: str, async_cls: type, sync_cls: type | None
) -> None:
    """Each twin method takes the same parameters (names and kinds)."""
    assert sync_cls is not None
    for name in _public_methods(async_cls) | {"__init__"}:
        async_params = inspect.signature(getattr(async_cls, name)).parameters
        sync_params = inspect.signature(getattr(sync_cls, _sync_name(name))).parameters
        assert [(p.name, p.kind) for p in async_params.values()] == [
            (p.name, p.kind) for p in sync_params.values()
        ], f"{label}.{name}"


@pytest.mark.parametrize(
    ("module_name", "name"),
    [("auth", "AccessToken"), ("auth", "AuthOperation"), ("api", "Download")],
)
def test_data_classes_are_shared_by_both_flavours(module_name: str, name: str) -> None:
    """A plain data class is one class, so isinstance holds across flavours."""
    async_module = importlib.import_module(f"ksef_facade._async.{module_name}")
    sync_module = importlib.import_module(f"ksef_facade._sync.{module_name}")

    assert getattr(async_module, name) is getattr(sync_module, name)
