"""The intake relay: complaints committed in the database are started in Temporal exactly once, by any number
of relays at once (PostgreSQL: SKIP LOCKED; SQLite: one writer), through a relay that died mid-start, and
when the workflow was already started. Real dev server, the session's real database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.sla import SlaActivities
from api.main import create_app
from api.schemas import ComplaintIn
from api.service import IntakeDesk, file_complaint
from config.settings import Settings
from intake.relay import STARTED, IntakeRelay, due_rows, lag_query, load_input, start_relay, stop_relay
from sla.policy import load_policy
from store import models
from store.db import Database, open_database
from tests.api.conftest import complaint
from tests.connection_guard import Guard
from tests.query_plans import query_plan
from tests.workflows.paths import eventually
from workflows.complaint import workflow_id_for
from workflows.process import Actor, Role

CITIZEN = Actor(id="citizen:web", role=Role.CITIZEN)


async def _file(settings: Settings, db: Database, n: int) -> list[str]:
    desk = IntakeDesk(db=db, settings=settings, sla=SlaActivities(settings.calendar(), load_policy()))
    body = ComplaintIn.model_validate(complaint())
    return [(await file_complaint(desk, complaint=body, actor=CITIZEN)).body["case_id"] for _ in range(n)]


async def _runs(client: Client, case_id: str) -> int:
    """How many runs Temporal has under the case's workflow id. Visibility lags behind the start (more so
    under load), so a run the server has already accepted is waited for, within a bound, before counting."""
    query = f"WorkflowId = '{workflow_id_for(case_id)}'"
    for _ in range(100):
        runs = [w async for w in client.list_workflows(query)]
        if runs:
            return len(runs)
        await asyncio.sleep(0.1)
    return 0


async def _statuses(db: Database, case_ids: list[str]) -> set[str]:
    async with db.session() as s:
        q = select(models.IntakeOutbox.status).where(models.IntakeOutbox.case_id.in_(case_ids))
        return {status for (status,) in (await s.execute(q)).all()}


@pytest.fixture
def relay_settings(settings: Settings) -> Settings:
    # A queue no worker polls: the relay's job ends at the start; nothing here needs the cases to run.
    return settings.model_copy(
        update={"task_queue": f"tq-{uuid.uuid4()}", "intake_relay_batch_size": 4, "search_attributes": False}
    )


async def test_two_relays_at_once_start_each_case_once(dev_env: WorkflowEnvironment, relay_settings: Settings) -> None:
    first, second = open_database(relay_settings), open_database(relay_settings)  # as if in two processes
    try:
        case_ids = await _file(relay_settings, first, 24)
        relays = [
            IntakeRelay(first, dev_env.client, relay_settings),
            IntakeRelay(second, dev_env.client, relay_settings),
        ]
        await asyncio.gather(*(r.drain() for r in relays))
        # Anything one relay claimed while the other drained is started by then; rounds left over, none.
        assert sum(r.started for r in relays) == len(case_ids)
        assert sum(r.found_started for r in relays) == 0
        assert await _statuses(first, case_ids) == {STARTED}
        for case_id in case_ids:
            desc = await dev_env.client.get_workflow_handle(workflow_id_for(case_id)).describe()
            assert desc.task_queue == relay_settings.task_queue
    finally:
        await first.dispose()
        await second.dispose()


async def test_a_relay_that_died_mid_start_is_taken_over_without_a_second_start(
    dev_env: WorkflowEnvironment, relay_settings: Settings, db: Database
) -> None:
    case_ids = await _file(relay_settings, db, 3)
    # Rows other tests left pending (their Temporal was away) are set aside: this relay claims ours alone.
    async with db.session() as s:
        await s.execute(
            update(models.IntakeOutbox)
            .where(models.IntakeOutbox.case_id.not_in(case_ids), models.IntakeOutbox.status != STARTED)
            .values(status=STARTED)
        )
    dead = IntakeRelay(db, dev_env.client, relay_settings)
    jobs, token = await dead._claim()
    assert {j.case_id for j in jobs} >= set(case_ids)
    # It started one of them and died before recording anything.
    mine = next(j for j in jobs if j.case_id == case_ids[0])
    await dead.start(mine.inp, task_queue=mine.task_queue)

    later = datetime.now(UTC) + timedelta(seconds=relay_settings.intake_relay_lease_seconds + 1)
    heir = IntakeRelay(db, dev_env.client, relay_settings, clock=lambda: later)
    await heir.drain()
    assert heir.found_started >= 1 and await _statuses(db, case_ids) == {STARTED}
    # The dead relay's late record changes nothing (its claim is gone).
    await dead._record(token, [], {j.id: "late" for j in jobs})
    assert await _statuses(db, case_ids) == {STARTED}
    for case_id in case_ids:
        assert await _runs(dev_env.client, case_id) == 1


async def test_the_stored_input_is_the_typed_case_input(relay_settings: Settings, db: Database) -> None:
    (case_id,) = await _file(relay_settings, db, 1)
    async with db.session() as s:
        row = (await s.execute(select(models.IntakeOutbox).where(models.IntakeOutbox.case_id == case_id))).scalar_one()
        case = await s.get(models.Case, case_id)
    inp = load_input(row.case_input)
    assert inp.case_id == case_id and inp.received_at == case.received_at
    assert inp.complaint.complainant.phone == case.complainant_phone and inp.filed_by == CITIZEN
    assert case.status == "received" and case.last_seq == 0 and case.expected_by is not None


async def test_the_lag_reads_only_the_rows_not_started(db: Database) -> None:
    """Started rows stay a day beside the ones still to start: the lag (``/metrics``, polled by the benches)
    counts the latter through the partial index ``ix_intake_outbox_unstarted``, not by reading the table; on
    PostgreSQL in a prepared statement's generic plan too (the predicate a constant, not a parameter)."""
    lag = await query_plan(db, lag_query())
    assert "ix_intake_outbox_unstarted" in lag, lag
    claim = await query_plan(db, due_rows(now=datetime.now(UTC), limit=16, skip_locked=not db.is_sqlite))
    if db.is_sqlite:  # the claim too reads an index (the partial one, or the status one), never the whole table
        assert "USING INDEX" in claim and "SCAN intake_outbox\n" not in claim + "\n", claim


