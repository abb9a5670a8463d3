"""Screening a case for the officer: completeness, suggested category and agencies, duplicates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentActor, CurrentCase, SessionDep
from api.errors import forbidden
from api.responses import ScreeningOut
from screening.completeness import Facts
from screening.duplicates import IndexKeeper
from screening.service import ScreenerKeeper
from workflows.process import Role

router = APIRouter(prefix="/api/v1/cases", tags=["screening"])
_STAFF = frozenset({Role.OFFICER, Role.SUPERVISOR})


@router.get("/{case_id}/screening", response_model=ScreeningOut, response_model_exclude_unset=True)
async def case_screening(
    case: CurrentCase, actor: CurrentActor, session: SessionDep, request: Request
) -> dict[str, Any]:
    """Completeness, suggested category and agencies with confidence and reasons, and likely duplicates.
    The model is the process's ``ScreenerKeeper``'s (loaded at the first screening, in a thread; a model saved
    later is loaded again in the background) and the duplicate index its ``IndexKeeper``'s."""
    if actor.role not in _STAFF:
        raise forbidden(
            "Only PSC officers and supervisors screen cases.", "เฉพาะเจ้าหน้าที่และผู้บังคับบัญชาของศูนย์ฯ ที่คัดกรองเรื่องได้"
        )
    models: ScreenerKeeper = request.app.state.screener
    screener = await models.get()
    keeper: IndexKeeper = request.app.state.duplicate_index
    index = await keeper.get(session, now=datetime.now(UTC))
    facts = Facts.from_case(case)
    return await run_in_threadpool(screener.screen, facts, index=index, case_id=case.case_id)
