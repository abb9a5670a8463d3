"""Two ways of doing the same work, timed in one process in alternating blocks (``bench.filing_bench``,
``bench.record_bench``): a change against the way it replaced, on the same database and the same minute of
this noisy machine."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.engine_bench import latency
from bench.lifecycle_bench import postgres_cpu


async def alternate(
    ways: tuple[str, str], block: Callable[[str], Awaitable[list[float]]], *, blocks: int, unit: str
) -> dict[str, Any]:
    """``blocks`` blocks of each way after one of each as warm-up (pools, prepared statements, compiled forms),
    which one goes first alternating. ``block(way)`` does one block and returns each item's seconds. Per way:
    latency, and CPU per ``unit`` of this process and of PostgreSQL's processes (``postgres_cpu``)."""
    samples: dict[str, list[float]] = {way: [] for way in ways}
    cpu = dict.fromkeys(ways, 0.0)
    pg_cpu = dict.fromkeys(ways, 0.0)
    for n in range(blocks + 1):
        for way in ways if n % 2 else tuple(reversed(ways)):
            cpu0, pg0 = time.process_time(), postgres_cpu()
            times = await block(way)
            if n == 0:
                continue
            cpu[way] += time.process_time() - cpu0
            pg_cpu[way] += postgres_cpu() - pg0
            samples[way].extend(times)
    return {
        way: {
            f"{unit}s": len(samples[way]),
            "latency": latency(samples[way]),
            f"cpu_ms_per_{unit}": round(cpu[way] / len(samples[way]) * 1000, 3),
            f"postgresql_cpu_ms_per_{unit}": round(pg_cpu[way] / len(samples[way]) * 1000, 3),
        }
        for way in ways
    }


def print_runs(runs: dict[str, dict[str, Any]], ways: tuple[str, str], unit: str) -> None:
    """A table of ``alternate``'s results by number in flight, and the first way's ratios to the second's."""
    print(f"\n{'in flight':>9}  {'way':<14}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms (this)':>15}{'CPU ms (PG)':>13}")
    cpu, pg = f"cpu_ms_per_{unit}", f"postgresql_cpu_ms_per_{unit}"
    for concurrency, result in runs.items():
        for way in ways:
            r, lat = result[way], result[way]["latency"]
            print(
                f"{concurrency:>9}  {way.replace('_', ' '):<14}{lat['p50_ms']:>9.2f}{lat['p99_ms']:>9.2f}"
                f"{r[cpu]:>15.2f}{r[pg]:>13.2f}"
            )
        now, base = (result[way] for way in ways)
        print(
            f"{'':>9}  ratio: p50 {now['latency']['p50_ms'] / base['latency']['p50_ms']:.2f}×, "
            f"CPU {now[cpu] / base[cpu]:.2f}× (this), {now[pg] / max(base[pg], 1e-9):.2f}× (PG)"
        )
