"""Screening a case for the officer: completeness, suggested category and agencies, duplicates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentActor, CurrentCase, SessionDep, SettingsDep
from api.errors import forbidden
from screening.completeness import Facts
from screening.duplicates import load_index
from screening.service import Screener
from workflows.process import Role

router = APIRouter(prefix="/api/v1/cases", tags=["screening"])
_STAFF = frozenset({Role.OFFICER, Role.SUPERVISOR})


def _screener(request: Request, settings: Any) -> Screener:
    # Loaded on first use, not at start-up: the API serves everything else without the model.
    screener = getattr(request.app.state, "screener", None)
    if screener is None:
        screener = request.app.state.screener = Screener.from_settings(settings)
    return screener


@router.get("/{case_id}/screening")
async def case_screening(
    case: CurrentCase, actor: CurrentActor, session: SessionDep, settings: SettingsDep, request: Request
) -> dict[str, Any]:
    """Completeness, suggested category and agencies with confidence and reasons, and likely duplicates."""
    if actor.role not in _STAFF:
        raise forbidden(
            "Only PSC officers and supervisors screen cases.", "เฉพาะเจ้าหน้าที่และผู้บังคับบัญชาของศูนย์ฯ ที่คัดกรองเรื่องได้"
        )
    screener = _screener(request, settings)
    index = await load_index(session, now=datetime.now(UTC), window_days=settings.duplicate_window_days)
    facts = Facts.from_case(case)
    return await run_in_threadpool(screener.screen, facts, index=index, case_id=case.case_id)
