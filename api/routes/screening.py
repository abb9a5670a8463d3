"""Screening a case for the officer: completeness, suggested category and agencies, duplicates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentActor, CurrentCase, SessionDep, SettingsDep
from api.errors import forbidden
from api.responses import ScreeningOut
from screening.completeness import Facts
from screening.duplicates import DuplicateIndex, IndexKeeper
from screening.service import Screener
from workflows.process import Role

router = APIRouter(prefix="/api/v1/cases", tags=["screening"])
_STAFF = frozenset({Role.OFFICER, Role.SUPERVISOR})
# The duplicate index is rebuilt in full this often, in the background (screening/duplicates.py IndexKeeper).
_REBUILD = timedelta(minutes=30)


def _screener(request: Request, settings: Any) -> Screener:
    # Loaded on first use, not at start-up: the API serves everything else without the model.
    screener = getattr(request.app.state, "screener", None)
    if screener is None:
        screener = request.app.state.screener = Screener.from_settings(settings)
    return screener


async def _duplicate_index(request: Request, session: SessionDep, window_days: int) -> DuplicateIndex:
    keeper: IndexKeeper | None = getattr(request.app.state, "duplicate_index", None)
    if keeper is None:
        keeper = request.app.state.duplicate_index = IndexKeeper(
            request.app.state.db, window_days=window_days, rebuild_after=_REBUILD
        )
    return await keeper.get(session, now=datetime.now(UTC))


@router.get("/{case_id}/screening", response_model=ScreeningOut, response_model_exclude_unset=True)
async def case_screening(
    case: CurrentCase, actor: CurrentActor, session: SessionDep, settings: SettingsDep, request: Request
) -> dict[str, Any]:
    """Completeness, suggested category and agencies with confidence and reasons, and likely duplicates."""
    if actor.role not in _STAFF:
        raise forbidden(
            "Only PSC officers and supervisors screen cases.", "เฉพาะเจ้าหน้าที่และผู้บังคับบัญชาของศูนย์ฯ ที่คัดกรองเรื่องได้"
        )
    screener = _screener(request, settings)
    index = await _duplicate_index(request, session, settings.duplicate_window_days)
    facts = Facts.from_case(case)
    return await run_in_threadpool(screener.screen, facts, index=index, case_id=case.case_id)
