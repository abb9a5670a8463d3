"""Ended cases leave the read model only into an archive that reads back, and come back from it row for row
(store/archive.py, ``rongtuk db archive``). Real Temporal dev server and worker, the session's database."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from temporalio.testing import WorkflowEnvironment

from config.settings import Settings
from sla.policy import SlaPolicy
from store import models
from store.archive import (
    CASE_TABLES,
    ArchiveError,
    check_cutoff,
    delete_archived,
    read_archive,
    restore_archive,
    write_archive,
)
from store.db import Database
from tests.integration.cli import run_cli
from tests.workflows.paths import reach
from worker import build_worker
from workflows.process import State

CUTOFF = datetime(2000, 1, 1, tzinfo=UTC)
LONG_AGO = datetime(1999, 3, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
async def queue(dev_env: WorkflowEnvironment, settings: Settings, db: Database) -> AsyncIterator[str]:
    name = f"tq-{uuid.uuid4()}"
    async with build_worker(dev_env.client, settings, db, task_queue=name):
        yield name


async def everything(db: Database, case_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every row the case has in each table, as the database gives them back (native values)."""
    out = {}
    async with db.sessions() as session:
        for table in CASE_TABLES:
            query = select(table).where(table.c.case_id == case_id).order_by(*table.primary_key.columns)
            out[table.name] = [dict(row) for row in (await session.execute(query)).mappings()]
    return out


async def moved_back(db: Database, case_id: str) -> None:
    """The case as if it had been received and ended in 1999 (its steps a day apart), with a row in each
    table a case can have besides those its workflow wrote."""
    now = LONG_AGO
    async with db.session() as s:
        await s.execute(update(models.Case).where(models.Case.case_id == case_id).values(received_at=LONG_AGO))
        events = (await s.scalars(select(models.CaseEvent).where(models.CaseEvent.case_id == case_id))).all()
        for event in events:
            event.at = LONG_AGO + timedelta(days=event.seq)
        first = min(events, key=lambda e: e.seq)
        s.add_all(
            [
                models.Attachment(
                    case_id=case_id,
                    sha256="ab" * 32,
                    name="ถนน.jpg",
                    content_type="image/jpeg",
                    size_bytes=1234,
                    storage_key="original/ab",
                    public_key="public/ab",
                    public=True,
                    uploaded_by="citizen",
                    uploader_role="citizen",
                    latitude=13.75,
                    longitude=100.5,
                    at=now,
                ),
                models.FollowUp(case_id=case_id, closed_seq=first.seq, closed_at=now, asked_at=now, answer="fixed"),
                models.QueueClaim(case_id=case_id, officer_id="officer-7", claimed_at=now),
                models.IdempotencyKey(
                    scope="staff:officer-7",
                    key=uuid.uuid4().hex,
                    fingerprint="f" * 64,
                    kind="action",
                    case_id=case_id,
                    request={"action": "close"},
                    status_code=200,
                    body={"ok": True},
                    created_at=now,
                    expires_at=now + timedelta(days=1),
                ),
                models.WebhookDelivery(
                    partner="traffy",
                    event_id=first.id,
                    case_id=case_id,
                    seq=first.seq,
                    event=first.event,
                    created_at=now,
                ),
            ]
        )
        await s.flush()
        notification = (
            await s.scalars(select(models.Notification).where(models.Notification.case_id == case_id).limit(1))
        ).one()
        s.add(
            models.DeliveryAttempt(
                notification_id=notification.id,
                case_id=case_id,
                seq=notification.seq,
                audience=notification.audience,
                channel=notification.channel,
                gateway="sms",
                attempt=1,
                at=now,
                ok=True,
                result="sent",
            )
        )


async def count(db: Database, table: Any, case_id: str) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(table).where(table.c.case_id == case_id)) or 0)


def test_the_cutoff_leaves_the_policys_longest_window_alone() -> None:
    policy = SlaPolicy()
    now = datetime(2026, 12, 5, tzinfo=UTC)
    check_cutoff(datetime(2025, 11, 1, tzinfo=UTC), policy, now)  # 13 months and 4 days back
    with pytest.raises(ArchiveError, match="too recent"):
        check_cutoff(datetime(2025, 12, 1, tzinfo=UTC), policy, now)  # 12 months: a case may still reopen
    with pytest.raises(ArchiveError, match="too recent"):
        check_cutoff(datetime(2026, 11, 1, tzinfo=UTC), SlaPolicy(ombudsman_months=0, complaint_months=0), now)


