"""Idempotency-Key on intake and actions, and actions that outlast their wait: real app, real dev server,
the session's real database (SQLite file or PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import Engine, event, func, select
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from config.settings import Settings
from store import models
from store.db import Database
from tests.api.conftest import OFFICER, complaint, running_api, until_filed
from worker import build_worker


async def _cases_with(db: Database, description: str) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).where(models.Case.description == description))).scalar_one())


async def test_ten_identical_intakes_file_one_case_and_answer_alike(api: httpx.AsyncClient, db: Database) -> None:
    description = f"ท่อประปาแตกน้ำท่วมถนนหน้าบ้าน {uuid.uuid4()}"
    body = complaint(description=description)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    answers = await asyncio.gather(*(api.post("/api/v1/complaints", json=body, headers=key) for _ in range(10)))
    assert {r.status_code for r in answers} == {201}, [r.text for r in answers]
    assert len({r.text for r in answers}) == 1  # the same body, byte for byte
    assert len({r.headers["Location"] for r in answers}) == 1
    assert await _cases_with(db, description) == 1
    tracked = await until_filed(api, answers[0].json()["tracking_code"])
    assert [e["event"] for e in tracked["timeline"]] == ["filed"]

    # The same key again later: the same answer, still one case.
    again = await api.post("/api/v1/complaints", json=body, headers=key)
    assert again.status_code == 201 and again.text == answers[0].text
    # The same key with another complaint: refused, nothing filed.
    other = await api.post("/api/v1/complaints", json=complaint(description=description + " อีกเรื่อง"), headers=key)
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert other.json()["error"]["message_th"]
    assert await _cases_with(db, description + " อีกเรื่อง") == 0
    # Without a key, the same body twice is two complaints (as before).
    plain = [await api.post("/api/v1/complaints", json=body) for _ in range(2)]
    assert {r.status_code for r in plain} == {201} and await _cases_with(db, description) == 3


async def test_a_malformed_key_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/complaints", json=complaint(), headers={"Idempotency-Key": "no spaces"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "bad_idempotency_key"


async def test_ten_identical_actions_act_once_and_answer_alike(api: httpx.AsyncClient, db: Database) -> None:
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    await until_filed(api, receipt["tracking_code"])
    case_id = receipt["case_id"]
    headers = OFFICER | {"Idempotency-Key": str(uuid.uuid4())}
    url = f"/api/v1/cases/{case_id}/actions/screen"
    answers = await asyncio.gather(*(api.post(url, json={}, headers=headers) for _ in range(10)))
    assert {r.status_code for r in answers} == {200}, [r.text for r in answers]
    assert len({r.text for r in answers}) == 1
    async with db.session() as s:
        events = (
            await s.execute(
                select(models.CaseEvent.event).where(models.CaseEvent.case_id == case_id).order_by(models.CaseEvent.seq)
            )
        ).all()
    assert [e for (e,) in events] == ["filed", "screen"]
    # A retry after the case moved on still gets the first answer, not a refusal.
    accepted = await api.post(
        f"/api/v1/cases/{case_id}/actions/accept",
        json={"category": "lighting.streetlight", "agencies": ["BMA"]},
        headers=OFFICER,
    )
    assert accepted.status_code == 200, accepted.text
    late = await api.post(url, json={}, headers=headers)
    assert late.status_code == 200 and late.text == answers[0].text
    # The key with another body: 422; another officer's same key is another key.
    reused = await api.post(url, json={"note": "x"}, headers=headers)
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"


async def test_an_action_costs_the_api_two_transactions(api: httpx.AsyncClient, db: Database) -> None:
    """The early check with the key's claim, then the answer's view with the key's answer: two transactions
    of the API's (each a BEGIN and a COMMIT more on PostgreSQL, every round trip waiting its turn under load),
    and the key's answer kept in one statement. The worker's writes (the fixture's engine, or its autocommit
    face, which shares its pool) are not counted."""
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    await until_filed(api, receipt["tracking_code"])
    worker_pool = db.engine.sync_engine.pool
    begun: list[object] = []
    statements: list[str] = []

    def apis(conn: object) -> bool:
        return getattr(getattr(conn, "engine", None), "pool", None) is not worker_pool

    def on_begin(conn: object) -> None:
        if apis(conn):
            begun.append(conn)
            statements.append("BEGIN")

    def on_statement(conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if apis(conn):
            words = statement.split()  # "SELECT cases.case_id,", "INSERT idempotency_keys", ...
            statements.append(f"{words[0]} {words[2 if words[0] == 'INSERT' else 1]}")

    event.listen(Engine, "begin", on_begin)
    event.listen(Engine, "before_cursor_execute", on_statement)
    try:
        key = {"Idempotency-Key": str(uuid.uuid4())}
        screened = await api.post(f"/api/v1/cases/{receipt['case_id']}/actions/screen", json={}, headers=OFFICER | key)
    finally:
        event.remove(Engine, "begin", on_begin)
        event.remove(Engine, "before_cursor_execute", on_statement)
    assert screened.status_code == 200, screened.text
    assert len(begun) == 2, " | ".join(statements)
    keys = [s for s in statements if "idempotency_keys" in s]
    assert keys == ["INSERT idempotency_keys", "UPDATE idempotency_keys"], statements
    assert sum(s.startswith("SELECT") and "attachments" in s for s in statements) <= 1, statements
    # An open case that was never closed has no follow-up question: its view does not ask for one.
    assert not any("followups" in s for s in statements), statements


async def test_a_refused_action_is_refused_alike_on_every_retry(api: httpx.AsyncClient) -> None:
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    await until_filed(api, receipt["tracking_code"])
    headers = OFFICER | {"Idempotency-Key": str(uuid.uuid4())}
    url = f"/api/v1/cases/{receipt['case_id']}/actions/close"
    answers = [await api.post(url, json={}, headers=headers) for _ in range(3)]
    assert {r.status_code for r in answers} == {409} and len({r.text for r in answers}) == 1


async def test_polls_of_a_pending_action_hold_one_connection_each(
    dev_env: WorkflowEnvironment, settings: Settings, db: Database
) -> None:
    """A poll of a 202's Location reads the case, then the key on a session of its own, then asks Temporal.
    It used to keep the case's read transaction open meanwhile: two connections a poll, and polls as many as
    the pool (or a pooler's server connections) each holding one and waiting for another until the database
    timeout (503). On a pool of one connection, polls at once are each answered."""
    if db.is_sqlite:
        pytest.skip("the API's SQLite engine has no pool to size")
    queue = f"tq-{uuid.uuid4()}"
    quick = settings.model_copy(update={"task_queue": queue, "action_wait_seconds": 0.5})
    async with running_api(dev_env, quick, db, queue) as api:
        receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
        await until_filed(api, receipt["tracking_code"])
    one = quick.model_copy(update={"database_pool_size": 1, "database_pool_overflow": 0, "database_timeout_seconds": 3})
    app = create_app(one, temporal=dev_env.client)  # no worker on this queue: the action stays pending
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://r") as api:
        headers = OFFICER | {"Idempotency-Key": str(uuid.uuid4())}
        pending = await api.post(f"/api/v1/cases/{receipt['case_id']}/actions/screen", json={}, headers=headers)
        assert pending.status_code == 202, pending.text
        polls = await asyncio.gather(*(api.get(pending.headers["Location"], headers=OFFICER) for _ in range(3)))
    assert [p.status_code for p in polls] == [200] * 3, [p.text[:200] for p in polls]
    assert {p.json()["state"] for p in polls} == {"pending"}


async def test_an_action_while_no_worker_runs_is_202_then_applied(
    dev_env: WorkflowEnvironment, settings: Settings, db: Database
) -> None:
    queue = f"tq-{uuid.uuid4()}"
    quick = settings.model_copy(update={"task_queue": queue, "action_wait_seconds": 1.0})
    async with running_api(dev_env, quick, db, queue) as api:
        receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
        await until_filed(api, receipt["tracking_code"])
    app = create_app(quick, temporal=dev_env.client)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://r") as api:
        headers = OFFICER | {"Idempotency-Key": str(uuid.uuid4())}
        url = f"/api/v1/cases/{receipt['case_id']}/actions/screen"
        pending = await api.post(url, json={}, headers=headers)
        assert pending.status_code == 202, pending.text
        assert pending.json()["state"] == "pending" and pending.json()["message_th"]
        where = pending.headers["Location"]
        assert where.startswith(f"/api/v1/cases/{receipt['case_id']}/action-requests/")
        assert (await api.get(where, headers=OFFICER)).json()["state"] == "pending"
        # Retried with the same key while still pending: still pending, nothing done twice.
        assert (await api.post(url, json={}, headers=headers)).status_code == 202
        async with build_worker(dev_env.client, quick, db, task_queue=queue):
            for _ in range(300):
                result = (await api.get(where, headers=OFFICER)).json()
                if result["state"] != "pending":
                    break
                await asyncio.sleep(0.1)
        assert result["state"] == "applied" and result["status"]["code"] == "screening", result
        # The caller's retry now gets the applied answer; the step is on the timeline once.
        done = await api.post(url, json={}, headers=headers)
        assert done.status_code == 200 and done.json()["status"]["code"] == "screening"
        assert [e["event"] for e in done.json()["timeline"]] == ["filed", "screen"]
    # Polling showed only where the action stood; the answer kept for the retry showed the case, once, and is
    # access-logged as the action's answer, not as the case opened.
    async with db.session() as s:
        logged = await s.scalars(
            select(models.AccessLog.what).where(
                models.AccessLog.case_id == receipt["case_id"], models.AccessLog.actor_id == "officer-7"
            )
        )
        assert list(logged) == ["action:screen"]


async def test_ten_identical_citizen_replies_reply_once(api: httpx.AsyncClient, db: Database) -> None:
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    code, case_id = receipt["tracking_code"], receipt["case_id"]
    await until_filed(api, code)
    for action, body in (("screen", {}), ("need_info", {"question": "เกิดเหตุที่ซอยอะไร"})):
        done = await api.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body, headers=OFFICER)
        assert done.status_code == 200, done.text
    key = {"Idempotency-Key": str(uuid.uuid4())}
    url = f"/api/v1/track/{code}/actions/reply"
    answers = await asyncio.gather(*(api.post(url, json={"answer": "ซอยสุขุมวิท 101"}, headers=key) for _ in range(10)))
    assert {r.status_code for r in answers} == {200}, [r.text for r in answers]
    assert len({r.text for r in answers}) == 1
    async with db.session() as s:
        events = (
            await s.execute(
                select(models.CaseEvent.event).where(models.CaseEvent.case_id == case_id).order_by(models.CaseEvent.seq)
            )
        ).all()
    assert [e for (e,) in events].count("reply") == 1
    # The tracking code is the citizen's scope: the same key on another case is another key.
    other = (await api.post("/api/v1/complaints", json=complaint())).json()
    await until_filed(api, other["tracking_code"])
    refused = await api.post(f"/api/v1/track/{other['tracking_code']}/actions/reply", json={"answer": "x"}, headers=key)
    assert refused.status_code == 409  # not awaiting information: refused on its own merits, not replayed
