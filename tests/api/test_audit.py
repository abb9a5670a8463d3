"""Auditors' tools: the hash chain (tamper evidence), case history from Temporal, the access log, the codec."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, update
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from cli.audit import app as audit_app
from config.settings import Settings, get_settings
from store import models
from store.chain import event_hash
from store.db import Database
from tests.api.conftest import (
    AUDITOR,
    OFFICER,
    SUPERVISOR,
    agency,
    bearer,
    file_and_assign,
    rewrite_and_rechain,
)
from workflows.complaint import workflow_id_for

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


def cli(settings: Settings, *args: str, temporal: str | None = None) -> subprocess.CompletedProcess[str]:
    """``rongtuk audit ...`` as its own process, as an auditor runs it."""
    env = {**os.environ, "RONGTUK_ENV": "test", "RONGTUK_DATABASE_URL": settings.database_url}
    if temporal:
        env["RONGTUK_TEMPORAL_ADDRESS"] = temporal
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "audit", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def verify_here(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``rongtuk audit verify ...`` without ``--history``, the same command run in this process: a process of its
    own spends ~3 s importing. The runs with ``--history`` (which end their process) stay processes of their own,
    and so cover the entry point."""
    assert "--history" not in args
    get_settings.cache_clear()
    try:
        env = {"RONGTUK_ENV": "test", "RONGTUK_DATABASE_URL": settings.database_url}
        # The command runs its own event loop (asyncio.run): a thread of its own, not this test's loop.
        done = await asyncio.to_thread(CliRunner().invoke, audit_app, ["verify", *args], env=env)
    finally:
        get_settings.cache_clear()
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception
    return subprocess.CompletedProcess(["rongtuk", "audit", "verify", *args], done.exit_code, done.output, "")


async def chained_case(db: Database, rows: int = 4) -> str:
    """A case whose event rows carry correct hashes, written here as the projection writes them."""
    case_id = f"RT-CHAIN-{uuid.uuid4().hex[:8]}"
    async with db.session() as s:
        s.add(
            models.Case(
                case_id=case_id,
                tracking_code=uuid.uuid4().hex[:10],
                workflow_id=f"case-{case_id}",
                status="screening",
                channel="web",
                description="ทดสอบ",
                received_at=T0,
                updated_at=T0,
            )
        )
        prev = None
        for seq in range(1, rows + 1):
            row = {
                "case_id": case_id,
                "seq": seq,
                "event": "filed" if seq == 1 else f"e{seq}",
                "from_state": None if seq == 1 else "received",
                "to_state": "received" if seq == 1 else "screening",
                "actor_id": "officer-1",
                "actor_role": "officer",
                "actor_agency": None,
                "at": T0 + timedelta(minutes=seq),
                "public": True,
                "data": {"n": seq},
            }
            digest = event_hash(prev, row)
            s.add(models.CaseEvent(**row, prev_hash=prev, hash=digest))
            prev = digest
    return case_id


async def test_audit_verify_names_the_first_tampered_row(settings: Settings, db: Database) -> None:
    case_id = await chained_case(db)
    ok = await verify_here(settings, case_id)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "1 of 1 case(s) verified" in ok.stdout

    async with db.session() as s:  # someone edits who did step 3, in the database, after the fact
        await s.execute(
            update(models.CaseEvent)
            .where(models.CaseEvent.case_id == case_id, models.CaseEvent.seq == 3)
            .values(actor_id="someone-else")
        )
    bad = await verify_here(settings, case_id)
    assert bad.returncode == 1
    assert f"FAILED {case_id}: row seq 3: row content does not match its hash" in bad.stdout
    every = await verify_here(settings, "--all")
    assert every.returncode == 1 and f"FAILED {case_id}: row seq 3" in every.stdout

    other = await chained_case(db)
    async with db.session() as s:  # a row deleted: the gap is named
        await s.execute(delete(models.CaseEvent).where(models.CaseEvent.case_id == other, models.CaseEvent.seq == 2))
    gap = await verify_here(settings, other)
    assert gap.returncode == 1 and "row seq 3: seq 2 is missing" in gap.stdout


