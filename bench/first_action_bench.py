"""How long the first action on a case filed a moment ago takes, against a later action on the same case.

    .venv/bin/python -m bench.first_action_bench [--cases 20] [--out bench/results/first-action.json]

An officer who screens a complaint the moment it arrives acts on a case whose workflow may not be started
yet: DB-first intake answered the citizen, and a relay starts the workflow after the commit. Since the action
sends the start with it (update-with-start, ``api.service.perform_action``), it no longer waits for the relay.

One case at a time, in this process: the real app over ASGI (its relay on and kicked after each commit, as
deployed), a real worker, the Temporal dev server from the venv and a SQLite read model in a temporary
directory. Per case: file, then at once ``screen`` (the first action), then ``accept`` (the baseline: an
action on a case its workflow has filed). Then the same with the relays off (as while a relay works through a
backlog after an outage): the first action is the only thing that starts the workflow. Prints a table and
writes JSON with each step's p50 and max.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from api.auth import Principal, StaffRole, issue_access_token
from api.main import create_app
from bench.engine_bench import ACTIONS
from bench.machine import machine_info
from config.settings import Settings
from config.temporal import data_converter
from store.db import Database
from store.migrate import upgrade
from worker import build_worker
from workflows import search_attributes

COMPLAINT = {
    "channel": "web",
    "description": "ท่อประปาแตกหน้าบ้านเลขที่ 12 น้ำไหลนองถนนมาสามวันแล้ว",
    "complainant": {"name": "ผู้ร้องทดสอบ", "phone": "081-234-5678", "preferred_channels": ["web"]},
    "location": {"province": "Bangkok"},
}
ACCEPT = dict(ACTIONS[1][2])  # accept, to DOPA, as the lifecycle bench sends it


def _officer(settings: Settings) -> dict[str, str]:
    token, _ = issue_access_token(settings, Principal("officer-bench", StaffRole.OFFICER), now=datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


def _summary(samples: list[float]) -> dict[str, float]:
    return {"n": len(samples), "p50_ms": statistics.median(samples), "max_ms": max(samples)}


async def _run(env: WorkflowEnvironment, settings: Settings, db: Database, cases: int) -> dict[str, Any]:
    app = create_app(settings, temporal=env.client)
    officer = _officer(settings)
    first: list[float] = []
    later: list[float] = []
    async with (
        app.router.lifespan_context(app),
        build_worker(env.client, settings, db, task_queue=settings.task_queue),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rongtuk") as http,
    ):
        for n in range(cases + 3):  # three to warm up
            filed = await http.post("/api/v1/complaints", json=COMPLAINT)
            if filed.status_code != 201:
                raise RuntimeError(f"intake: {filed.status_code} {filed.text[:200]}")
            actions = f"/api/v1/cases/{filed.json()['case_id']}/actions"
            timings = []
            for action, body in (("screen", {}), ("accept", ACCEPT)):
                began = time.perf_counter()
                answer = await http.post(f"{actions}/{action}", json=body, headers=officer)
                if answer.status_code != 200:
                    raise RuntimeError(f"{action}: {answer.status_code} {answer.text[:200]}")
                timings.append((time.perf_counter() - began) * 1000)
            if n >= 3:
                first.append(timings[0])
                later.append(timings[1])
    return {"first_action": _summary(first), "later_action": _summary(later)}


async def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("bench/results/first-action.json"))
    args = parser.parse_args(argv)
    machine = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings(
            env="test",
            database_url=f"sqlite+aiosqlite:///{tmp}/read-model.db",
            data_dir=Path(tmp),
            log_level="WARNING",
            rate_intake_per_minute=0,
            rate_tracking_per_minute=0,
        )
        await asyncio.to_thread(upgrade, base.database_url)
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
            data_converter=data_converter(base),
            dev_server_extra_args=["--log-level", "error"],
            search_attributes=search_attributes.ALL,
        )
        db = Database(base.database_url)
        try:
            results = {}
            for name, relay in (("relay_kicked", True), ("relays_off", False)):
                settings = base.model_copy(
                    update={"task_queue": f"bench-first-{uuid.uuid4().hex[:8]}", "intake_relay_in_api": relay}
                )
                results[name] = await _run(env, settings, db, args.cases)
        finally:
            await db.dispose()
            await env.shutdown()
    print(f"\nFirst action on a case filed a moment ago, {args.cases} cases one at a time (in-process app, SQLite)\n")
    print("| relays | first action (screen) p50 / max ms | later action (accept) p50 / max ms | first ÷ later (p50) |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        f, la = r["first_action"], r["later_action"]
        ratio = f["p50_ms"] / la["p50_ms"]
        r["first_vs_later_p50"] = ratio
        cells = f"{f['p50_ms']:.0f} / {f['max_ms']:.0f} | {la['p50_ms']:.0f} / {la['max_ms']:.0f}"
        print(f"| {name} | {cells} | {ratio:.2f}× |")
    report = {"date": datetime.now(UTC).isoformat(), "machine": machine, "args": {"cases": args.cases}} | {
        "results": results
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {args.out}")
    return report


if __name__ == "__main__":
    asyncio.run(main())
