"""What auditors read: the access log (who saw which case's personal data) and the case event hash chain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store import models, queries
from store.chain import CHAINED_FIELDS, GENESIS, event_hash


async def record_access(
    session: AsyncSession,
    *,
    at: datetime,
    actor_id: str,
    actor_role: str,
    actor_agency: str | None,
    case_id: str,
    what: str,
    reason: str | None,
    commit: bool = True,
) -> None:
    """Append one row to the access log and commit it (the read it records has happened), unless the caller
    commits it with what it writes next (``commit=False``: an action's answer, kept with its key's answer)."""
    session.add(
        models.AccessLog(
            at=at,
            actor_id=actor_id,
            actor_role=actor_role,
            actor_agency=actor_agency,
            case_id=case_id,
            what=what,
            reason=reason,
        )
    )
    if commit:
        await session.commit()


async def access_log(
    session: AsyncSession,
    *,
    case_id: str | None = None,
    actor_id: str | None = None,
    since: datetime | None = None,
    page: int = 1,
    page_size: int = 100,
) -> tuple[list[models.AccessLog], int]:
    """Access log rows, newest first, with the total matching."""
    query = select(models.AccessLog)
    if case_id is not None:
        query = query.where(models.AccessLog.case_id == case_id)
    if actor_id is not None:
        query = query.where(models.AccessLog.actor_id == actor_id)
    if since is not None:
        query = query.where(models.AccessLog.at >= since)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.execute(
        query.order_by(models.AccessLog.id.desc()).offset((page - 1) * page_size).limit(page_size)
    )
    return list(rows.scalars().all()), int(total or 0)


# --- the hash chain --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainReport:
    """The outcome of checking one case's chain: ``bad_seq`` is the first row that does not hold."""

    case_id: str
    rows: int
    bad_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.bad_seq is None and self.problem is None


def chain_row(event: models.CaseEvent) -> dict[str, Any]:
    """The row as the hash sees it."""
    return {name: getattr(event, name) for name in CHAINED_FIELDS}


def check_chain(case_id: str, events: Sequence[models.CaseEvent]) -> ChainReport:
    """Recompute every hash in seq order: each row must link to its predecessor's hash and hash to its own."""
    prev: str | None = None
    for expected_seq, event in enumerate(events, start=1):
        if event.seq != expected_seq:
            return ChainReport(case_id, len(events), event.seq, f"seq {expected_seq} is missing")
        if event.hash is None:
            return ChainReport(case_id, len(events), event.seq, "row has no hash")
        if (event.prev_hash or None) != prev and not (prev is None and event.prev_hash in (None, GENESIS)):
            return ChainReport(case_id, len(events), event.seq, "prev_hash does not match the previous row's hash")
        if event_hash(prev, chain_row(event)) != event.hash:
            return ChainReport(case_id, len(events), event.seq, "row content does not match its hash")
        prev = event.hash
    return ChainReport(case_id, len(events))


async def case_events(session: AsyncSession, *, case_id: str) -> list[models.CaseEvent]:
    """A case's timeline rows in seq order."""
    return await queries.case_timeline(session, case_id=case_id)


async def verify_case(session: AsyncSession, *, case_id: str) -> ChainReport:
    """Check one case's chain (a case without rows is reported as a problem)."""
    return chain_report(case_id, await case_events(session, case_id=case_id))


def chain_report(case_id: str, events: Sequence[models.CaseEvent]) -> ChainReport:
    """The chain check of a case's rows, already read (none is a problem: every case has its filing)."""
    if not events:
        return ChainReport(case_id, 0, None, "no event rows")
    return check_chain(case_id, events)


async def all_case_ids(session: AsyncSession) -> list[str]:
    """Every case id, oldest first."""
    return list((await session.execute(select(models.Case.case_id).order_by(models.Case.received_at))).scalars())
