"""Tests for scripts/unasync.py, the generator of ksef_facade/_sync."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def unasync() -> ModuleType:
    """The generator script, imported as a module."""
    path = REPO_ROOT / "scripts" / "unasync.py"
    spec = importlib.util.spec_from_file_location("unasync_script", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("async def f(): pass", "def f(): pass"),
        ("async with lock: pass", "with lock: pass"),
        ("async for x in xs: pass", "for x in xs: pass"),
        ("y = await f()", "y = f()"),
        ("def __aenter__(self): ...", "def __enter__(self): ..."),
        ("def __aexit__(self): ...", "def __exit__(self): ..."),
        ("def __aiter__(self): ...", "def __iter__(self): ..."),
        ("def __anext__(self): ...", "def __next__(self): ..."),
        ("raise StopAsyncIteration", "raise StopIteration"),
        ("x: AsyncIterator[int]", "x: Iterator[int]"),
        ("x: AsyncIterable[int]", "x: Iterable[int]"),
        ("x: AsyncGenerator[int, None]", "x: Generator[int, None]"),
        ("api.asyncio_detailed(client=c)", "api.sync_detailed(client=c)"),
        ("t.handle_async_request(r)", "t.handle_request(r)"),
        ("await r.aclose()", "r.close()"),
        ("await r.aread()", "r.read()"),
        ("async for b in r.aiter_bytes(): pass", "for b in r.iter_bytes(): pass"),
        (
            "from ksef_facade._async.tokens import X",
            "from ksef_facade._sync.tokens import X",
        ),
        ("p = AsyncTokenProvider()", "p = TokenProvider()"),
        ("c = httpx.AsyncClient()", "c = httpx.Client()"),
        ("t: httpx.AsyncBaseTransport", "t: httpx.BaseTransport"),
        ("lock = AsyncLock()", "lock = Lock()"),
        ("await async_sleep(1)", "sleep(1)"),
        ("async def async_auth_flow(self, r):", "def sync_auth_flow(self, r):"),
        ("f: Callable[[], Awaitable[TokenSet]]", "f: Callable[[], TokenSet]"),
        ("f: Callable[[], Awaitable[None]]", "f: Callable[[], None]"),
    ],
)
def test_rewrite_rules(unasync: ModuleType, source: str, expected: str) -> None:
    """Each documented replacement rule turns the async form into the sync one."""
    assert unasync.rewrite(source) == expected


@pytest.mark.parametrize(
    "source",
    [
        "asyncio.run(main())",
        "my_async_value = 1",
        "class NotAsyncLike: pass",
        "awaited = 2",
        "reader.aread_all",
    ],
)
def test_rewrite_leaves_lookalikes(unasync: ModuleType, source: str) -> None:
    """Identifiers that merely contain the patterns are left alone."""
    assert unasync.rewrite(source) == source


def test_remove_marker_drops_line(unasync: ModuleType) -> None:
    """A line marked ``# unasync: remove`` is dropped."""
    source = "a = 1\nimport asyncio  # unasync: remove\nb = 2\n"

    assert unasync.rewrite(source) == "a = 1\nb = 2\n"


def test_remove_marker_drops_block(unasync: ModuleType) -> None:
    """A marked line that opens a block drops the whole indented block."""
    source = (
        "class A:\n"
        "    def keep(self):\n"
        "        return 1\n"
        "\n"
        "    def drop(self):  # unasync: remove\n"
        "        x = 1\n"
        "\n"
        "        return x\n"
        "\n"
        "    def also_keep(self):\n"
        "        return 2\n"
    )

    result = unasync.rewrite(source)

    assert "drop" not in result
    assert "x = 1" not in result
    assert "def keep" in result
    assert "def also_keep" in result


