"""What the notification outbox and the partner webhook outbox share: statuses, claiming, backoff."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from config.settings import Settings
from delivery.gateways import DeliveryError
from store import models

PENDING, SENDING, SENT, FAILED, STANDBY, SKIPPED = "pending", "sending", "sent", "failed", "standby", "skipped"
EXPIRED = "expired"  # too old to send when a dispatcher got to it: in the inbox only
_DUE = text(models.DUE_SQL)


async def claim_due(
    session: AsyncSession,
    table: type[models.Notification] | type[models.WebhookDelivery],
    *,
    token: str,
    now: datetime,
    settings: Settings,
    skip_locked: bool,
) -> list[int]:
    """Mark up to ``limit`` due rows of an outbox table as being sent under ``token``; returns their ids.

    One UPDATE: on PostgreSQL its subquery skips rows another dispatcher has locked, on SQLite the statement
    holds the one write lock, so no row is claimed twice either way.
    """
    due = due_rows(table, now=now, limit=settings.delivery_batch_size, skip_locked=skip_locked).scalar_subquery()
    result = await session.execute(
        update(table)
        .where(table.id.in_(due))
        .values(
            status=SENDING,
            claim_token=token,
            claimed_until=now + timedelta(seconds=settings.delivery_lease_seconds),
            attempts=table.attempts + 1,
        )
        .returning(table.id)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars())


def due_rows(
    table: type[models.Notification] | type[models.WebhookDelivery], *, now: datetime, limit: int, skip_locked: bool
) -> Select[int]:
    """The ids of the oldest rows due for a send: pending (and not waiting out a backoff), or claimed by a
    dispatcher whose lease ran out; rows another dispatcher holds locked are skipped (PostgreSQL)."""
    due = (
        select(table.id)
        .where(
            _DUE,  # implied by what follows; said as a constant so that the partial index serves the claim
            or_(
                and_(table.status == PENDING, or_(table.next_attempt_at.is_(None), table.next_attempt_at <= now)),
                # A claim whose dispatcher died: taken again (the idempotency key stops a double send).
                and_(table.status == SENDING, table.claimed_until < now),
            ),
        )
        .order_by(table.id)
        .limit(limit)
    )
    return due.with_for_update(skip_locked=True) if skip_locked else due


def backoff_seconds(attempts: int, *, base: float, cap: float) -> float:
    """Wait before the next try after ``attempts`` tries: doubling from ``base``, at most ``cap``."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


def will_retry(row: models.OutboxRow, error: DeliveryError | None, settings: Settings) -> bool:
    """Whether a failed attempt is tried again: a transient failure, with attempts left."""
    return error is not None and error.transient and row.attempts < settings.delivery_max_attempts


def settle(
    row: models.OutboxRow, error: DeliveryError | None, *, retry: bool, now: datetime, settings: Settings
) -> None:
    """Apply an attempt's outcome to its outbox row: sent, due again after the backoff, or failed."""
    row.claim_token, row.claimed_until = None, None
    if error is None:
        row.status, row.sent_at, row.last_error = SENT, now, None
        return
    row.last_error = error.error[:64]
    if retry:
        wait = backoff_seconds(
            row.attempts, base=settings.delivery_backoff_seconds, cap=settings.delivery_backoff_max_seconds
        )
        row.status = PENDING
        row.next_attempt_at = now + timedelta(seconds=max(wait, error.retry_after or 0))
    else:
        row.status = FAILED


def attempt_entry(
    *,
    at: datetime,
    attempt: int,
    result: str,
    error: DeliveryError | None,
    status_code: int | None,
    duration_ms: int,
    **identity: Any,
) -> models.DeliveryAttempt:
    """The delivery log's row for one attempt (``identity``: what was sent where, never to whom)."""
    return models.DeliveryAttempt(
        **identity,
        attempt=attempt,
        at=at,
        ok=error is None,
        result=result,
        status_code=status_code,
        error=error.error[:64] if error else None,
        duration_ms=duration_ms,
    )
