"""PostgreSQL behind a real PgBouncer in transaction mode (``RONGTUK_DATABASE_POOLER``, docs/operations.md): the
pooler hands each transaction whichever server connection is free, so a statement prepared in one transaction
is not there in the next, and two clients meet on one server connection. Without the setting, the writes that
race (intake keys, claims) fail with prepared-statement errors; with it, intake, claims, the worker's
write in one statement and the migrations all work through it.

Runs when the suite runs on PostgreSQL (CI's second pass), with ``pgbouncer`` installed (``.ci/run`` installs
it; anywhere else without it, the module is skipped)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
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
from tests.conftest import POOLER
from tests.store.test_idempotency_claims import RACERS, _claim
from tests.store.test_projection import counts, outbox, record
from workflows.process import Actor, Role, State

# Fewer server connections than clients, so that transactions of different clients share them.
SERVER_CONNECTIONS = 2
ROUNDS = 10


def _pgbouncer() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if Path(p).exists()), None
    )


@pytest.fixture(scope="module")
def bouncer_url(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PgBouncer in transaction mode in front of the suite's database; its URL."""
    if not database_url.startswith("postgresql") or POOLER is not Pooler.NONE:
        pytest.skip("a pooler in front of PostgreSQL: the suite is not on PostgreSQL, or already behind one")
    binary = _pgbouncer()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("pgbouncer is not installed: .ci/run installs it with apt-get")
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")
    target = make_url(database_url)
    here = tmp_path_factory.mktemp("pgbouncer")
    here.chmod(0o777)  # PgBouncer will not run as root: as root, it runs as nobody, who must read and write here
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    user = target.username or "postgres"
    (here / "users.txt").write_text(f'"{user}" ""\n')
    (here / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{target.database} = host={target.host or '127.0.0.1'} port={target.port or 5432} "
        f"dbname={target.database} user={user}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {here / 'users.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {SERVER_CONNECTIONS}\nmax_client_conn = 200\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    for name in ("users.txt", "pgbouncer.ini"):
        (here / name).chmod(0o644)
    command = [binary, str(here / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "nobody"]
    with open(here / "pgbouncer.log", "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, (here / "pgbouncer.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "pgbouncer did not listen within 10 s"
                time.sleep(0.05)
        yield target.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


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
        idem = Idempotency(scope=f"officer:{uuid.uuid4()}", key=str(uuid.uuid4()))
        results = await asyncio.gather(*(_claim(db, idem, now) for _ in range(RACERS)), return_exceptions=True)
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