def _write_source(directory: Path) -> None:
    directory.mkdir()
    (directory / "thing.py").write_text(
        '"""Thing."""\n\n'
        "from collections.abc import Awaitable, Callable\n\n"
        "from ksef_facade._concurrency import AsyncLock\n\n\n"
        "class AsyncThing:\n"
        '    """A thing."""\n\n'
        "    def __init__(self, f: Callable[[], Awaitable[int]]) -> None:\n"
        "        self._f = f\n"
        "        self._lock = AsyncLock()\n\n"
        "    async def get(self) -> int:\n"
        '        """Get it."""\n'
        "        async with self._lock:\n"
        "            return await self._f()\n"
    )


def test_generated_module_has_header_and_is_formatted(
    unasync: ModuleType, tmp_path: Path
) -> None:
    """The generated file starts with the header and drops the unused import."""
    source, target = tmp_path / "_async", tmp_path / "_sync"
    _write_source(source)

    assert unasync.main(["--source", str(source), "--target", str(target)]) == 0

    text = (target / "thing.py").read_text()
    assert text.startswith("# Generated by scripts/unasync.py from ")
    assert text.splitlines()[0].endswith("/_async/thing.py; do not edit.")
    assert "from collections.abc import Callable\n" in text
    assert "class Thing:" in text
    assert "        with self._lock:\n            return self._f()\n" in text


def test_check_passes_when_fresh(unasync: ModuleType, tmp_path: Path) -> None:
    """--check exits 0 right after generation."""
    source, target = tmp_path / "_async", tmp_path / "_sync"
    _write_source(source)
    args = ["--source", str(source), "--target", str(target)]
    unasync.main(args)

    assert unasync.main([*args, "--check"]) == 0


def test_check_detects_stale_file(
    unasync: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--check exits 1 with a diff when the async source changed."""
    source, target = tmp_path / "_async", tmp_path / "_sync"
    _write_source(source)
    args = ["--source", str(source), "--target", str(target)]
    unasync.main(args)
    capsys.readouterr()

    path = source / "thing.py"
    path.write_text(path.read_text().replace("Get it.", "Get it now."))

    assert unasync.main([*args, "--check"]) == 1
    out = capsys.readouterr().out
    assert '-        """Get it."""' in out
    assert '+        """Get it now."""' in out


def test_check_detects_orphaned_generated_file(
    unasync: ModuleType, tmp_path: Path
) -> None:
    """--check fails on a generated file whose async source was deleted."""
    source, target = tmp_path / "_async", tmp_path / "_sync"
    _write_source(source)
    args = ["--source", str(source), "--target", str(target)]
    unasync.main(args)

    (source / "thing.py").unlink()

    assert unasync.main([*args, "--check"]) == 1


def test_repository_sync_tree_is_fresh(unasync: ModuleType) -> None:
    """The committed ksef_facade/_sync matches what the generator produces."""
    assert unasync.main(["--check"]) == 0


def test_named_modules_only(unasync: ModuleType, tmp_path: Path) -> None:
    """Naming modules generates only those and leaves other sync files alone."""
    source, target = tmp_path / "_async", tmp_path / "_sync"
    _write_source(source)
    (source / "other.py").write_text("async def f() -> None:\n    pass\n")
    target.mkdir()
    (target / "keep.py").write_text("# Generated by scripts/unasync.py: orphan\n")

    unasync.main(["--source", str(source), "--target", str(target), "thing"])

    assert (target / "thing.py").exists()
    assert not (target / "other.py").exists()
    assert (target / "keep.py").exists()


def test_nested_with_is_merged(unasync: ModuleType, tmp_path: Path) -> None:
    """``async with`` around ``with`` becomes one lint-clean ``with a, b:``."""
    source, target = tmp_path / "_async", tmp_path / "_sync"
    source.mkdir()
    (source / "m.py").write_text(
        '"""M."""\n\n\n'
        "async def f(a: object, b: object) -> None:\n"
        '    """F."""\n'
        "    async with a:\n"
        "        with b:\n"
        "            pass\n"
    )

    unasync.main(["--source", str(source), "--target", str(target)])

    assert "    with a, b:\n        pass\n" in (target / "m.py").read_text()