async def test_temporal_away_leaves_rows_pending_for_a_later_round(relay_settings: Settings, db: Database) -> None:
    from cli.devserver import free_port
    from config.temporal import connect

    (case_id,) = await _file(relay_settings, db, 1)
    away = await connect(relay_settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"}), lazy=True)
    relay = IntakeRelay(db, away, relay_settings)
    assert await relay.run_once() == -1  # nothing started: the loop backs off
    async with db.session() as s:
        row = (await s.execute(select(models.IntakeOutbox).where(models.IntakeOutbox.case_id == case_id))).scalar_one()
    assert row.status == "pending" and row.last_error and row.next_attempt_at is not None
    with pytest.raises((RPCError, RuntimeError)):
        await away.get_workflow_handle(workflow_id_for(case_id)).describe()


async def test_32_concurrent_intakes_are_32_cases_each_started_once_and_replays_answer_alike(
    dev_env: WorkflowEnvironment, relay_settings: Settings, db: Database
) -> None:
    """Two API processes' worth of relays (the app's own, kicked by each commit, and a second one on its own
    connection pool) and a bounded number of starts in flight: every complaint is one case, started once, and
    every retry with its key gets the first answer byte for byte."""
    settings = relay_settings.model_copy(update={"intake_relay_concurrency": 3, "intake_relay_loops": 2})
    # Rows other tests left pending (their Temporal was away) are set aside: the relays here start ours alone.
    async with db.session() as s:
        await s.execute(update(models.IntakeOutbox).where(models.IntakeOutbox.status != STARTED).values(status=STARTED))
    guard = Guard()
    app = create_app(settings, temporal=guard.watched_client(dev_env.client))
    transport = httpx.ASGITransport(app=guard.guarded(app), raise_app_exceptions=False, client=("127.0.0.1", 40000))
    other_db = open_database(settings)  # as if in a second API process
    other = IntakeRelay(other_db, dev_env.client, settings)
    marker = uuid.uuid4().hex
    bodies = [complaint(description=f"ไฟถนนดับทั้งซอย มืดมากตอนกลางคืน {marker} {k}") for k in range(32)]
    keys = [{"Idempotency-Key": f"c32-{marker}-{k}"} for k in range(32)]
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://r") as c:
            guard.watch_app(app)

            async def post_all() -> list[httpx.Response]:
                return await asyncio.gather(
                    *(c.post("/api/v1/complaints", json=b, headers=k) for b, k in zip(bodies, keys, strict=True))
                )

            # The 32 complaints and their 32 retries at once, while the second relay drains what is committed.
            first, second, _ = await asyncio.gather(post_all(), post_all(), other.drain())
            assert {r.status_code for r in [*first, *second]} == {201}, [r.text for r in [*first, *second]]
            assert [r.content for r in first] == [r.content for r in second]  # the same answer, byte for byte
            case_ids = [r.json()["case_id"] for r in first]
            assert len(set(case_ids)) == 32
            for _ in range(200):  # the app's relay was kicked by each commit; the second one helps
                await other.drain()
                if await _statuses(db, case_ids) == {STARTED}:
                    break
                await asyncio.sleep(0.05)
            mine = app.state.relay
            assert await _statuses(db, case_ids) == {STARTED}
            assert mine.started + other.started == 32 and mine.found_started + other.found_started == 0
    finally:
        await other_db.dispose()
    async with db.session() as s:
        rows = (
            await s.execute(select(models.IntakeOutbox.case_id).where(models.IntakeOutbox.case_id.in_(case_ids)))
        ).all()
        described = (
            await s.execute(select(models.Case.case_id).where(models.Case.description.like(f"%{marker}%")))
        ).all()
    assert len(rows) == 32 and len(described) == 32
    guard.check()
    for case_id in case_ids:
        assert await _runs(dev_env.client, case_id) == 1


async def _set_aside_others(db: Database) -> None:
    """Rows other tests left pending (their Temporal was away) are marked started: these relays see ours alone."""
    async with db.session() as s:
        await s.execute(update(models.IntakeOutbox).where(models.IntakeOutbox.status != STARTED).values(status=STARTED))


def _counting_claims(relay: IntakeRelay) -> list[int]:
    """Records how many rows each of the relay's claims returned."""
    claims: list[int] = []
    claim = relay._claim

    async def counted() -> Any:
        jobs, token = await claim()
        claims.append(len(jobs))
        return jobs, token

    relay._claim = counted  # type: ignore[method-assign]
    return claims


async def test_an_idle_relay_polls_with_one_of_its_loops(
    dev_env: WorkflowEnvironment, relay_settings: Settings, db: Database
) -> None:
    await _set_aside_others(db)
    settings = relay_settings.model_copy(update={"intake_relay_poll_seconds": 0.25, "intake_relay_loops": 4})
    relay, task = start_relay(db, dev_env.client, settings)
    claims = _counting_claims(relay)
    try:
        await asyncio.sleep(2.0)
    finally:
        await stop_relay(relay, task)
    # Each loop's first round, then one claim a poll (2 s / 0.25 s), where four polling loops made four.
    assert 4 <= len(claims) <= 4 + 8 + 2, claims


async def test_an_idle_relay_does_not_keep_its_timed_out_waits(
    dev_env: WorkflowEnvironment, relay_settings: Settings, db: Database
) -> None:
    await _set_aside_others(db)
    # Nothing to start and no kick: the polling loop times out on every poll, the others wait to be woken.
    settings = relay_settings.model_copy(update={"intake_relay_poll_seconds": 0.02, "intake_relay_loops": 4})
    relay, task = start_relay(db, dev_env.client, settings)
    claims = _counting_claims(relay)
    try:
        await eventually(lambda: len(claims) >= 4 + 40, timeout=10)
        # One wait per loop at most: a poll that timed out leaves nothing behind (it kept one future a poll, a
        # worker's relay grew by one a second, and a kick woke a long dead wait before a live one).
        assert len(relay._waiting) <= 4, len(relay._waiting)
        # And a kick still wakes a waiting loop.
        before = len(claims)
        relay.kick()
        await eventually(lambda: len(claims) > before, timeout=5)
    finally:
        await stop_relay(relay, task)


async def test_a_kick_wakes_one_loop_and_a_full_batch_shares_the_rest(
    dev_env: WorkflowEnvironment, relay_settings: Settings, db: Database
) -> None:
    await _set_aside_others(db)
    # No poll within the test: only kicks and full batches make the loops look.
    settings = relay_settings.model_copy(
        update={"intake_relay_poll_seconds": 600.0, "intake_relay_loops": 4, "intake_relay_batch_size": 4}
    )
    relay, task = start_relay(db, dev_env.client, settings)
    claims = _counting_claims(relay)
    try:
        # Every loop's first round, then all four wait.
        await eventually(lambda: len(claims) >= 4 and len(relay._waiting) == 4, timeout=5)
        assert claims == [0, 0, 0, 0]

        async def all_started(case_ids: list[str]) -> bool:
            return await _statuses(db, case_ids) == {STARTED}

        (one,) = await _file(settings, db, 1)
        relay.kick()
        await eventually(lambda: all_started([one]), timeout=10)
        assert claims[4:] in ([1], [1, 0])  # one loop woke, started it, found nothing more

        many = await _file(settings, db, 12)
        relay.kick()  # once, for twelve: full batches wake the other loops
        await eventually(lambda: all_started(many), timeout=20)
        assert relay.started == 13 and relay.found_started == 0
    finally:
        await stop_relay(relay, task)
