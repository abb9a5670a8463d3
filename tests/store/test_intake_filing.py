"""How a complaint is written: on PostgreSQL one statement outside a transaction (the key, the case and its
outbox row, all or none), on SQLite one transaction; the same rows either way. The session's real database;
no worker, no Temporal (the answer means "durable in the database")."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, select

import api.service
from activities.sla import SlaActivities
from api.schemas import ComplaintIn
from api.service import IntakeDesk, file_complaint
from config.settings import Pooler, Settings
from intake.idempotency import Answer, Idempotency
from sla.policy import load_policy
from store import models
from store.db import Database, open_database
from tests.api.conftest import complaint
from workflows.process import Actor, Role

CITIZEN = Actor("citizen:web", Role.CITIZEN)
# Set by the database itself or drawn per complaint: they differ between any two complaints.
_PER_COMPLAINT = {"case_id", "tracking_code", "workflow_id", "received_at", "updated_at", "due_at", "expected_by"}


@pytest.fixture
async def desk(settings: Settings, db: Database) -> IntakeDesk:
    here = settings.model_copy(update={"task_queue": f"tq-{uuid.uuid4()}"})
    return IntakeDesk(db=db, settings=here, sla=SlaActivities(here.calendar(), load_policy()))


@pytest.fixture
def round_trips(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What this process sends to the database: each statement, and (PostgreSQL) each BEGIN and COMMIT that
    asyncpg sends on a connection of its own (SQLAlchemy's "begin" event fires in autocommit mode too)."""
    sent: list[str] = []

    def on_statement(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        sent.append(statement.split()[0].upper())

    execute = asyncpg.connection.Connection.execute

    async def counted(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(query.split()[0].rstrip(";").upper())
        return await execute(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.connection.Connection, "execute", counted)
    event.listen(db.engine.sync_engine, "before_cursor_execute", on_statement)
    try:
        yield sent
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", on_statement)


async def _file(desk: IntakeDesk, key: str | None = None, **overrides: object) -> Answer:
    idem = Idempotency(scope="test", key=key) if key else None
    return await file_complaint(
        desk, complaint=ComplaintIn.model_validate(complaint(**overrides)), actor=CITIZEN, idempotency=idem
    )


async def _rows(db: Database, case_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    async with db.session() as s:
        case = (await s.execute(select(models.Case.__table__).where(models.Case.case_id == case_id))).one()
        outbox = (
            await s.execute(select(models.IntakeOutbox.__table__).where(models.IntakeOutbox.case_id == case_id))
        ).one()
    return dict(case._mapping), dict(outbox._mapping)


async def test_an_intake_on_postgresql_is_one_round_trip(
    desk: IntakeDesk, db: Database, round_trips: list[str]
) -> None:
    """The key's claim, the case and its outbox row in one statement, with no BEGIN and no COMMIT: each round
    trip waits its turn for the CPU under load, and crosses the network when the database is elsewhere. Behind
    a transaction-mode pooler the statement is a transaction of its own (tests/store/test_pooler.py)."""
    if db.is_sqlite:
        pytest.skip("SQLite has no data-modifying WITH; it files in one transaction in this process")
    one = ["WITH"] if db.pooler is Pooler.NONE else ["WITH", "BEGIN", "COMMIT"]
    await _file(desk, key=str(uuid.uuid4()))  # a pooled connection's first checkout pings it
    round_trips.clear()
    answer = await _file(desk, key=str(uuid.uuid4()))
    assert round_trips == one, round_trips
    case, outbox = await _rows(db, answer.body["case_id"])
    assert case["status"] == "received" and outbox["status"] == "pending"
    round_trips.clear()
    await _file(desk)  # without a key: one statement too
    assert round_trips == one, round_trips


async def test_a_key_already_taken_files_nothing_and_answers_the_first(desk: IntakeDesk, db: Database) -> None:
    key = str(uuid.uuid4())
    first = await _file(desk, key=key)
    again = await _file(desk, key=key)
    assert again == first
    async with db.session() as s:
        filed = await s.execute(select(models.IntakeOutbox.case_id).where(models.IntakeOutbox.idempotency_key == key))
        assert filed.scalars().all() == [first.body["case_id"]]


async def test_a_case_number_drawn_twice_writes_nothing_and_is_drawn_again(
    desk: IntakeDesk, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A case number already taken fails the whole write (not the key alone, not the case without its
    outbox row); the next draw files the complaint, and the key's answer is the case that was filed."""
    taken = (await _file(desk)).body["case_id"]
    draws = iter([taken, "RT-20991231-ZZZZZZ"])
    monkeypatch.setattr(api.service, "new_case_id", lambda _now: next(draws))
    key = str(uuid.uuid4())
    answer = await _file(desk, key=key, description="ถนนทรุดเป็นหลุมลึกหน้าโรงเรียน รถจักรยานยนต์ล้มทุกวัน")
    assert answer.body["case_id"] == "RT-20991231-ZZZZZZ"
    async with db.session() as s:
        keys = (await s.execute(select(models.IdempotencyKey).where(models.IdempotencyKey.key == key))).scalars().all()
        assert [k.case_id for k in keys] == ["RT-20991231-ZZZZZZ"]
        assert keys[0].body == answer.body
        outbox = await s.execute(select(models.IntakeOutbox.case_id).where(models.IntakeOutbox.idempotency_key == key))
        assert outbox.scalars().all() == ["RT-20991231-ZZZZZZ"]
        first = await s.get(models.Case, taken, populate_existing=True)
        assert first is not None and "ถนนทรุด" not in first.description


@pytest.fixture
async def transaction_desk(settings: Settings, desk: IntakeDesk) -> AsyncIterator[IntakeDesk]:
    """The same desk, made to file in one transaction, as on SQLite (and as a key already taken is read)."""
    db = open_database(settings)
    db.is_sqlite = True
    yield IntakeDesk(db=db, settings=desk.settings, sla=desk.sla)
    await db.dispose()


async def test_both_ways_of_filing_write_the_same_rows(
    desk: IntakeDesk, transaction_desk: IntakeDesk, db: Database
) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite files in one transaction only")
    body = {"description": f"น้ำประปาไม่ไหลสามวันแล้ว {uuid.uuid4()}", "category": "utilities.water"}
    at_once = (await _file(desk, key=str(uuid.uuid4()), **body)).body["case_id"]
    in_transaction = (await _file(transaction_desk, key=str(uuid.uuid4()), **body)).body["case_id"]
    (case_a, outbox_a), (case_b, outbox_b) = await _rows(db, at_once), await _rows(db, in_transaction)
    same = {k: v for k, v in case_a.items() if k not in _PER_COMPLAINT}
    assert same == {k: v for k, v in case_b.items() if k not in _PER_COMPLAINT}
    assert same["description"] == body["description"] and same["category"] == "utilities.water"
    skip = {"id", "case_id", "case_input", "idempotency_key", "created_at"}
    assert {k: v for k, v in outbox_a.items() if k not in skip} == {k: v for k, v in outbox_b.items() if k not in skip}
    assert set(outbox_a["case_input"]) == set(outbox_b["case_input"])


async def test_the_filing_bench_times_both_ways_on_postgresql(db: Database, tmp_path: Path) -> None:
    """``bench.filing_bench`` files through both ways on a scratch database and writes what it measured."""
    if db.is_sqlite:
        pytest.skip("the bench measures PostgreSQL's one-statement filing")
    from bench import filing_bench

    out = tmp_path / "filing.json"
    await filing_bench.main(["--concurrency", "1", "2", "--blocks", "2", "--per-block", "5", "--out", str(out)])
    written = json.loads(out.read_text())
    assert set(written["runs"]) == {"1", "2"}
    for run in written["runs"].values():
        for way in ("one_statement", "transaction"):
            assert run[way]["filings"] == 10 and run[way]["latency"]["n"] == 10
            assert run[way]["latency"]["p50_ms"] > 0 and run[way]["cpu_ms_per_filing"] > 0