async def test_history_from_temporal_with_as_of(api: httpx.AsyncClient) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    receipt = await file_and_assign(api)
    case_id = receipt["case_id"]
    response = await api.get(f"/api/v1/cases/{case_id}/history", headers=AUDITOR)
    assert response.status_code == 200, response.text
    entries = response.json()["entries"]
    assert entries[0]["kind"] == "filed" and entries[0]["state"] == "received"
    actions = [e["detail"] for e in entries if e["kind"] == "action_accepted" and e["detail"].get("action")]
    assert [(a["action"], a["by"]["id"], a["by"]["role"]) for a in actions] == [
        ("screen", "officer-7", "officer"),
        ("accept", "officer-7", "officer"),
    ]
    assert actions[1]["fields"] == ["agencies", "category"]
    states = [e["state"] for e in entries if e["kind"] == "action_completed"]
    assert states[-2:] == ["screening", "assignment"]
    # Every transition, as the write that recorded it left it in the history (the intake's too, and who made it).
    transitions = [(e["detail"]["seq"], e["detail"]["event"], e["state"]) for e in entries if e["kind"] == "transition"]
    assert transitions == [(1, "filed", "received"), (2, "screen", "screening"), (3, "accept", "assignment")]
    officer = [e["detail"]["by"] for e in entries if e["kind"] == "transition"][1]
    assert (officer["id"], officer["role"]) == ("officer-7", "officer")
    assert "สมหญิง" not in response.text and "0812345678" not in response.text.replace("-", "")
    # The first timer the workflow set is the screening deadline the receipt promised, to the second.
    timers = [e["detail"] for e in entries if e["kind"] == "deadline_set"]
    assert datetime.fromisoformat(timers[0]["fires_at"]) == datetime.fromisoformat(receipt["due_at"]), timers

    then = await api.get(f"/api/v1/cases/{case_id}/history", params={"as_of": before.isoformat()}, headers=SUPERVISOR)
    assert then.json()["as_of"]["state"] is None and then.json()["entries"] == []
    now = await api.get(
        f"/api/v1/cases/{case_id}/history", params={"as_of": datetime.now(UTC).isoformat()}, headers=AUDITOR
    )
    assert now.json()["as_of"]["state"] == "assignment" and now.json()["as_of"]["timeline_state"] == "assignment"

    assert (await api.get(f"/api/v1/cases/{case_id}/history", headers=OFFICER)).status_code == 403
    assert (await api.get(f"/api/v1/cases/{case_id}/history", headers=agency("BMA"))).status_code == 403
    assert (await api.get(f"/api/v1/cases/{case_id}/history")).status_code == 401


async def test_staff_reads_land_in_the_access_log(api: httpx.AsyncClient) -> None:
    receipt = await file_and_assign(api)
    case_id = receipt["case_id"]
    reader = bearer(f"reader-{uuid.uuid4().hex[:6]}", "supervisor")
    read = await api.get(f"/api/v1/cases/{case_id}", params={"reason": "ผู้ร้องโทรสอบถาม"}, headers=reader)
    assert read.status_code == 200 and read.headers["cache-control"] == "no-store"
    # Headers are Latin-1: a Thai reason goes percent-encoded.
    header = {"X-Access-Reason": "%E0%B8%95%E0%B8%A3%E0%B8%A7%E0%B8%88"}  # ตรวจ
    assert (await api.get(f"/api/v1/cases/{case_id}", headers=reader | header)).status_code == 200
    log = await api.get("/api/v1/audit/access-log", params={"case_id": case_id}, headers=AUDITOR)
    assert log.status_code == 200
    items = log.json()["items"]
    mine = [i for i in items if i["actor_id"].startswith("reader-")]
    assert [(m["reason"], m["what"]) for m in mine] == [("ตรวจ", "case"), ("ผู้ร้องโทรสอบถาม", "case")]
    # The officer's actions showed the case too: logged as what they were, not as the case opened.
    officer = [i["what"] for i in items if i["actor_id"] == "officer-7"]
    assert officer == ["action:accept", "action:screen"], officer
    for who in (OFFICER, SUPERVISOR, agency("BMA"), bearer("adm", "admin")):
        assert (await api.get("/api/v1/audit/access-log", headers=who)).status_code == 403
    assert (await api.get("/api/v1/audit/access-log")).status_code == 401


