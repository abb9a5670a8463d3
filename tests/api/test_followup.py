"""The "was it fixed?" follow-up: asked once after the configured time by the complainant's channels (Thai
and English), answered on the tracking page; "not fixed" reopens the case, or goes to a supervisor when the
case can no longer be reopened; the answers are on the timeline and in the report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

import followup.job
from config.settings import Settings
from followup.job import FOLLOWUP_SEQ_BASE, ask_due, due_query
from store import models
from store.db import Database
from tests.api.conftest import AUDITOR, OFFICER, SUPERVISOR, agency, complaint
from tests.query_plans import query_plan

DOPA = agency("DOPA")
RESPONSE = {"outcome": "resolved", "response": "ซ่อมไฟถนนแล้ว"}
STAGE1 = [
    ("officer", "screen", {}),
    ("officer", "accept", {"category": "roads.pothole", "agencies": ["DOPA"]}),
    ("dopa", "agency_accept", {}),
    ("dopa", "respond", RESPONSE),
    ("supervisor", "close", {}),
]
STAGE2 = [
    ("citizen", "request_review", {"reason": "ยังดับอยู่"}),
    ("officer", "acknowledge", {"points": "ไฟถนน", "outcome_wanted": "ซ่อม"}),
    ("dopa", "report_findings", {"findings": "ตรวจสอบแล้ว ซ่อมไม่ครบ"}),
    ("supervisor", "respond_stage2", RESPONSE),
]
HEADERS = {"officer": OFFICER, "supervisor": SUPERVISOR, "dopa": DOPA}


async def closed_case(api: httpx.AsyncClient, steps: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    body = complaint()
    body["complainant"] = {
        **body["complainant"],
        "email": "somying@example.org",
        "preferred_channels": ["email", "web"],
    }  # type: ignore[dict-item]
    receipt = (await api.post("/api/v1/complaints", json=body)).json()
    for who, action, payload in steps:
        if who == "citizen":
            done = await api.post(f"/api/v1/track/{receipt['tracking_code']}/actions/{action}", json=payload)
        else:
            done = await api.post(
                f"/api/v1/cases/{receipt['case_id']}/actions/{action}", json=payload, headers=HEADERS[who]
            )
        assert done.status_code == 200, done.text
    return receipt  # type: ignore[no-any-return]


def followup_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"followup_after_days": 28})


async def closed_days_ago(db: Database, case_id: str, days: int) -> None:
    """Move the closure into the past (the read model's closed_at), as if the weeks had gone by."""
    async with db.session() as s:
        case = await s.get(models.Case, case_id)
        assert case is not None and case.closed_at is not None
        case.closed_at = datetime.now(UTC) - timedelta(days=days)


async def followup_rows(db: Database, case_id: str) -> list[models.Notification]:
    async with db.session() as s:
        query = select(models.Notification).where(
            models.Notification.case_id == case_id, models.Notification.seq > FOLLOWUP_SEQ_BASE
        )
        return list((await s.execute(query.order_by(models.Notification.id))).scalars())


async def test_asked_after_the_configured_time_and_not_fixed_reopens(
    api: httpx.AsyncClient, settings: Settings, db: Database
) -> None:
    receipt = await closed_case(api, STAGE1)
    code, case_id = receipt["tracking_code"], receipt["case_id"]
    config = followup_settings(settings)
    early = await api.post(f"/api/v1/track/{code}/followup", json={"answer": "not_fixed"})
    assert early.status_code == 409 and early.json()["error"]["message_th"]

    await closed_days_ago(db, case_id, 27)
    await ask_due(db, config)
    assert await followup_rows(db, case_id) == []  # not yet: the time has not come
    await closed_days_ago(db, case_id, 29)
    await ask_due(db, config)
    await ask_due(db, config)  # asked once only
    rows = await followup_rows(db, case_id)
    assert [(r.event, r.channel, r.audience) for r in rows] == [
        ("followup", "email", "complainant"),
        ("followup", "web", "complainant"),
    ]

    for lang, words in (("th", "ได้รับการแก้ไขแล้วหรือไม่"), ("en", "Is the problem you reported fixed?")):
        inbox = (await api.get(f"/api/v1/track/{code}/messages", params={"lang": lang})).json()["messages"]
        assert words in inbox[-1]["text"] and code in inbox[-1]["text"] and f"/track/{code}" in inbox[-1]["text"]

    tracked = (await api.get(f"/api/v1/track/{code}")).json()
    assert tracked["followup"]["answer"] is None
    assert tracked["followup"]["answer_url"] == f"/api/v1/track/{code}/followup"
    bad = await api.post(tracked["followup"]["answer_url"], json={"answer": "maybe"})
    assert bad.status_code == 422

    answered = await api.post(tracked["followup"]["answer_url"], json={"answer": "not_fixed", "comment": "ยังดับอยู่"})
    assert answered.status_code == 200, answered.text
    assert answered.json()["outcome"] == "reopened" and answered.json()["status"]["code"] == "screening"
    again = await api.post(f"/api/v1/track/{code}/followup", json={"answer": "fixed"})
    assert again.status_code == 409

    case = (await api.get(f"/api/v1/cases/{case_id}", headers=SUPERVISOR)).json()
    events = [e["event"] for e in case["timeline"]]
    assert events[-3:] == ["followup_asked", "followup_answered", "reopen"]
    assert case["timeline"][-1]["actor"]["id"] == "system:followup"
    public = (await api.get(f"/api/v1/track/{code}")).json()
    assert [e["event"] for e in public["timeline"]][-3:] == ["followup_asked", "followup_answered", "reopen"]
    assert public["followup"]["outcome"] == "reopened"


async def test_fixed_is_recorded_and_a_case_closed_after_review_goes_to_a_supervisor(
    api: httpx.AsyncClient, settings: Settings, db: Database
) -> None:
    fixed = await closed_case(api, STAGE1)
    reviewed = await closed_case(api, STAGE1 + STAGE2)
    before = (await api.get("/api/v1/reports/followups", headers=AUDITOR)).json()["totals"]
    for receipt in (fixed, reviewed):
        await closed_days_ago(db, receipt["case_id"], 29)
    await ask_due(db, followup_settings(settings))

    ok = await api.post(f"/api/v1/track/{fixed['tracking_code']}/followup", json={"answer": "fixed"})
    assert ok.status_code == 200 and ok.json()["outcome"] == "recorded" and ok.json()["status"]["code"] == "closed"
    kept = await api.post(f"/api/v1/track/{reviewed['tracking_code']}/followup", json={"answer": "not_fixed"})
    assert kept.status_code == 200, kept.text
    assert kept.json()["outcome"] == "for_supervisor" and kept.json()["status"]["code"] == "closed_stage2"

    report = (await api.get("/api/v1/reports/followups", headers=SUPERVISOR)).json()
    after = report["totals"]
    assert after["answered"] - before["answered"] == 2
    assert after["fixed"] - before["fixed"] == 1 and after["not_fixed"] - before["not_fixed"] == 1
    assert after["for_supervisor"] - before["for_supervisor"] == 1
    assert reviewed["case_id"] in [w["case_id"] for w in report["waiting_for_supervisor"]]
    # Newest first, and the session's time-skipped workflow tests leave notices dated months ahead: read on
    # until this case's notice (the inbox is paged).
    inbox: list[dict[str, Any]] = []
    for page in range(1, 100):
        items = (
            await api.get("/api/v1/inbox", headers=SUPERVISOR, params={"lang": "en", "page": page, "page_size": 200})
        ).json()["items"]
        inbox += items
        if not items or any(m["case_id"] == reviewed["case_id"] and m["event"] == "followup_not_fixed" for m in items):
            break
    notice = [m for m in inbox if m["case_id"] == reviewed["case_id"] and m["event"] == "followup_not_fixed"]
    assert len(notice) == 1 and "not fixed" in notice[0]["text"]
    assert (await api.get("/api/v1/reports/followups", headers=DOPA)).status_code == 403


async def test_one_run_asks_every_closure_due_in_batches_but_none_older_than_the_window(
    api: httpx.AsyncClient, settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run goes on batch after batch until the closures due are all asked (one batch an hour fell behind
    once more closures were due an hour than a batch holds), and reads only ``followup_window_days`` of
    closures before the due day: a closure older than that (the job was away, or the database is older than
    the follow-ups) is not asked months late."""
    config = followup_settings(settings).model_copy(update={"followup_window_days": 14})
    due = [await closed_case(api, STAGE1) for _ in range(3)]
    late = await closed_case(api, STAGE1)
    for receipt in due:
        await closed_days_ago(db, receipt["case_id"], 29)
    await closed_days_ago(db, late["case_id"], 28 + 14 + 1)
    monkeypatch.setattr(followup.job, "_BATCH", 2)

    assert await ask_due(db, config) >= 3
    for receipt in due:
        assert [r.channel for r in await followup_rows(db, receipt["case_id"])] == ["email", "web"]
    assert await followup_rows(db, late["case_id"]) == []
    assert await ask_due(db, config) == 0  # and once only


async def test_the_run_reads_the_window_of_closures_not_every_settled_case(db: Database) -> None:
    """The query reads a range of ``ix_cases_closed_at`` (migration 0019), not the settled cases of every year."""
    cutoff = datetime.now(UTC) - timedelta(days=28)
    for after in (None, (cutoff - timedelta(days=3), "RT-2026-000001")):
        plan = await query_plan(db, due_query(oldest=cutoff - timedelta(days=14), cutoff=cutoff, after=after))
        assert "ix_cases_closed_at" in plan, plan
