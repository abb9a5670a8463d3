"""The case and tracking views, completed with what lives beside the workflow: files and follow-up answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.views import BANGKOK
from attachments import service
from delivery.templates import FOLLOWUP_EVENT, SIDE_EVENT_LABELS
from store import models
from workflows.process import SETTLED_STATES, Actor, Role

_SETTLED = frozenset(s.value for s in SETTLED_STATES)


async def _followups(session: AsyncSession, case_id: str, events: list[models.CaseEvent]) -> list[models.FollowUp]:
    """The case's follow-up questions. One is asked only of a case that was closed (``followup.job``: its
    ``closed_seq`` is the event that settled the case), so a case whose timeline never reached a settled state
    has none and is not asked for: most views, and every action's answer before the first closure, save the
    round trip."""
    if not any(e.to_state in _SETTLED for e in events):
        return []
    query = select(models.FollowUp).where(models.FollowUp.case_id == case_id).order_by(models.FollowUp.closed_seq)
    return list((await session.execute(query)).scalars())


def _entry(event: str, at: datetime, label: tuple[str, str], events: list[models.CaseEvent]) -> dict[str, Any]:
    seq = max((e.seq for e in events if e.at <= at), default=0)
    state = next((e.to_state for e in reversed(events) if e.seq <= seq), "received")
    return {
        "seq": seq,
        "event": event,
        "label_en": label[0],
        "label_th": label[1],
        "at": at.astimezone(BANGKOK).isoformat(),
        "state": state,
    }


def followup_entries(rows: list[models.FollowUp], events: list[models.CaseEvent]) -> list[dict[str, Any]]:
    """The follow-up questions and answers as timeline entries."""
    out = []
    for row in rows:
        out.append(_entry("followup_asked", row.asked_at, SIDE_EVENT_LABELS[FOLLOWUP_EVENT], events) | {"by": "system"})
        if row.answer and row.answered_at:
            label = ("Complainant: fixed", "ผู้ร้อง: แก้ไขแล้ว")
            if row.answer == "not_fixed":
                label = ("Complainant: not fixed", "ผู้ร้อง: ยังไม่ได้รับการแก้ไข")
            answered = _entry("followup_answered", row.answered_at, label, events)
            out.append(answered | {"by": Role.CITIZEN.value, "answer": row.answer, "outcome": row.outcome})
    return out


async def with_attachments(
    session: AsyncSession,
    case: models.Case,
    actor: Actor,
    view: dict[str, Any],
    events: list[models.CaseEvent],
    *,
    prefix: str,
) -> dict[str, Any]:
    """``view`` with the files ``actor`` may see (links under ``prefix``) and the follow-up, listed and on the
    timeline."""
    listed = await service.listed(session, case, actor, prefix=f"{prefix}/attachments")
    followups = await _followups(session, case.case_id, events)
    if listed or "attachments" in view:
        view["attachments"] = listed
    extra = service.timeline_entries(listed, events) + followup_entries(followups, events)
    if extra:
        view["timeline"] = service.merged_timeline(view["timeline"], extra)
    if followups and actor.role is Role.CITIZEN:
        last = followups[-1]
        view["followup"] = {
            "asked_at": last.asked_at.astimezone(BANGKOK).isoformat(),
            "answer": last.answer,
            "outcome": last.outcome,
            "answer_url": None if last.answer else f"{prefix}/followup",
        }
    return view
