"""The cyclic garbage collector and what a long-lived process builds at start-up.

An API or worker process holds millions of objects from start-up to exit: the imported modules, pydantic's
schemas, the agencies, the place names, the tokeniser's dictionaries, the calendar. CPython's full (oldest
generation) collection walks every one of them each time it runs, and under load it runs every few seconds:
measured in the API during ``bench.intake_bench``, pauses of 150-400 ms every 1.5-3 s that freed next to
nothing, every request in flight stopped behind them. ``gc.freeze()`` moves what is alive at the end of
start-up to a permanent generation the collector no longer walks; reference counting still frees those
objects as usual, and what the process allocates afterwards is collected as before.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from config.settings import Settings

log = structlog.get_logger(__name__)


def freeze_startup_heap() -> int:
    """Collect once (start-up's own cyclic garbage goes now, not never), then freeze what is left; the
    number of objects now outside the collector's walks."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def after_start_up(settings: Settings) -> None:
    """What every long-running process (API, worker, dispatcher, email intake) calls once it has started:
    freeze the heap unless ``settings`` say not to (``RONGTUK_GC_FREEZE``; off in tests)."""
    if settings.freezes_heap:
        log.info("heap_frozen", objects=freeze_startup_heap())
