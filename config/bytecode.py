"""The workflow modules' bytecode, cached where Python looks for it.

Temporal's sandbox imports each workflow's module afresh for every workflow instance it creates, in a worker
and in every replay (the modules they import are passed through: worker.PASSTHROUGH_MODULES). Python reads
that module's bytecode from ``__pycache__`` when it is there and up to date, and compiles the source otherwise:
2.7 ms for ``workflows/complaint.py`` on the development machine, against 0.05 ms to read it, for every case a
worker takes on and every history a release check replays (replays were 1.05-1.19× faster with it, in three
alternating pairs: docs/performance.md).

A wheel installed by pip has its bytecode written at install time. A source checkout may have none when
Python runs with ``PYTHONDONTWRITEBYTECODE`` (set on the development machine), or stale bytecode in a
directory it cannot write. So the worker and the replayer write it for the workflow modules, as pip would, when
it is missing or stale; a directory they cannot write is logged, with what it costs.
"""

from __future__ import annotations

import importlib.util
import os
import py_compile
import sys
from collections.abc import Iterable
from types import ModuleType

import structlog

log = structlog.get_logger(__name__)


def is_fresh(source: str, cached: str) -> bool:
    """Whether ``cached`` is bytecode Python would take for ``source``: its magic number, and the source's
    modification time and size in its header (the default, timestamp-checked kind)."""
    try:
        with open(cached, "rb") as f:
            header = f.read(16)
        st = os.stat(source)
    except OSError:
        return False
    return (
        len(header) == 16
        and header[:4] == importlib.util.MAGIC_NUMBER
        and int.from_bytes(header[4:8], "little") == 0
        and int.from_bytes(header[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
        and int.from_bytes(header[12:16], "little") == st.st_size & 0xFFFFFFFF
    )


def cache_bytecode(modules: Iterable[ModuleType]) -> list[str]:
    """Write the bytecode of each of ``modules`` (from a source file) that has none or a stale one; returns the
    names of the modules written. Never raises: a module whose bytecode cannot be written is logged."""
    written = []
    for module in modules:
        spec = module.__spec__
        source, cached = (spec.origin, spec.cached) if spec is not None else (None, None)
        if not source or not cached or not source.endswith(".py") or is_fresh(source, cached):
            continue
        try:
            py_compile.compile(
                source, cfile=cached, doraise=True, invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP
            )
        except (OSError, py_compile.PyCompileError) as exc:
            log.warning(
                "workflow_bytecode_not_cached",
                module=module.__name__,
                error=type(exc).__name__,
                effect="the sandbox compiles this module's source for every workflow instance and every replay",
            )
            continue
        written.append(module.__name__)
    if written:
        log.info("workflow_bytecode_cached", modules=written)
    return written


def cache_workflow_bytecode(workflows: Iterable[type]) -> list[str]:
    """``cache_bytecode`` for the modules that define ``workflows``."""
    return cache_bytecode(dict.fromkeys(sys.modules[w.__module__] for w in workflows))
