"""Ended cases out of the read model, into a records archive that can be read back (``rongtuk db archive``).

The read model keeps every case until the centre's records retention says otherwise (docs/operations.md,
"Archiving ended cases"). Past it, a case that ended long enough ago is written, with every row of it, to an
archive file, and only then deleted; ``rongtuk db restore-archive`` puts an archive's cases back.

- **Which cases.** Ended (withdrawn, referred, or closed at either stage) with nothing recorded since the cut-off
  (no event on or after it), and the cut-off at least the policy's longest window before now: a closed case's
  workflow stays open through its review and Ombudsman windows plus ``retention_days``, and may still reopen
  it (``minimum_age``). Then Temporal is asked, case by case: a case whose workflow still runs is kept. An
  answer Temporal cannot give stops the run before anything is written.
- **Which rows.** Each table with a ``case_id`` (``CASE_TABLES``): the case, its events (hash-chained), tasks,
  notifications and their delivery log, webhook deliveries, attachments' metadata, follow-ups, and what intake
  kept of it; and its attachment files, copied from the storage into a folder beside the archive
  (:func:`files_dir`). The access log stays: it is the centre's record of who read the case, not the case.
- **The file.** gzip'd JSON lines: a header (format, cut-off, schema revision), then one line per case with
  its rows by table; written (with the files' folder) under temporary names, flushed to disk, renamed, and read
  back whole before anything is deleted. A manifest beside it gives the counts and the file's SHA-256.
- **The deletion.** A batch at a time, each in one transaction, children before parents; each case is checked
  again in that transaction (still ended, nothing since the cut-off), and one that changed is kept. Then each
  of their files that no case left refers to leaves the storage (files are named by content: one may belong
  to several cases).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import Table, TypeDecorator, delete, exists, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from attachments.storage import Storage, StorageError
from sla.policy import SlaPolicy
from store import models
from store.db import Database
from workflows.models import workflow_id_for
from workflows.process import SETTLED_STATES, TERMINAL_STATES

FORMAT = "rongtuk-archive/1"
# Every table that holds a case's rows, parents before children (the order rows are restored in; deleted in
# the reverse). The access log is not the case's: it records who read it, and stays.
CASE_TABLES: tuple[Table, ...] = tuple(
    t for t in models.Base.metadata.sorted_tables if "case_id" in t.c and t.name != models.AccessLog.__tablename__
)
ENDED_STATES = tuple(sorted(s.value for s in TERMINAL_STATES | SETTLED_STATES))
C, E = models.Case, models.CaseEvent


class ArchiveError(Exception):
    """The archive cannot be written, read or trusted; nothing was deleted."""


def minimum_age(policy: SlaPolicy) -> relativedelta:
    """How long after its last event a case's workflow may still run: its Ombudsman window after the final
    reply, the longest of its windows, plus ``retention_days``."""
    months = max(policy.ombudsman_months, policy.complaint_months, policy.review_request_months)
    return relativedelta(months=months, days=policy.retention_days)


def check_cutoff(cutoff: datetime, policy: SlaPolicy, now: datetime) -> None:
    """Refuse a cut-off later than the policy's longest window before ``now``."""
    latest = now - minimum_age(policy)
    if cutoff > latest:
        raise ArchiveError(
            f"--ended-before {cutoff.date()} is too recent: a case that ended then may still be reopened or reviewed "
            f"(its workflow runs up to {policy.ombudsman_months} months and {policy.retention_days} days after its "
            f"last step). The latest cut-off today is {latest.date()}."
        )


def _eligible(cutoff: datetime) -> Any:
    """Ended, and nothing recorded on or after ``cutoff``."""
    later = exists().where(E.case_id == C.case_id, E.at >= cutoff)
    return C.status.in_(ENDED_STATES) & (C.received_at < cutoff) & ~later


def candidates_query(cutoff: datetime, *, after: str | None, limit: int) -> Any:
    query = select(C.case_id).where(_eligible(cutoff))
    if after is not None:
        query = query.where(C.case_id > after)
    return query.order_by(C.case_id).limit(limit)


# How a value of each column type is written as JSON, and read back (anything else is JSON already).
_ENCODE: dict[type, Any] = {
    datetime: datetime.isoformat,
    date: date.isoformat,
    Decimal: str,
    bytes: lambda b: base64.b64encode(b).decode("ascii"),
}
_DECODE: dict[type, Any] = {
    datetime: datetime.fromisoformat,
    date: date.fromisoformat,
    Decimal: Decimal,
    bytes: base64.b64decode,
}


