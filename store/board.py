"""The case's board columns copied onto its agency tasks, so that an agency's board is one ordered range.

The agency filter is on ``agency_tasks`` and the board's order on ``cases`` (urgent first, then by deadline):
no index spans both, so every agency board page read all the agency's open tasks, looked each case up and
sorted them (110-440 ms at 1M cases, docs/performance.md). Each task row therefore keeps a copy of its case's
priority, deadline, status and filter columns (``models.BOARD_COPIES``), written by the projection in the same
transaction as the case row, and ``ix_agency_tasks_board`` orders the open tasks of each agency as the board
does (store/queries.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import BOARD_COPIES, AgencyTask, Case

__all__ = ["case_copies", "sync_agency_tasks"]

# The copies other than the join key itself.
_COPIES: tuple[tuple[str, str], ...] = tuple((task, case) for task, case in BOARD_COPIES if task != "case_id")


def case_copies(case_id: str, snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """The copies as values of a task row's upsert, written with the case row's snapshot.

    The projection writes a case's tasks only when the case row holds this very transition (it leaves them
    alone when the row is ahead), so the snapshot's values are the row's; the columns only intake writes
    (province, region) are read from the row, as that same transaction sees it.
    """
    return {
        task: snapshot[case]
        if case in snapshot
        else select(getattr(Case, case)).where(Case.case_id == case_id).scalar_subquery()
        for task, case in _COPIES
    }


async def sync_agency_tasks(session: AsyncSession, case_id: str) -> None:
    """Copy the case row's board columns onto all of its task rows, as they are in the database now.

    The projection writes the copies with each task from the same snapshot as the case row; this is for the
    writes that may not have moved the case row (a retried or older transition, whose snapshot may be behind
    the row) and for rows written some other way.
    """
    row = (
        await session.execute(select(*(getattr(Case, c) for _, c in _COPIES)).where(Case.case_id == case_id))
    ).one_or_none()
    if row is None:
        return
    values = {task: value for (task, _), value in zip(_COPIES, row, strict=True)}
    await session.execute(update(AgencyTask).where(AgencyTask.case_id == case_id).values(**values))
