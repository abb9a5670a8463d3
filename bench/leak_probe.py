"""Probe the worker for per-case growth: the real worker in this process, cases opened in rounds, object counts
compared between rounds once the sticky cache is full (a diagnostic; not part of ``python -m bench``).

    .venv/bin/python -m bench.leak_probe [--rounds 4] [--cases 150] [--cache 50] [--agency-share 0.34]

Starts ``temporal server start-dev`` (a temporary SQLite file), migrates a SQLite read model, builds the worker
as ``worker.py`` does (``build_worker``, the intake relay beside it) and runs it in this event loop. Each round
files ``--cases`` cases through a second client (a share of them taken to an agency too) and then, once the
worker is idle, collects garbage and records: the RSS (anonymous and file-backed), glibc's heap (in use, obtained,
free but kept: ``mallinfo2``), CPython's allocated blocks and small-object arenas, SQLite's heap, the objects by
type (gc-tracked ones, and one level further the untracked ones: str, int, dicts of atoms), the containers that
grew, the asyncio tasks, and the sizes of the caches that could grow per case. The first round fills the sticky
cache; a type or container that grows by about the same amount every round after it grows per case. At the end,
``malloc_trim(0)`` shows how much of the RSS is free memory glibc kept. The filing client runs in the same process
(its share is in the figures too). No tracemalloc: it made the worker's workflow tasks time out.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ctypes
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.memory_bench import file_case, give_agency_task, rss_mib, worker_env
from cli.devserver import ProcessGroup, start_listening, temporal_command
from config.temporal import data_converter


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    ] + [("keepcost", ctypes.c_size_t)]


def malloc_in_use_mib() -> float:
    """glibc's heap in use (``mallinfo2().uordblks + hblkhd``, all arenas), in MiB."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return float(info.uordblks + info.hblkhd) / 2**20


def malloc_figures() -> dict[str, float]:
    """glibc's heap (all arenas, MiB): obtained from the system, in use, free but kept."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return {
        "malloc_obtained_mib": (info.arena + info.hblkhd) / 2**20,
        "malloc_free_kept_mib": info.fordblks / 2**20,
    }


def rss_parts() -> dict[str, float]:
    """RssAnon and RssFile of this process (MiB)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("RssAnon", "RssFile"):
            out[key] = int(line.split()[1]) / 1024
    return out


def pymalloc_arenas() -> int:
    """CPython's small-object arenas (256 KiB or 1 MiB each) now allocated, from ``sys._debugmallocstats``."""
    with tempfile.TemporaryFile() as f:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        for line in f.read().decode().splitlines():
            if line.startswith("# arenas allocated current"):
                return int(line.split("=")[1].replace(",", "").strip())
    return -1


def snapshot(worker: Any, db: Any) -> dict[str, Any]:
    """What might grow per case, after a full collection."""
    from activities.rebuild import _CAPTURED
    from config.temporal import _TYPE_ADAPTERS
    from store.queries import _STATEMENTS

    gc.collect()
    # The process's figures first, before this function builds its own tables (only the last one is kept).
    figures = (
        {
            "rss_mib": rss_mib(os.getpid()),
            "malloc_in_use_mib": malloc_in_use_mib(),
            "allocated_blocks": sys.getallocatedblocks(),
            "sqlite_mib": sqlite_memory_mib(),
            "pymalloc_arenas": pymalloc_arenas(),
        }
        | malloc_figures()
        | rss_parts()
    )
    objects = gc.get_objects()
    counts = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in objects)
    # Containers of some size, by id: one that grows round after round holds something per case.
    sizes = {
        id(o): len(o)
        for o in objects
        if type(o) in (dict, list, set, collections.deque, collections.OrderedDict) and len(o) >= 20
    }
    # One level further: the objects gc does not track (str, bytes, numbers, and dicts and lists that hold only
    # those), by type, and such containers by size.
    seen: set[int] = set()
    untracked: collections.Counter[str] = collections.Counter()
    for o in objects:
        for r in gc.get_referents(o):
            if gc.is_tracked(r) or id(r) in seen:
                continue
            seen.add(id(r))
            untracked[type(r).__qualname__] += 1
            if type(r) in (dict, list, set, frozenset, tuple) and len(r) >= 20:
                sizes[id(r)] = len(r)
    counts.update({f"untracked.{k}": v for k, v in untracked.items()})
    del objects, seen
    wf = worker._workflow_worker
    engine = db.engine if hasattr(db, "engine") else None
    compiled = getattr(getattr(engine, "sync_engine", engine), "_compiled_cache", None)
    return figures | {
        "gc_objects": sum(counts.values()),
        "tasks": len(asyncio.all_tasks()),
        "running_workflows": len(wf._running_workflows) if wf else None,
        "modules": len(sys.modules),
        "type_adapters": _TYPE_ADAPTERS.cache_info().currsize,
        "board_statements": len(_STATEMENTS),
        "rebuild_captured": len(_CAPTURED),
        "compiled_cache": len(compiled) if compiled is not None else None,
        "counts": counts,
        "sizes": sizes,
    }


