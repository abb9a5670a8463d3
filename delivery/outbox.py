"""What the notification outbox and the partner webhook outbox share: statuses, claiming, backoff."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store import models

PENDING, SENDING, SENT, FAILED, STANDBY, SKIPPED = "pending", "sending", "sent", "failed", "standby", "skipped"


async def claim_due(
    session: AsyncSession,
    table: type[models.Notification] | type[models.WebhookDelivery],
    *,
    token: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    skip_locked: bool,
) -> list[int]:
    """Mark up to ``limit`` due rows of an outbox table as being sent under ``token``; returns their ids.

    One UPDATE: on PostgreSQL its subquery skips rows another dispatcher has locked, on SQLite the statement
    holds the one write lock, so no row is claimed twice either way.
    """
    due = (
        select(table.id)
        .where(
            or_(
                and_(table.status == PENDING, or_(table.next_attempt_at.is_(None), table.next_attempt_at <= now)),
                # A claim whose dispatcher died: taken again (the idempotency key stops a double send).
                and_(table.status == SENDING, table.claimed_until < now),
            )
        )
        .order_by(table.id)
        .limit(limit)
    )
    if skip_locked:
        due = due.with_for_update(skip_locked=True)
    result = await session.execute(
        update(table)
        .where(table.id.in_(due.scalar_subquery()))
        .values(status=SENDING, claim_token=token, claimed_until=now + lease, attempts=table.attempts + 1)
        .returning(table.id)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars())


def backoff_seconds(attempts: int, *, base: float, cap: float) -> float:
    """Wait before the next try after ``attempts`` tries: doubling from ``base``, at most ``cap``."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))
