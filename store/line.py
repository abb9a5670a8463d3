"""The LINE conversations' rows: read one (with its row lock on PostgreSQL) and write it back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Case, LineConversation

SEEN_EVENTS_KEPT = 50  # LINE redelivers an event within hours, among few others from the same user


@dataclass
class ConversationRow:
    """A conversation as stored: stage, draft (plain JSON), recent webhook event ids, when last touched."""

    state: str = "idle"
    draft: dict[str, Any] = field(default_factory=dict)
    seen_events: list[str] = field(default_factory=list)
    updated_at: datetime | None = None


async def load_conversation(session: AsyncSession, *, line_user_id: str) -> ConversationRow:
    """The user's conversation (a fresh one if there is none), locked for this transaction on PostgreSQL."""
    row = (
        await session.execute(
            select(LineConversation).where(LineConversation.line_user_id == line_user_id).with_for_update()
        )
    ).scalar_one_or_none()
    if row is None:
        return ConversationRow()
    return ConversationRow(row.state, dict(row.draft or {}), list(row.seen_events or []), row.updated_at)


async def save_conversation(
    session: AsyncSession,
    *,
    line_user_id: str,
    state: str,
    draft: dict[str, Any],
    seen_events: list[str],
    now: datetime,
) -> None:
    """Write the conversation back (insert or update); keeps only the latest event ids."""
    row = await session.get(LineConversation, line_user_id)
    kept = seen_events[-SEEN_EVENTS_KEPT:]
    if row is None:
        session.add(
            LineConversation(line_user_id=line_user_id, state=state, draft=draft, seen_events=kept, updated_at=now)
        )
    else:
        row.state, row.draft, row.seen_events, row.updated_at = state, draft, kept, now


async def cases_of_line_user(session: AsyncSession, *, line_user_id: str, limit: int = 5) -> list[Case]:
    """The user's latest cases filed with their LINE account as the contact, newest first."""
    query = (
        select(Case).where(Case.complainant_line_user_id == line_user_id).order_by(Case.received_at.desc()).limit(limit)
    )
    return list((await session.execute(query)).scalars())