async def test_codec_endpoint_for_auditors_and_operators_only(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    receipt = await file_and_assign(api)
    history = await dev_env.client.get_workflow_handle(workflow_id_for(receipt["case_id"])).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    import base64

    encrypted = {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in started.metadata.items()},
                "data": base64.b64encode(started.data).decode(),
            }
        ]
    }
    assert "สมหญิง".encode() not in started.data
    decoded = await api.post("/codec/decode", json=encrypted, headers=AUDITOR)
    assert decoded.status_code == 200, decoded.text
    plain = base64.b64decode(decoded.json()["payloads"][0]["data"]).decode()
    assert json.loads(plain)["case_id"] == receipt["case_id"] and "สมหญิง" in plain
    again = await api.post("/codec/encode", json=decoded.json(), headers=bearer("ops", "admin"))
    assert again.status_code == 200 and again.json()["payloads"][0]["data"] != decoded.json()["payloads"][0]["data"]
    for who in (OFFICER, SUPERVISOR, agency("BMA")):
        assert (await api.post("/codec/decode", json=encrypted, headers=who)).status_code == 403
    assert (await api.post("/codec/decode", json=encrypted)).status_code == 401
    broken = {
        "payloads": [{"metadata": encrypted["payloads"][0]["metadata"], "data": base64.b64encode(b"x" * 40).decode()}]
    }
    assert (await api.post("/codec/decode", json=broken, headers=AUDITOR)).status_code == 422


async def test_audit_export_bundle(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, settings: Settings, tmp_path: Path
) -> None:
    receipt = await file_and_assign(api)
    target = tmp_path / f"{workflow_id_for(receipt['case_id'])}.json"  # replay reads the id from the name
    done = cli(
        settings,
        "export",
        receipt["case_id"],
        "--output",
        str(target),
        temporal=dev_env.client.service_client.config.target_host,
    )
    assert done.returncode == 0, done.stderr
    bundle = json.loads(target.read_text(encoding="utf-8"))
    assert bundle["case_id"] == receipt["case_id"]
    assert bundle["history"]["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    assert [e["detail"].get("action") for e in bundle["timeline"] if e["kind"] == "action_accepted"][-2:] == [
        "screen",
        "accept",
    ]
    assert [r["event"] for r in bundle["chain"]["rows"]] == ["filed", "screen", "accept"]
    from temporalio.client import WorkflowHistory

    replayable = WorkflowHistory.from_json(workflow_id_for(receipt["case_id"]), bundle["history"])
    assert len(replayable.events) == len(bundle["history"]["events"])
    replay = subprocess.run(
        [sys.executable, "-m", "cli.main", "replay", "--history-file", str(target)],
        env={**os.environ, "RONGTUK_ENV": "test", "RONGTUK_DATABASE_URL": settings.database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr


@pytest.mark.parametrize(
    ("seq", "change", "says"),
    [
        # An action's outcome: the action check of older histories would catch it too.
        (3, {"to_state": "closed"}, "the event log says closed, Temporal's history says assignment"),
        # The intake row's actor: only the record the write left in the history tells.
        (1, {"actor_id": "someone-else"}, "actor_id differs from what Temporal's history records"),
    ],
)
async def test_verify_holds_for_the_projection_chain_and_catches_an_edit(
    api: httpx.AsyncClient,
    settings: Settings,
    db: Database,
    dev_env: WorkflowEnvironment,
    seq: int,
    change: dict[str, Any],
    says: str,
) -> None:
    receipt = await file_and_assign(api)
    case_id = receipt["case_id"]
    temporal = dev_env.client.service_client.config.target_host
    ok = cli(settings, "verify", case_id, "--history", temporal=temporal)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    # Someone rewrites a row and recomputes every hash after it: the chain holds, the history does not.
    rows = await rewrite_and_rechain(db, case_id, seq, **change)
    assert [r.event for r in rows] == ["filed", "screen", "accept"]
    assert (await verify_here(settings, case_id)).returncode == 0, "a consistent rewrite passes the chain alone"
    caught = cli(settings, "verify", case_id, "--history", temporal=temporal)
    assert caught.returncode == 1, caught.stdout + caught.stderr
    assert f"FAILED {case_id}: row seq {seq}: {says}" in caught.stdout
    async with db.session() as s:  # the category of the accept step rewritten after the fact
        await s.execute(
            update(models.CaseEvent)
            .where(models.CaseEvent.case_id == case_id, models.CaseEvent.seq == 3)
            .values(data={"category": "something-else", "agencies": ["BMA"]})
        )
    bad = await verify_here(settings, case_id)
    assert bad.returncode == 1 and f"FAILED {case_id}: row seq 3" in bad.stdout
