"""Ended cases leave the read model only into an archive that reads back, and come back from it row for row
(store/archive.py, ``rongtuk db archive``). Real Temporal dev server and worker, the session's database."""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from temporalio.testing import WorkflowEnvironment

from attachments.storage import DiskStorage, Storage, StorageError, content_key
from config.settings import Settings
from sla.policy import SlaPolicy
from store import models
from store.archive import (
    CASE_TABLES,
    ArchiveError,
    check_cutoff,
    delete_archived,
    files_dir,
    manifest_path,
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


SHARED = b"%PDF the centre's complaint form, sent by many"


def photo_of(case_id: str) -> bytes:
    return b"\xff\xd8\xff photo of the road, " + case_id.encode()


async def stored(storage: Storage, *files: bytes) -> None:
    """``files`` in ``storage`` as uploads leave them: the original and its public copy, by content."""
    for data in files:
        sha = hashlib.sha256(data).hexdigest()
        await storage.put(content_key("original", sha), data, "application/octet-stream")
        await storage.put(content_key("public", sha), b"public copy of " + data, "application/octet-stream")


def attachment(case_id: str, data: bytes, at: datetime) -> models.Attachment:
    """The row an upload of ``data`` to the case leaves (its files named by content)."""
    sha = hashlib.sha256(data).hexdigest()
    return models.Attachment(
        case_id=case_id,
        sha256=sha,
        name="ถนน.jpg",
        content_type="image/jpeg",
        size_bytes=len(data),
        storage_key=content_key("original", sha),
        public_key=content_key("public", sha),
        public=True,
        uploaded_by="citizen",
        uploader_role="citizen",
        latitude=13.75,
        longitude=100.5,
        at=at,
    )


async def moved_back(db: Database, case_id: str, files: Sequence[bytes] = ()) -> None:
    """The case as if it had been received and ended in 1999 (its steps a day apart), with a row in each
    table a case can have besides those its workflow wrote, and an attachment row for each of ``files``
    (by default a photo of its own)."""
    now = LONG_AGO
    async with db.session() as s:
        await s.execute(update(models.Case).where(models.Case.case_id == case_id).values(received_at=LONG_AGO))
        events = (await s.scalars(select(models.CaseEvent).where(models.CaseEvent.case_id == case_id))).all()
        for event in events:
            event.at = LONG_AGO + timedelta(days=event.seq)
        s.add_all(attachment(case_id, data, now) for data in files or [photo_of(case_id)])
        first = min(events, key=lambda e: e.seq)
        s.add_all(
            [
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
    storage = DiskStorage(tmp_path / "storage")
    closed, handle = await reach(client, queue, State.CLOSED)
    still_open, _ = await reach(client, queue, State.STAGE1)
    await moved_back(db, closed, [photo_of(closed), SHARED])
    await moved_back(db, still_open, [SHARED])  # the same form on a case that stays
    await stored(storage, photo_of(closed), SHARED)
    own = [content_key(kind, hashlib.sha256(photo_of(closed)).hexdigest()) for kind in ("original", "public")]
    shared = [content_key(kind, hashlib.sha256(SHARED).hexdigest()) for kind in ("original", "public")]
    before = await everything(db, closed)
    assert all(before[t.name] for t in CASE_TABLES if t.name != "intake_outbox"), {k: len(v) for k, v in before.items()}
    open_before = await everything(db, still_open)

    # The closed case's workflow still runs (its review windows): Temporal says so, and it is kept.
    first = await write_archive(db, client, out_dir=tmp_path, cutoff=CUTOFF, revision="test")
    assert closed in first.running and closed not in first.cases and still_open not in first.cases

    await handle.terminate("its windows have closed")
    report = await write_archive(
        db,
        client,
        out_dir=tmp_path,
        cutoff=CUTOFF,
        revision="test",
        storage=storage,
        now=datetime.now(UTC) + timedelta(seconds=1),
    )
    assert closed in report.cases and still_open not in report.cases and not report.running
    copies = files_dir(report.path)
    for key in own + shared:  # every file of the case, copied beside the archive, byte for byte
        assert (copies / key).read_bytes() == await storage.get(key)
    assert copies.stat().st_mode & 0o077 == 0 and report.files_missing == []
    manifest = json.loads(manifest_path(report.path).read_text())
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

    done = await delete_archived(db, report.path, storage=storage)
    assert done.deleted == len(report.cases) and done.changed == [] and done.files_failed == []
    # The case's own photo leaves the storage; the form another case still has stays.
    assert done.files_deleted == 2
    for key in own:
        with pytest.raises(StorageError):
            await storage.get(key)
    for key in shared:
        assert await storage.get(key)
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

    assert await restore_archive(db, report.path, storage=storage) == (1, len(report.cases) - 1, [])
    assert await everything(db, closed) == before
    for key in own:  # the files are back too
        assert await storage.get(key) == (copies / key).read_bytes()
    assert await restore_archive(db, report.path) == (0, len(report.cases), [])  # already there: left alone
    assert await everything(db, closed) == before


async def test_a_file_sent_again_while_it_is_deleted_is_put_back(
    dev_env: WorkflowEnvironment, db: Database, queue: str, tmp_path: Path
) -> None:
    """The same bytes sent to another case in the moment the archive deletes the file (after its check that no
    case refers to it): the archive's check after deleting sees the new row and puts the file back."""
    closed, handle = await reach(dev_env.client, queue, State.CLOSED)
    other, _ = await reach(dev_env.client, queue, State.STAGE1)
    await moved_back(db, closed)
    await handle.terminate("its windows have closed")
    photo = content_key("original", hashlib.sha256(photo_of(closed)).hexdigest())

    class SentMeanwhile(DiskStorage):
        async def delete(self, key: str) -> None:
            await super().delete(key)
            if key == photo:  # an upload of the same photo to another case commits its row just then
                async with db.session() as s:
                    row = await s.scalar(select(models.Attachment).where(models.Attachment.storage_key == key))
                    assert row is None  # the archived case's row is gone: this one is the new upload's
                    s.add(attachment(other, photo_of(closed), datetime.now(UTC)))

    storage = SentMeanwhile(tmp_path / "storage")
    await stored(storage, photo_of(closed))
    report = await write_archive(db, dev_env.client, out_dir=tmp_path, cutoff=CUTOFF, revision="test", storage=storage)
    assert closed in report.cases
    done = await delete_archived(db, report.path, storage=storage)
    assert await storage.get(photo) == photo_of(closed), "the new upload's file is there"
    public = content_key("public", hashlib.sha256(photo_of(closed)).hexdigest())
    assert await storage.exists(public)  # checked after the new row: kept
    assert done.files_deleted == 0 and done.files_failed == []


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
    done = await delete_archived(db, report.path)
    assert closed in done.changed and await count(db, models.Case.__table__, closed) == 1
    assert done.deleted == len(report.cases) - len(done.changed)


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
    # The command's attachment storage: the disk store under its data folder, holding the case's photo.
    data = tmp_path / "data"
    storage = DiskStorage(data / "attachments")
    await stored(storage, photo_of(closed))
    photo = content_key("original", hashlib.sha256(photo_of(closed)).hexdigest())
    before = await everything(db, closed)
    out = tmp_path / "out"
    archive_to = ("--ended-before", "2000-01-01", "--to", str(out), "--delete")
    done = run_cli(dev_env, settings, "db", "archive", *archive_to, RONGTUK_DATA_DIR=str(data))
    assert done.returncode == 0, done.stderr
    assert "deleted" in done.stdout and await count(db, models.Case.__table__, closed) == 0
    (archive,) = out.glob("*.jsonl.gz")
    with gzip.open(archive, "rt", encoding="utf-8") as f:
        assert any(json.loads(line).get("case_id") == closed for line in f)
    assert (files_dir(archive) / photo).read_bytes() == photo_of(closed)
    with pytest.raises(StorageError):
        await storage.get(photo)

    back = run_cli(dev_env, settings, "db", "restore-archive", str(archive), RONGTUK_DATA_DIR=str(data))
    assert back.returncode == 0 and "restored" in back.stdout, back.stderr
    assert await everything(db, closed) == before
    assert await storage.get(photo) == photo_of(closed)
    foreign = tmp_path / "foreign.jsonl.gz"
    foreign.write_bytes(gzip.compress(b'{"format": "something else"}\n'))
    refused = run_cli(dev_env, settings, "db", "restore-archive", str(foreign))
    assert refused.returncode == 1 and "not a rongtuk-archive/1 archive" in refused.stderr
