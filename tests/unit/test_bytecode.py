"""The workflow modules' bytecode is cached where Python looks for it (config/bytecode.py)."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import structlog

from config.bytecode import cache_bytecode, cache_workflow_bytecode, is_fresh


@pytest.fixture(autouse=True)
def fresh_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    """The module's logger may be cached (cache_logger_on_first_use) with processors that write past
    capture_logs, once another test configured logging again."""
    from config import bytecode

    monkeypatch.setattr(bytecode, "log", structlog.get_logger(bytecode.__name__))


@pytest.fixture
def module(tmp_path: Path) -> Iterator[ModuleType]:
    """A module imported from a source file in ``tmp_path``, with no bytecode written for it."""
    source = tmp_path / "rongtuk_bytecode_probe.py"
    source.write_text("ANSWER = 42\n")
    spec = importlib.util.spec_from_file_location("rongtuk_bytecode_probe", source)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        spec.loader.exec_module(loaded)
    finally:
        sys.dont_write_bytecode = dont_write
    yield loaded


def paths(module: ModuleType) -> tuple[str, str]:
    assert module.__spec__ is not None and module.__spec__.origin and module.__spec__.cached
    return module.__spec__.origin, module.__spec__.cached


def test_missing_bytecode_is_written_and_an_import_reads_it_instead_of_compiling(
    module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, cached = paths(module)
    loader = module.__spec__.loader  # type: ignore[union-attr]

    def compiled(*_: object, **__: object) -> None:
        raise AssertionError("compiled the source")

    monkeypatch.setattr(loader, "source_to_code", compiled)
    with pytest.raises(AssertionError, match="compiled the source"):
        loader.get_code("rongtuk_bytecode_probe")  # type: ignore[union-attr]
    assert cache_bytecode([module]) == ["rongtuk_bytecode_probe"]
    assert is_fresh(source, cached)
    code = loader.get_code("rongtuk_bytecode_probe")  # type: ignore[union-attr]
    namespace: dict[str, object] = {}
    exec(code, namespace)
    assert namespace["ANSWER"] == 42


def test_fresh_bytecode_is_left_alone_and_stale_bytecode_is_written_again(module: ModuleType) -> None:
    source, cached = paths(module)
    cache_bytecode([module])
    written = os.stat(cached).st_mtime_ns
    assert cache_bytecode([module]) == []
    assert os.stat(cached).st_mtime_ns == written
    Path(source).write_text("ANSWER = 43  # edited\n")
    os.utime(source, (os.stat(source).st_atime + 5, os.stat(source).st_mtime + 5))
    assert not is_fresh(source, cached)
    assert cache_bytecode([module]) == ["rongtuk_bytecode_probe"]
    assert is_fresh(source, cached)


def test_a_cache_path_it_cannot_write_is_logged_not_raised(module: ModuleType, tmp_path: Path) -> None:
    """A cache path that cannot be written (under a file instead of a directory: root writes anywhere else)."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    module.__spec__.cached = str(blocker / "probe.pyc")  # type: ignore[union-attr]
    with structlog.testing.capture_logs() as logs:
        assert cache_bytecode([module]) == []
    assert [e["event"] for e in logs] == ["workflow_bytecode_not_cached"]
    assert logs[0]["module"] == "rongtuk_bytecode_probe" and logs[0]["error"].endswith("Error")


def test_the_workers_workflow_modules_have_fresh_bytecode_once_a_sandbox_is_made() -> None:
    from worker import WORKFLOWS, workflow_runner

    workflow_runner()
    modules = {sys.modules[w.__module__] for w in WORKFLOWS}
    assert {m.__name__ for m in modules} == {"workflows.complaint", "workflows.agency_task"}
    for m in modules:
        assert is_fresh(*paths(m))
    assert cache_workflow_bytecode(WORKFLOWS) == []