async def test_an_ended_case_is_archived_deleted_and_restored_row_for_row(
    dev_env: WorkflowEnvironment, db: Database, queue: str, tmp_path: Path
) -> None:
    client = dev_env.client
    closed, handle = await reach(client, queue, State.CLOSED)
    still_open, _ = await reach(client, queue, State.STAGE1)
    for case_id in (closed, still_open):
        await moved_back(db, case_id)
    before = await everything(db, closed)
    assert all(before[t.name] for t in CASE_TABLES if t.name != "intake_outbox"), {k: len(v) for k, v in before.items()}
    open_before = await everything(db, still_open)

    # The closed case's workflow still runs (its review windows): Temporal says so, and it is kept.
    first = await write_archive(db, client, out_dir=tmp_path, cutoff=CUTOFF, revision="test")
    assert closed in first.running and closed not in first.cases and still_open not in first.cases

    await handle.terminate("its windows have closed")
    report = await write_archive(
        db, client, out_dir=tmp_path, cutoff=CUTOFF, revision="test", now=datetime.now(UTC) + timedelta(seconds=1)
    )
    assert closed in report.cases and still_open not in report.cases and not report.running
    manifest = json.loads(report.path.with_name(report.path.name.replace(".jsonl.gz", ".manifest.json")).read_text())
    assert manifest["cases"] == len(report.cases) and manifest["sha256"] == report.sha256
    assert report.path.stat().st_mode & 0o077 == 0  # personal data: the owner's alone
    assert not list(tmp_path.glob("*.partial"))
    header, cases = read_archive(report.path)
    assert header["format"] == "rongtuk-archive/1" and header["ended_before"] == CUTOFF.isoformat()
    archived = next(entry for entry in cases if entry["case_id"] == closed)
    assert {name: len(rows) for name, rows in archived["tables"].items()} == {
        name: len(rows) for name, rows in before.items() if rows
    }

    # A damaged copy deletes nothing.
    damaged = tmp_path / "damaged.jsonl.gz"
    damaged.write_bytes(report.path.read_bytes()[:-40])
    with pytest.raises(ArchiveError):
        await delete_archived(db, damaged)
    assert await everything(db, closed) == before

    deleted, changed = await delete_archived(db, report.path)
    assert deleted == len(report.cases) and changed == []
    for table in CASE_TABLES:
        assert await count(db, table, closed) == 0, table.name
    assert await everything(db, still_open) == open_before  # not ended: untouched

    # A row in the way (here a claim left behind): that case is not restored, and not half restored.
    async with db.session() as s:
        s.add(models.QueueClaim(case_id=closed, officer_id="officer-9", claimed_at=LONG_AGO))
    assert await restore_archive(db, report.path) == (len(report.cases) - 1, 0, [closed])
    assert {t.name for t in CASE_TABLES if await count(db, t, closed)} == {"queue_claims"}
    async with db.session() as s:
        await s.execute(delete(models.QueueClaim).where(models.QueueClaim.case_id == closed))

    assert await restore_archive(db, report.path) == (1, len(report.cases) - 1, [])
    assert await everything(db, closed) == before
    assert await restore_archive(db, report.path) == (0, len(report.cases), [])  # already there: left alone
    assert await everything(db, closed) == before


async def test_a_case_that_changed_since_it_was_archived_is_kept(
    dev_env: WorkflowEnvironment, db: Database, queue: str, tmp_path: Path
) -> None:
    closed, handle = await reach(dev_env.client, queue, State.CLOSED)
    await moved_back(db, closed)
    await handle.terminate("its windows have closed")
    report = await write_archive(db, dev_env.client, out_dir=tmp_path, cutoff=CUTOFF, revision="test")
    assert closed in report.cases
    async with db.session() as s:  # a step recorded after the archive was written
        await s.execute(update(models.Case).where(models.Case.case_id == closed).values(status=State.STAGE2.value))
    deleted, changed = await delete_archived(db, report.path)
    assert closed in changed and await count(db, models.Case.__table__, closed) == 1
    assert deleted == len(report.cases) - len(changed)


async def test_the_commands(
    dev_env: WorkflowEnvironment, settings: Settings, db: Database, queue: str, tmp_path: Path
) -> None:
    recent = run_cli(dev_env, settings, "db", "archive", "--ended-before", "2026-06-01", "--to", str(tmp_path))
    assert recent.returncode == 2 and "too recent" in recent.stderr and not list(tmp_path.iterdir())
    away = run_cli(
        dev_env, settings, "db", "archive", "--ended-before", "2000-01-01", "--to", str(tmp_path),
        RONGTUK_TEMPORAL_ADDRESS="127.0.0.1:1",
    )  # fmt: skip
    assert away.returncode == 1 and "did not answer: nothing was archived" in away.stderr, away.stderr
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    blocked = run_cli(dev_env, settings, "db", "archive", "--ended-before", "2000-01-01", "--to", str(a_file))
    assert blocked.returncode == 1 and f"cannot write the archive in {a_file}" in blocked.stderr, blocked.stderr
    assert "Traceback" not in away.stderr + blocked.stderr
    a_file.unlink()
    assert not list(tmp_path.iterdir())

    closed, handle = await reach(dev_env.client, queue, State.CLOSED)
    await moved_back(db, closed)
    await handle.terminate("its windows have closed")
    before = await everything(db, closed)
    archive_to = ("--ended-before", "2000-01-01", "--to", str(tmp_path), "--delete")
    done = run_cli(dev_env, settings, "db", "archive", *archive_to)
    assert done.returncode == 0, done.stderr
    assert "deleted" in done.stdout and await count(db, models.Case.__table__, closed) == 0
    (archive,) = tmp_path.glob("*.jsonl.gz")
    with gzip.open(archive, "rt", encoding="utf-8") as f:
        assert any(json.loads(line).get("case_id") == closed for line in f)

    back = run_cli(dev_env, settings, "db", "restore-archive", str(archive))
    assert back.returncode == 0 and "restored" in back.stdout, back.stderr
    assert await everything(db, closed) == before
    foreign = tmp_path / "foreign.jsonl.gz"
    foreign.write_bytes(gzip.compress(b'{"format": "something else"}\n'))
    refused = run_cli(dev_env, settings, "db", "restore-archive", str(foreign))
    assert refused.returncode == 1 and "not a rongtuk-archive/1 archive" in refused.stderr
