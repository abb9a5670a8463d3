"""PostgreSQL behind a real PgBouncer in transaction mode (``RONGTUK_DATABASE_POOLER``, docs/operations.md): the
pooler hands each transaction whichever server connection is free, so a statement prepared in one transaction
is not there in the next, and two clients meet on one server connection. Without the setting, the writes that
race (intake keys, claims) fail with prepared-statement errors; with it, intake, claims, the worker's
write in one statement and the migrations all work through it.

Runs when the suite runs on PostgreSQL (CI's second pass), with ``pgbouncer`` installed (``.ci/run`` installs
it; anywhere else without it, the module is skipped)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
import structlog
from sqlalchemy import func, select
from structlog.testing import capture_logs

from activities import projection
from activities.projection import ReadModelActivities
from activities.sla import SlaActivities
from api.schemas import ComplaintIn
from api.service import IntakeDesk, file_complaint
from config.settings import Pooler, Settings
from intake.idempotency import Idempotency
from sla.policy import load_policy
from store import models
from store.db import Database, open_database
from store.migrate import upgrade
from tests.api.conftest import complaint
from tests.pgbouncer import pgbouncer
from tests.store.test_idempotency_claims import racing_claims
from tests.store.test_projection import counts, outbox, record
from workflows.process import Actor, Role, State

ROUNDS = 10


@pytest.fixture(scope="module")
def bouncer_url(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PgBouncer in transaction mode in front of the suite's database; its URL."""
    with pgbouncer(database_url, tmp_path_factory.mktemp("pgbouncer")) as url:
        yield url


@pytest.fixture
async def pooled(settings: Settings, bouncer_url: str) -> AsyncIterator[tuple[Settings, Database]]:
    here = settings.model_copy(update={"database_url": bouncer_url, "database_pooler": Pooler.TRANSACTION})
    db = open_database(here, timeout=30)
    yield here, db
    await db.dispose()


async def _race_claims(db: Database) -> list[BaseException]:
    """``ROUNDS`` rounds of ``RACERS`` claims of one key at once; the errors, with the one-owner rule checked
    whenever a round had none."""
    now, errors = datetime.now(UTC), []
    for _ in range(ROUNDS):
        _, results = await racing_claims(db, now)
        failed = [r for r in results if isinstance(r, BaseException)]
        errors += failed
        if not failed:
            assert sum(r is None for r in results) == 1
    return errors


async def test_without_the_setting_the_pooler_breaks_racing_writes(bouncer_url: str) -> None:
    """Why the setting exists, and that the fixture is the pooler it says: asyncpg's kept statements and its
    numbered statement names do not survive a transaction-mode pooler."""
    db = Database(bouncer_url, timeout=30)
    try:
        errors = await _race_claims(db)
    finally:
        await db.dispose()
    assert errors, "every claim went through: the pooler did not move transactions between server connections"
    assert all("prepared statement" in str(e) for e in errors), errors[:3]


async def test_racing_claims_through_the_pooler_give_one_owner(pooled: tuple[Settings, Database]) -> None:
    _, db = pooled
    assert await _race_claims(db) == []


async def test_intake_through_the_pooler_files_each_complaint_once(
    pooled: tuple[Settings, Database], db: Database
) -> None:
    """The intake's single statement (no transaction of its own on PostgreSQL) is one behind the pooler."""
    settings, pooled_db = pooled
    desk = IntakeDesk(db=pooled_db, settings=settings, sla=SlaActivities(settings.calendar(), load_policy()))
    citizen = Actor("citizen:web", Role.CITIZEN)
    keys = [str(uuid.uuid4()) for _ in range(8)]

    async def file(key: str) -> str:
        answer = await file_complaint(
            desk,
            complaint=ComplaintIn.model_validate(complaint()),
            actor=citizen,
            idempotency=Idempotency(scope="test", key=key),
        )
        return str(answer.body["case_id"])

    # Each key sent twice at once: one case a key, and both answers name it.
    filed = await asyncio.gather(*(file(key) for key in keys for _ in range(2)))
    assert len(set(filed)) == len(keys)
    assert all(filed[i] == filed[i + 1] for i in range(0, len(filed), 2))
    async with db.session() as s:  # read directly, not through the pooler
        stored = await s.scalar(select(func.count()).where(models.IntakeOutbox.case_id.in_(filed)))
    assert stored == len(keys)


async def test_the_worker_s_writes_go_through_the_pooler(
    pooled: tuple[Settings, Database], db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Transitions with the complainant's channels (one statement on PostgreSQL) and without (a transaction),
    several cases at once, each by its own path: the one statement is not refused and written the general way
    instead."""
    _, pooled_db = pooled
    monkeypatch.setattr(projection, "log", structlog.get_logger("activities.projection"))  # a fresh, capturable one
    write = ReadModelActivities(pooled_db).record_transition

    async def lifecycle(channels: list[str] | None) -> str:
        case_id = f"RT-P-{uuid.uuid4().hex[:8]}"
        await write(record(case_id, 1, State.RECEIVED, intake=True))
        await write(record(case_id, 2, State.SCREENING, channels=channels))
        await write(record(case_id, 2, State.SCREENING, channels=channels))  # a retry writes nothing twice
        return case_id

    with capture_logs() as logs:
        cases = await asyncio.gather(*(lifecycle(c) for c in [None, ["sms", "line"]] * 10))
    assert [e for e in logs if e["event"] in ("write_at_once_refused", "projection_refused")] == []
    for case_id in cases:
        assert await counts(db, case_id) == (2, 1, "screening")
        assert len(await outbox(db, case_id)) == 8


def test_migrations_run_through_the_pooler(bouncer_url: str) -> None:
    upgrade(bouncer_url, pooler=Pooler.TRANSACTION)  # at head already: reads the version, changes nothing
