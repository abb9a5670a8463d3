"""The scheduled side of the follow-up: finds cases closed ``followup_after_days`` ago that were not asked
yet, and puts the question in the notification outbox (the dispatcher sends it by the complainant's channels).

It runs beside the delivery dispatcher, outside the case workflows, so no workflow changes and old histories
replay untouched. Each question is one ``followups`` row per closure, inserted with ``ON CONFLICT DO NOTHING``:
any number of workers may run the job, and a question is queued once.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Select, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from activities.projection import insert_ignoring_duplicates, queue_notifications
from config.settings import Settings
from delivery.templates import FOLLOWUP_EVENT
from store import models
from store.db import Database
from workflows.process import SETTLED_STATES, Audience

log = structlog.get_logger(__name__)

# Outbox rows of the follow-up have no event of their own in the workflow: they take the closing event's seq
# plus this, so they never meet a transition's rows and sort after them.
FOLLOWUP_SEQ_BASE = 1_000_000
_SETTLED = tuple(sorted(s.value for s in SETTLED_STATES))
_BATCH = 200
C, E, F = models.Case, models.CaseEvent, models.FollowUp


async def closing_seq(session: AsyncSession, case_id: str) -> int | None:
    """The seq of the event that closed the case (its latest arrival in a settled state)."""
    query = select(E.seq).where(
        E.case_id == case_id,
        E.to_state.in_(_SETTLED),
        (E.from_state.is_(None)) | (E.from_state.not_in(_SETTLED)),
    )
    seqs = list((await session.execute(query.order_by(E.seq.desc()).limit(1))).scalars())
    return seqs[0] if seqs else None


async def ask_due(db: Database, settings: Settings, *, now: datetime | None = None) -> int:
    """Queue the question for every case settled ``followup_after_days`` ago, within ``followup_window_days``
    before that, and not asked since that closure; returns how many were asked. Batches of ``_BATCH`` cases,
    each in a transaction of its own, until none is left: a day's closures of every centre fit in one run."""
    if settings.followup_after_days <= 0:
        return 0
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=settings.followup_after_days)
    oldest = cutoff - timedelta(days=settings.followup_window_days)
    asked, after = 0, None
    while True:  # in closure order, each batch after the last one's final case: skipped cases are not met again
        found, done, after = await _ask_batch(db, oldest=oldest, cutoff=cutoff, after=after, now=now)
        asked += done
        if found < _BATCH:
            return asked


def due_query(*, oldest: datetime, cutoff: datetime, after: tuple[datetime | None, str] | None) -> Select[models.Case]:
    """Cases closed in ``(oldest, cutoff]`` (after the case ``after``) not asked since that closure, in closure
    order: a range of ``ix_cases_closed_at``. Whether each is still settled is checked by the caller: with the
    status in the query, SQLite (no statistics) would read the status index's range of every year instead."""
    not_asked = ~exists().where(and_(F.case_id == C.case_id, F.closed_at == C.closed_at))
    query = select(C).where(C.closed_at > oldest, C.closed_at <= cutoff, not_asked)
    if after is not None:  # compared column by column, so that the values take the columns' types (UTC)
        at, case_id = after
        query = query.where(or_(C.closed_at > at, and_(C.closed_at == at, C.case_id > case_id)))
    return query.order_by(C.closed_at, C.case_id).limit(_BATCH)


async def _ask_batch(
    db: Database, *, oldest: datetime, cutoff: datetime, after: tuple[datetime | None, str] | None, now: datetime
) -> tuple[int, int, tuple[datetime | None, str] | None]:
    """One batch of the closures due (after the case ``after``, if given): how many cases were found, how many
    of them were asked, and the last one's place in the order."""
    asked = 0
    async with db.session() as session:
        due = list((await session.execute(due_query(oldest=oldest, cutoff=cutoff, after=after))).scalars())
        for case in due:
            if case.status not in _SETTLED:  # reopened since
                continue
            seq = await closing_seq(session, case.case_id)
            if seq is None or case.closed_at is None:
                continue
            row = {"case_id": case.case_id, "closed_seq": seq, "closed_at": case.closed_at, "asked_at": now}
            inserted = await session.execute(insert_ignoring_duplicates(session, F, row, ["case_id", "closed_seq"]))
            if not inserted.rowcount:  # type: ignore[attr-defined]
                continue  # another worker asked, or this closure was asked before under an older closed_at
            await queue_notifications(
                session,
                case_id=case.case_id,
                seq=FOLLOWUP_SEQ_BASE + seq,
                event=FOLLOWUP_EVENT,
                state=case.status,
                audiences=[Audience.COMPLAINANT],
                agencies=[],
                expected_by=None,
                channels=list(case.preferred_channels or []) or ["web"],
            )
            asked += 1
            log.info("followup_asked", case_id=case.case_id, closed_seq=seq)
        last = (due[-1].closed_at, due[-1].case_id) if due else None
    return len(due), asked, last


async def run(db: Database, settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Ask what is due every ``followup_poll_seconds`` until stopped; a failed round is logged and retried."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await ask_due(db, settings)
        except Exception as exc:  # the database may be restarting: keep the loop (and the worker) alive
            log.warning("followup_round_failed", error=type(exc).__name__)
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.followup_poll_seconds)
        except TimeoutError:
            pass


def start(db: Database, settings: Settings) -> asyncio.Task[None] | None:
    """Run the job in a task of the running loop (the worker's), if follow-ups are configured."""
    if settings.followup_after_days <= 0:
        return None
    return asyncio.create_task(run(db, settings), name="rongtuk-followup")
