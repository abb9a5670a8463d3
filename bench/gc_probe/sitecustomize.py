"""Garbage-collection pauses of every Python process started with this folder on ``PYTHONPATH``.

    PYTHONPATH=bench/gc_probe .venv/bin/python -m bench.intake_bench --complaints 2000 --api-workers 1

The benchmarks pass their environment on to the API and worker they start, so each of those processes
appends one line per full collection, and per younger one over 2 ms, to ``gc-<pid>.txt`` in
``$RONGTUK_GC_PROBE_DIR`` (default: the temporary directory): the time, the generation, the pause, the count
collected and the command line. Used for docs/operations.md "Garbage collection"; not imported by anything.
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import time
from typing import Any

_OUT = os.path.join(os.environ.get("RONGTUK_GC_PROBE_DIR", tempfile.gettempdir()), f"gc-{os.getpid()}.txt")
_COMMAND = " ".join(sys.argv)[:120]
_started = [0.0]


def _pause(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    ms = (time.perf_counter() - _started[0]) * 1000
    if info["generation"] == 2 or ms > 2:
        with open(_OUT, "a", encoding="utf-8") as out:
            out.write(
                f"{time.time():.3f} gen{info['generation']} {ms:.1f}ms collected={info['collected']} {_COMMAND}\n"
            )


gc.callbacks.append(_pause)