def sqlite_memory_mib() -> float | None:
    """SQLite's own heap in use (its page caches, statements), from ``sqlite3_memory_used``."""
    try:
        lib = ctypes.CDLL("libsqlite3.so.0")
    except OSError:
        return None
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    return float(lib.sqlite3_memory_used()) / 2**20


def growing_containers(prev: dict[int, int], cur: dict[int, int], cases: int) -> None:
    """The containers that grew by at least one entry per 20 cases since the last snapshot, described."""
    grown = sorted(((cur[i] - prev[i], i) for i in cur if i in prev and cur[i] - prev[i] >= cases / 20), reverse=True)
    if not grown:
        print("  no container grew by one entry per 20 cases")
        return
    wanted = {i for _, i in grown}
    by_id = {id(o): o for o in gc.get_objects() if id(o) in wanted}
    for d, i in grown[:10]:
        o = by_id.get(i)
        print(f"  container +{d} ({d / cases:+.3f}/case) now {cur[i]}: {_describe(o)}")
        for r in gc.get_referrers(o)[:4] if o is not None else []:
            if isinstance(r, type(sys._getframe())) or r is by_id:
                continue
            print(f"     <- {_describe(r)}")


def _describe(o: Any) -> str:
    text = repr(o)
    return f"{type(o).__module__}.{type(o).__qualname__}: {text[:160]}"


