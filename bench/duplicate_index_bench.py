"""What a full build of the duplicate index costs the API process's other requests.

    .venv/bin/python -m bench.duplicate_index_bench [--cases 20000] [--out bench/results/duplicate-index.json]

The API screens cases in its thread pool, and every 30 minutes builds its duplicate index again
(``screening.duplicates.IndexKeeper``). Vectorising is CPU work (about 0.3 ms a case). Built on the event loop,
as the API did before, it stops every request of the process for the whole build. The keeper now builds in a
thread. Both ways are measured in the same process, back to back, on the same synthetic Thai texts. A ticker
task on the event loop asks to wake every 10 ms, and its lateness is what any request waiting on the loop
would see. Baseline: the ticker alone, with no build. The figures are the build's wall time and the ticker's
lateness (p50, p99, max) during it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.machine import machine_info
from screening.duplicates import DuplicateIndex, IndexedCase

_TICK = 0.010
_TEXTS = [
    "ไฟฟ้าส่องสว่างบนถนนในซอยดับมาหลายวันแล้ว กลางคืนมืดมาก ผู้หญิงและเด็กเดินผ่านไม่ปลอดภัย ขอให้มาซ่อมด่วน",
    "ท่อระบายน้ำหน้าบ้านอุดตัน น้ำท่วมขังทุกครั้งที่ฝนตก ส่งกลิ่นเหม็นและมียุงมาก",
    "ถนนเป็นหลุมเป็นบ่อขนาดใหญ่ รถจักรยานยนต์ล้มไปแล้วสองคัน ขอให้หน่วยงานมาซ่อมแซม",
    "มีการจอดรถขวางทางเข้าออกซอยเป็นประจำ รถพยาบาลและรถดับเพลิงเข้าไม่ได้",
    "ร้านค้าเปิดเพลงเสียงดังจนดึกทุกคืน รบกวนการพักผ่อนของผู้สูงอายุในชุมชน",
]


def _corpus(n: int) -> tuple[list[IndexedCase], list[str]]:
    cases = [IndexedCase(f"RT-{k:07d}", "roads", "10", "1001", None, None) for k in range(n)]
    texts = [f"{_TEXTS[k % len(_TEXTS)]} บ้านเลขที่ {k} หมู่ {k % 12 + 1}" for k in range(n)]
    return cases, texts


async def _lateness_during(build: Callable[[], Awaitable[Any]] | None, idle_s: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    late: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            asked = loop.time()
            await asyncio.sleep(_TICK)
            late.append((loop.time() - asked - _TICK) * 1000)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(_TICK * 3)
    late.clear()
    started = time.perf_counter()
    if build is None:
        await asyncio.sleep(idle_s)
    else:
        await build()
    wall = time.perf_counter() - started
    done.set()
    await task
    ordered = sorted(late) or [0.0]
    return {
        "wall_s": round(wall, 2),
        "ticks": len(late),
        "late_ms_p50": round(statistics.median(ordered), 1),
        "late_ms_p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        "late_ms_max": round(ordered[-1], 1),
    }


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path("bench/results/duplicate-index.json"))
    args = parser.parse_args(argv)
    cases, texts = _corpus(args.cases)

    async def on_the_loop() -> None:
        DuplicateIndex(cases, texts)

    async def in_a_thread() -> None:
        await asyncio.to_thread(DuplicateIndex, cases, texts)

    await in_a_thread()  # warm-up: imports and the vectoriser's first call
    rows = {
        "ticker alone (baseline)": await _lateness_during(None, idle_s=3.0),
        "build on the event loop (before)": await _lateness_during(on_the_loop, idle_s=0),
        "build in a thread (IndexKeeper)": await _lateness_during(in_a_thread, idle_s=0),
    }
    print(f"duplicate index, {args.cases:,} cases; a ticker asks to wake every {_TICK * 1000:.0f} ms")
    print(f"  {'':<34}{'wall s':>8}{'ticks':>7}{'late p50 ms':>13}{'p99 ms':>9}{'max ms':>9}")
    for name, r in rows.items():
        print(
            f"  {name:<34}{r['wall_s']:>8}{r['ticks']:>7}{r['late_ms_p50']:>13}{r['late_ms_p99']:>9}"
            f"{r['late_ms_max']:>9}"
        )
    result = {"machine": machine_info(), "cases": args.cases, "tick_ms": _TICK * 1000, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    asyncio.run(main())
