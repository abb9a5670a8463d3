"""The complainant's answer to "was it fixed?": recorded, and a "not fixed" reopens the case when it can.

Reopening uses the process table's own ``reopen`` transition (a supervisor's action), sent on the
complainant's behalf by the follow-up service, with the answer as the reason: the timeline shows it like any
reopening. When the table refuses (a case closed after stage 2, the reopen limit reached) or the case's
workflow has already ended, the answer is kept for a supervisor to decide, and the supervisors are told.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

import structlog
from fastapi import Request
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from activities.projection import queue_notifications
from api.casework import run_action
from api.errors import AppError
from delivery.templates import FOLLOWUP_STAFF_EVENT
from followup.job import FOLLOWUP_SEQ_BASE
from store import models
from store.db import Database, release
from workflows.process import Actor, Audience, Role, State

log = structlog.get_logger(__name__)

F = models.FollowUp
# Who reopens on the complainant's answer: the reopen transition is a supervisor's, and this is the rule the
# centre's supervisors set by configuring follow-ups.
FOLLOWUP_ACTOR = Actor(id="system:followup", role=Role.SUPERVISOR)


class Answer(StrEnum):
    fixed = "fixed"
    not_fixed = "not_fixed"


class Outcome(StrEnum):
    recorded = "recorded"
    reopened = "reopened"
    for_supervisor = "for_supervisor"


async def latest(session: AsyncSession, case_id: str) -> models.FollowUp | None:
    """The case's latest follow-up question, if one was asked."""
    rows = await session.execute(select(F).where(F.case_id == case_id).order_by(F.closed_seq.desc()).limit(1))
    return rows.scalars().first()


def _not_asked() -> AppError:
    return AppError(
        status=409,
        code="no_followup",
        message="No follow-up question is waiting for an answer on this case.",
        message_th="เรื่องนี้ไม่มีคำถามติดตามผลที่รอคำตอบ",
    )


def _answered() -> AppError:
    return AppError(
        status=409,
        code="followup_answered",
        message="This follow-up question has already been answered.",
        message_th="คำถามติดตามผลนี้ได้รับคำตอบแล้ว",
    )


async def answer(
    *,
    db: Database,
    session: AsyncSession,
    client: Client,
    request: Request,
    case: models.Case,
    given: Answer,
    comment: str | None,
) -> models.FollowUp:
    """Record the answer to the case's open question and act on it (reopen, or leave it for a supervisor)."""
    question = await latest(session, case.case_id)
    if question is None:
        raise _not_asked()
    if question.answer is not None:
        raise _answered()
    answered_at = datetime.now(UTC)  # before the reopening it causes, as the timeline tells it
    outcome = Outcome.recorded
    if given is Answer.not_fixed and case.status in {State.CLOSED.value, State.CLOSED_STAGE2.value}:
        outcome = await _reopen(
            session=session, client=client, request=request, case=case, comment=comment, question_id=question.id
        )
    await release(session)  # one connection at a time: the request's read ends before the write's
    async with db.session() as write:
        row = await write.get(F, question.id, with_for_update=not db.is_sqlite)
        assert row is not None
        if row.answer is not None:
            raise _answered()
        row.answer, row.answered_at, row.comment, row.outcome = given.value, answered_at, comment, outcome.value
        if outcome is Outcome.for_supervisor:
            await queue_notifications(
                write,
                case_id=case.case_id,
                seq=FOLLOWUP_SEQ_BASE + row.closed_seq,
                event=FOLLOWUP_STAFF_EVENT,
                state=case.status,
                audiences=[Audience.SUPERVISOR],
                agencies=[],
                expected_by=None,
                channels=[],
            )
    log.info("followup_answered", case_id=case.case_id, answer=given.value, outcome=outcome.value)
    return row


async def _reopen(
    *,
    session: AsyncSession,
    client: Client,
    request: Request,
    case: models.Case,
    comment: str | None,
    question_id: int,
) -> Outcome:
    reason = "The complainant answered the follow-up question: not fixed."
    if comment:
        reason = f"{reason} {comment}"[:1000]

    try:
        # Keyed by the question: a retry of the answer never reopens twice.
        result = await run_action(
            case=case,
            action="reopen",
            actor=FOLLOWUP_ACTOR,
            body={"reason": reason},
            session=session,
            client=client,
            request=request,
            key=f"followup-{question_id}",
        )
    except AppError as exc:
        if exc.status in {409, 403}:
            log.info("followup_reopen_refused", case_id=case.case_id, code=exc.code)
            return Outcome.for_supervisor
        raise  # the engine is away (503): nothing recorded, the complainant can answer again
    if result.status_code in {403, 409}:
        log.info("followup_reopen_refused", case_id=case.case_id, status=result.status_code)
        return Outcome.for_supervisor
    # 200, or 202: on record at Temporal and applied as soon as the case's worker takes it.
    return Outcome.reopened


async def counts(session: AsyncSession, *, since: datetime | None = None) -> dict[str, int]:
    """Follow-up totals for reports: asked, answered, fixed, not fixed, and what the answers did."""
    where = [F.asked_at >= since] if since else []
    rows = (
        await session.execute(select(F.answer, F.outcome, func.count()).where(*where).group_by(F.answer, F.outcome))
    ).all()
    out = {"asked": 0, "answered": 0, "fixed": 0, "not_fixed": 0, "reopened": 0, "for_supervisor": 0}
    for given, outcome, n in rows:
        out["asked"] += n
        if given is not None:
            out["answered"] += n
            out[given] += n
        if outcome in {Outcome.reopened.value, Outcome.for_supervisor.value}:
            out[outcome] += n
    return out


async def waiting_for_supervisor(session: AsyncSession) -> list[models.FollowUp]:
    """ "Not fixed" answers that could not reopen their case: a supervisor decides."""
    query = select(F).where(F.outcome == Outcome.for_supervisor.value).order_by(F.answered_at.desc()).limit(500)
    return list((await session.execute(query)).scalars())