def encode_row(table: Table, row: Any) -> dict[str, Any]:
    out = {}
    for c in table.c:
        value = row[c]
        out[c.name] = _ENCODE[type(value)](value) if type(value) in _ENCODE else value
    return out


def decode_row(table: Table, data: dict[str, Any]) -> dict[str, Any]:
    """A row as the table takes it back: its computed columns left to the database, values to their types."""
    out: dict[str, Any] = {}
    for column in table.c:
        if column.computed is not None or column.name not in data:
            continue
        value, kind = data[column.name], _python_type(column)
        decode = _DECODE.get(kind) if kind is not None and value is not None else None
        out[column.name] = decode(value) if decode is not None else value
    return out


def _python_type(column: Any) -> type | None:
    kind = column.type.impl_instance if isinstance(column.type, TypeDecorator) else column.type
    try:
        return kind.python_type
    except NotImplementedError:
        return None


async def rows_of(session: AsyncSession, case_ids: Sequence[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Every row of each case, by case and table (in primary-key order)."""
    found: dict[str, dict[str, list[dict[str, Any]]]] = {case_id: {} for case_id in case_ids}
    for table in CASE_TABLES:
        query = select(table).where(table.c.case_id.in_(case_ids)).order_by(*table.primary_key.columns)
        for row in (await session.execute(query)).mappings():
            found[row["case_id"]].setdefault(table.name, []).append(encode_row(table, row))
    return found


async def still_running(client: Client, case_ids: Sequence[str], *, concurrency: int = 16) -> set[str]:
    """The cases whose workflow Temporal still runs. One that Temporal no longer holds (past its namespace's
    retention) has ended; any other error is raised: the answer is checked, not guessed."""
    slots = asyncio.Semaphore(concurrency)

    async def running(case_id: str) -> bool:
        async with slots:
            try:
                described = await client.get_workflow_handle(workflow_id_for(case_id)).describe(
                    rpc_timeout=timedelta(seconds=10)
                )
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    return False
                raise
            return described.status == WorkflowExecutionStatus.RUNNING

    flags = await asyncio.gather(*(running(case_id) for case_id in case_ids))
    return {case_id for case_id, flag in zip(case_ids, flags, strict=True) if flag}


@dataclass
class ArchiveReport:
    path: Path
    cases: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    running: list[str] = field(default_factory=list)
    sha256: str = ""
    # Attachment files copied beside the archive (key -> bytes), and those the storage did not give back.
    files: dict[str, int] = field(default_factory=dict)
    files_missing: list[str] = field(default_factory=list)


@dataclass
class Deletion:
    deleted: int = 0
    changed: list[str] = field(default_factory=list)
    files_deleted: int = 0
    # Files the storage would not delete (it was away): no case refers to them, the archive holds a copy.
    files_failed: list[str] = field(default_factory=list)


def files_dir(path: Path) -> Path:
    """Where the attachment files of the archive at ``path`` are kept: ``<archive>.files/<storage key>``."""
    return path.with_name(path.name.removesuffix(".jsonl.gz") + ".files")


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def manifest_path(path: Path) -> Path:
    """The manifest of the archive at ``path``: ``<archive>.manifest.json``."""
    return path.with_name(path.name.removesuffix(".jsonl.gz") + ".manifest.json")


def _keys_of(tables: dict[str, list[dict[str, Any]]]) -> dict[str, str | None]:
    """A case's attachment files: each key, with the SHA-256 its bytes must have (the original's; the public
    copy, its metadata removed, is named after the original and has none to check)."""
    keys: dict[str, str | None] = {}
    for row in tables.get(models.Attachment.__tablename__, []):
        keys[row["storage_key"]] = row["sha256"]
        keys.setdefault(row["public_key"], None)
    return keys


class _Writer:
    """The archive being written (blocking; run in a thread): the file and its folder of attachment files are
    complete under their names, or absent."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.partial = path, path.with_suffix(".partial")
        self.files, self.files_partial = files_dir(path), files_dir(path).with_suffix(".partial")
        # Personal data: readable by the owner alone, from the first byte.
        self.raw = os.fdopen(os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
        self.out = gzip.GzipFile(fileobj=self.raw, mode="wb", mtime=0)
        self.out.write(_line(header))

    def write(self, lines: list[bytes]) -> None:
        self.out.writelines(lines)

    def write_file(self, key: str, data: bytes) -> None:
        target = self.files_partial / key
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.files_partial.chmod(0o700)
        with os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def finish(self) -> str:
        """Flush to disk, rename into place; the file's SHA-256."""
        self.out.close()
        self.raw.flush()
        os.fsync(self.raw.fileno())
        self.raw.close()
        if self.files_partial.exists():
            self.files_partial.replace(self.files)
        self.partial.replace(self.path)
        return _sha256(self.path)

    def abort(self) -> None:
        self.out.close()
        self.raw.close()
        self.partial.unlink(missing_ok=True)
        shutil.rmtree(self.files_partial, ignore_errors=True)


async def write_archive(
    db: Database,
    client: Client,
    *,
    out_dir: Path,
    cutoff: datetime,
    revision: str,
    storage: Storage | None = None,
    batch: int = 200,
    now: datetime | None = None,
) -> ArchiveReport:
    """Write every eligible case (``candidates_query``, and not running at Temporal) to a new archive file in
    ``out_dir``, with its attachment files from ``storage`` beside it (:func:`files_dir`), read it back and
    write its manifest; nothing is deleted."""
    now = now or datetime.now(UTC)
    name = f"rongtuk-archive-{cutoff.date()}-{now.strftime('%Y%m%dT%H%M%SZ')}.jsonl.gz"
    report = ArchiveReport(out_dir / name)
    header = {"format": FORMAT, "ended_before": cutoff.isoformat(), "written_at": now.isoformat(), "revision": revision}
    writer = await asyncio.to_thread(_Writer, report.path, header)
    try:
        after: str | None = None
        while True:
            async with db.sessions() as session:
                ids = list((await session.scalars(candidates_query(cutoff, after=after, limit=batch))).all())
            if not ids:
                break
            after = ids[-1]
            running = await still_running(client, ids)  # no connection held while Temporal answers
            kept = [case_id for case_id in ids if case_id not in running]
            async with db.sessions() as session:
                found = await rows_of(session, kept) if kept else {}
            report.running.extend(sorted(running))
            lines = []
            for case_id in kept:
                lines.append(_line({"case_id": case_id, "tables": found[case_id]}))
                report.cases.append(case_id)
                for table_name, rows in found[case_id].items():
                    report.rows[table_name] = report.rows.get(table_name, 0) + len(rows)
                if storage is not None:
                    await _copy_files(storage, writer, _keys_of(found[case_id]), report)
            await asyncio.to_thread(writer.write, lines)
        report.sha256 = await asyncio.to_thread(writer.finish)
    except BaseException:
        await asyncio.to_thread(writer.abort)
        raise
    await asyncio.to_thread(_check_written, report)
    manifest = {
        **header,
        "file": report.path.name,
        "sha256": report.sha256,
        "cases": len(report.cases),
        "rows": report.rows,
        "kept_running": report.running,
        "files": len(report.files),
        "files_missing": report.files_missing,
    }
    text = json.dumps(manifest, ensure_ascii=False, indent=1)
    await asyncio.to_thread(manifest_path(report.path).write_text, text, encoding="utf-8")
    return report


async def _copy_files(storage: Storage, writer: _Writer, keys: dict[str, str | None], report: ArchiveReport) -> None:
    """Copy a case's attachment files beside the archive; one the storage does not give back, or whose bytes
    are not the original's, is listed as missing (and never deleted)."""
    for key, sha256 in keys.items():
        if key in report.files or key in report.files_missing:
            continue
        try:
            data = await storage.get(key)
        except StorageError:
            report.files_missing.append(key)
            continue
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            report.files_missing.append(key)
            continue
        await asyncio.to_thread(writer.write_file, key, data)
        report.files[key] = len(data)


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def read_archive(path: Path) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """The archive's header and its cases, one at a time; an unreadable or foreign file is an ArchiveError."""
    try:
        stream = gzip.open(path, "rt", encoding="utf-8")
        header = json.loads(stream.readline() or "null")
    except (OSError, EOFError, json.JSONDecodeError) as exc:
        raise ArchiveError(f"{path} is not a readable archive: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        stream.close()
        raise ArchiveError(f"{path} is not a {FORMAT} archive")

    def cases() -> Iterator[dict[str, Any]]:
        with stream:
            try:
                for number, text in enumerate(stream, start=2):
                    entry = json.loads(text)
                    if not isinstance(entry, dict) or "case_id" not in entry or "tables" not in entry:
                        raise ArchiveError(f"{path}, line {number}: not a case")
                    yield entry
            except (OSError, EOFError, json.JSONDecodeError) as exc:
                raise ArchiveError(f"{path} is damaged: {exc}") from None

    return header, cases()


def _check_written(report: ArchiveReport) -> None:
    """Read the archive back whole: every case written is there, with every row counted, and every attachment
    file copied is there with its size."""
    _, cases = read_archive(report.path)
    seen: list[str] = []
    rows: dict[str, int] = {}
    for entry in cases:
        seen.append(entry["case_id"])
        for table_name, table_rows in entry["tables"].items():
            rows[table_name] = rows.get(table_name, 0) + len(table_rows)
    kept = files_dir(report.path)
    files_ok = all((kept / key).is_file() and (kept / key).stat().st_size == n for key, n in report.files.items())
    if seen != report.cases or rows != report.rows or not files_ok:
        raise ArchiveError(f"{report.path} does not read back as written: nothing was deleted")


async def delete_archived(db: Database, path: Path, *, storage: Storage | None = None, batch: int = 200) -> Deletion:
    """Delete from the read model the cases of the archive at ``path`` (read back first) that are still as
    archived: ended, nothing since the archive's cut-off. With ``storage``, then each of their attachment files
    that the archive holds a copy of and no case left in the read model refers to."""
    header, cases = await asyncio.to_thread(read_archive, path)
    cutoff = datetime.fromisoformat(header["ended_before"])
    # The whole file is read (and so checked) before anything is deleted.
    case_ids = await asyncio.to_thread(lambda: [entry["case_id"] for entry in cases])
    done = Deletion()
    A = models.Attachment
    for start in range(0, len(case_ids), batch):
        chunk = case_ids[start : start + batch]
        async with db.session() as session:
            still = select(C.case_id).where(C.case_id.in_(chunk), _eligible(cutoff))
            if not db.is_sqlite:
                still = still.with_for_update()
            same = set((await session.scalars(still)).all())
            done.changed.extend(case_id for case_id in chunk if case_id not in same)
            if not same:
                continue
            files = (await session.execute(select(A.storage_key, A.public_key).where(A.case_id.in_(same)))).all()
            for table in reversed(CASE_TABLES):
                await session.execute(delete(table).where(table.c.case_id.in_(same)))
            done.deleted += len(same)
        if storage is not None:
            keys = {key for pair in files for key in pair}
            await _delete_files(db, storage, keys, files_dir(path), done)
    return done


async def _delete_files(db: Database, storage: Storage, keys: set[str], copies: Path, done: Deletion) -> None:
    """Delete each of ``keys`` that the archive holds a copy of and no attachment row refers to any more. A row
    that came to refer to one meanwhile (the same file sent to another case at that moment) gets it back
    from the copy."""
    A = models.Attachment

    async def referred(key: str) -> bool:
        async with db.sessions() as session:
            query = select(A.id).where((A.storage_key == key) | (A.public_key == key)).limit(1)
            return (await session.scalar(query)) is not None

    for key in sorted(keys):
        copy = copies / key
        if not await asyncio.to_thread(copy.is_file) or await referred(key):
            continue
        try:
            await storage.delete(key)
            if await referred(key):
                await storage.put(key, await asyncio.to_thread(copy.read_bytes), "application/octet-stream")
                continue
        except StorageError:
            done.files_failed.append(key)
            continue
        done.files_deleted += 1


async def restore_archive(db: Database, path: Path, *, storage: Storage | None = None) -> tuple[int, int, list[str]]:
    """Put the archive's cases back into the read model, each in a transaction of its own, their attachment
    files first into ``storage`` (from the copies beside the archive); a case already there is left as it is.
    Returns how many were restored, how many were there already, and the cases that could not be (a row whose
    surrogate id was given to a newer row since: SQLite reuses the highest ids)."""
    _, cases = read_archive(path)
    copies = files_dir(path)
    restored, present, refused = 0, 0, list[str]()
    for entry in cases:
        if storage is not None:
            for key in _keys_of(entry["tables"]):
                copy = copies / key
                if await asyncio.to_thread(copy.is_file):
                    await storage.put(key, await asyncio.to_thread(copy.read_bytes), "application/octet-stream")
        try:
            async with db.session() as session:
                if await session.get(C, entry["case_id"]) is not None:
                    present += 1
                    continue
                for table in CASE_TABLES:
                    rows = [decode_row(table, row) for row in entry["tables"].get(table.name, [])]
                    if rows:
                        await session.execute(insert(table), rows)
        except IntegrityError:
            refused.append(entry["case_id"])
            continue
        restored += 1
    return restored, present, refused
