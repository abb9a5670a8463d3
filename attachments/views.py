"""The case and tracking views, completed with what lives beside the workflow: files and follow-up answers."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from attachments import service
from store import models
from workflows.process import Actor


async def with_attachments(
    session: AsyncSession,
    case: models.Case,
    actor: Actor,
    view: dict[str, Any],
    events: list[models.CaseEvent],
    *,
    prefix: str,
) -> dict[str, Any]:
    """``view`` with the files ``actor`` may see listed and on the timeline (links under ``prefix``)."""
    listed = await service.listed(session, case, actor, prefix=f"{prefix}/attachments")
    if not listed and "attachments" not in view:
        return view
    view["attachments"] = listed
    view["timeline"] = service.merged_timeline(view["timeline"], service.timeline_entries(listed, events))
    return view