def inspect_growth(names: list[str]) -> None:
    """For each type name: how its objects split (repr prefix), and who refers to a few of them, two levels up."""
    gc.collect()
    for name in names:
        objs = [o for o in gc.get_objects() if f"{type(o).__module__}.{type(o).__qualname__}" == name]
        print(f"== {name}: {len(objs)}")
        kinds = collections.Counter(repr(o)[:90] for o in objs)
        for k, v in kinds.most_common(12):
            print(f"   {v:>6}  {k}")
        for o in objs[-3:]:
            print(f"  -- {_describe(o)}")
            for r in gc.get_referrers(o):
                if r is objs or isinstance(r, type(sys._getframe())):
                    continue
                print(f"     <- {_describe(r)}")
                for r2 in gc.get_referrers(r)[:4]:
                    if r2 is objs or isinstance(r2, type(sys._getframe())):
                        continue
                    print(f"        <- {_describe(r2)}")
        del objs


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.leak_probe", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--cases", type=int, default=150)
    parser.add_argument("--cache", type=int, default=50)
    parser.add_argument("--agency-share", type=float, default=0.34)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--as-deployed",
        action="store_true",
        help="search attributes, INFO logs as JSON, the delivery dispatcher and the follow-up job beside the worker",
    )
    parser.add_argument("--inspect", nargs="*", default=[], help="type names whose objects to describe at the end")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="rongtuk-leak-"))
    group = ProcessGroup()
    try:
        _, port = start_listening(
            group,
            "temporal",
            lambda p: temporal_command(db_file=tmp / "temporal.db", port=p, ui_port=None),
            log=tmp / "temporal.log",
        )
        url = f"sqlite+aiosqlite:///{tmp / 'read.db'}"
        os.environ.update(worker_env(port=port, url=url, tmp=tmp, cache=args.cache, as_deployed=args.as_deployed))
        from temporalio.client import Client

        from config.logging import configure_logging
        from config.settings import Settings
        from config.temporal import connect
        from intake.relay import start_relay
        from store.db import Database
        from store.migrate import upgrade
        from worker import build_worker

        await asyncio.to_thread(upgrade, url)
        settings = Settings()
        configure_logging(fmt=settings.log_format, level=settings.log_level)
        db = Database(settings.database_url, writer=True)
        worker_client = await connect(settings)
        worker = build_worker(worker_client, settings, db)
        _, relay = start_relay(db, worker_client, settings)
        beside = [relay]
        if args.as_deployed:
            from delivery.dispatcher import start_dispatcher
            from followup.job import start as start_followups

            beside.append(start_dispatcher(settings, db))
            followups = start_followups(db, settings)
            if followups is not None:
                beside.append(followups)
        running = asyncio.ensure_future(worker.run())
        client = await Client.connect(f"127.0.0.1:{port}", data_converter=data_converter(Settings(env="test")))
        gate = asyncio.Semaphore(args.concurrency)
        every = max(1, round(1 / args.agency_share)) if args.agency_share else 0

        async def one(n: int) -> None:
            async with gate:
                handle = await file_case(client, f"RT-LEAK-{n:06d}", search_attributes=args.as_deployed)
                if every and n % every == 0:
                    await give_agency_task(handle)

        snaps: list[dict[str, Any]] = [snapshot(worker, db)]
        done = 0
        for r in range(args.rounds):
            t0 = time.perf_counter()
            await asyncio.gather(*(one(n) for n in range(done, done + args.cases)))
            done += args.cases
            await asyncio.sleep(3.0)
            snaps.append(snapshot(worker, db))
            s = snaps[-1]
            print(
                f"round {r + 1}: {done} cases in {time.perf_counter() - t0:.0f} s; RSS {s['rss_mib']:.1f} MiB, "
                f"malloc {s['malloc_in_use_mib']:.2f} MiB, blocks {s['allocated_blocks']}, gc {s['gc_objects']}, "
                f"tasks {s['tasks']}, running {s['running_workflows']}, modules {s['modules']}, adapters "
                f"{s['type_adapters']}, statements {s['board_statements']}, compiled {s['compiled_cache']}, "
                f"sqlite {s['sqlite_mib']:.1f}; anon {s['RssAnon']:.1f} file {s['RssFile']:.1f}, malloc obtained "
                f"{s['malloc_obtained_mib']:.1f} free kept {s['malloc_free_kept_mib']:.1f}, pymalloc arenas "
                f"{s['pymalloc_arenas']}",
                flush=True,
            )
            if r >= 1:
                prev, cur = snaps[-2]["counts"], s["counts"]
                diff = {k: cur[k] - prev[k] for k in set(cur) | set(prev) if cur[k] != prev[k]}
                top = sorted(diff.items(), key=lambda kv: -abs(kv[1]))[: args.top]
                growing_containers(snaps[-2]["sizes"], s["sizes"], args.cases)
                print("  growth since the last round (per case):")
                for k, v in top:
                    print(f"    {v:>+7} ({v / args.cases:+.3f})  {k}")
                # Keep only the last tables: kept, they would be growth of their own.
                del snaps[-2]["counts"], snaps[-2]["sizes"]
        before = rss_parts()["RssAnon"]
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        print(f"malloc_trim(0): RssAnon {before:.1f} -> {rss_parts()['RssAnon']:.1f} MiB", flush=True)
        if args.inspect:
            inspect_growth(args.inspect)
        if args.out:
            args.out.write_text(
                json.dumps([{k: v for k, v in s.items() if k not in ("counts", "sizes")} for s in snaps], indent=2)
                + "\n"
            )
        await worker.shutdown()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, 10)
        for task in beside:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await db.dispose()
    finally:
        group.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)
