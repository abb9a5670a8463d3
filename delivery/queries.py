"""Reads for the delivery log, a case's messages, the citizen's inbox and the backlog metrics."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import BindParameter, Select, bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from store import models
from workflows.process import Audience

N = models.Notification
A = models.DeliveryAttempt
T = models.DeliveryTally
# Rows a dispatcher still has to deal with (standby rows wait on an earlier channel: not backlog of their own).
BACKLOG_STATUSES = models.DUE_STATUSES


@dataclass(frozen=True)
class AttemptPage:
    items: list[models.DeliveryAttempt]
    total: int
    summary: list[tuple[str, str, int]]  # (gateway, result, count) over the whole filtered log


async def list_attempts(
    session: AsyncSession,
    *,
    case_id: str | None = None,
    gateway: str | None = None,
    result: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> AttemptPage:
    """The delivery log, newest first, filtered by case, gateway and result."""
    conditions = [
        c
        for c in (
            A.case_id == case_id if case_id else None,
            A.gateway == gateway if gateway else None,
            A.result == result if result else None,
        )
        if c is not None
    ]
    items = (
        await session.execute(
            select(A)
            .where(*conditions)
            .order_by(A.at.desc(), A.id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
    ).scalars()
    summary = (
        await session.execute(
            select(A.gateway, A.result, func.count()).where(*conditions).group_by(A.gateway, A.result)
        )
    ).all()
    return AttemptPage(
        items=list(items),
        total=sum(n for _g, _r, n in summary),
        summary=sorted((g, r, int(n)) for g, r, n in summary),
    )


async def case_notifications(
    session: AsyncSession, case_id: str
) -> list[tuple[models.Notification, list[models.DeliveryAttempt]]]:
    """Every outbox row of a case with its attempts, in the order they were written."""
    rows = list((await session.execute(select(N).where(N.case_id == case_id).order_by(N.seq, N.id))).scalars())
    log = (
        await session.execute(select(A).where(A.case_id == case_id, A.notification_id.is_not(None)).order_by(A.id))
    ).scalars()
    by_row: dict[int, list[models.DeliveryAttempt]] = {r.id: [] for r in rows}
    for attempt in log:
        if attempt.notification_id is not None:
            by_row.setdefault(attempt.notification_id, []).append(attempt)
    return [(row, by_row[row.id]) for row in rows]


async def inbox_rows(session: AsyncSession, case_id: str) -> list[list[models.Notification]]:
    """The complainant's messages of a case: the outbox rows of each event (one per channel), oldest first."""
    rows = (
        await session.execute(
            select(N).where(N.case_id == case_id, N.audience == Audience.COMPLAINANT.value).order_by(N.seq, N.id)
        )
    ).scalars()
    grouped: dict[int, list[models.Notification]] = {}
    for row in rows:
        grouped.setdefault(row.seq, []).append(row)
    return list(grouped.values())


# How far the staff inbox counts (and pages) before it says "more than this": the newest 10,000 messages.
STAFF_INBOX_CAP = 10_000


@dataclass(frozen=True)
class StaffInboxPage:
    rows: list[tuple[models.Notification, models.Case]]
    total: int  # exact up to the cap; past it, the cap ("10,000+")
    total_exact: bool


def staff_messages(recipient: str, limit: int) -> Select[int, datetime]:
    """One recipient's newest staff messages (ids and dates), read from ``ix_notifications_recipient`` in order.

    A staff recipient (an agency code, "<code>:head", "supervisors") is never the complainant's ("complainant"),
    so the recipient alone selects staff rows: the index answers without reading the table."""
    return (
        select(N.id, N.created_at)
        .where(N.recipient == recipient)
        .order_by(N.recipient.desc(), N.created_at.desc(), N.id.desc())
        .limit(limit)
    )


def staff_message_count(recipient: str, cap: int) -> Select[int]:
    """How many staff messages ``recipient`` has, counted to ``cap`` + 1 over the same ordered range as the page.

    Without the order, PostgreSQL's generic plan (a prepared statement's, after five runs) scanned the table for
    a recipient with no rows: 168 ms at a million kept rows (bench.outbox_bench)."""
    return select(func.count()).select_from(staff_messages(recipient, cap + 1).subquery())


async def staff_inbox_rows(
    session: AsyncSession, *, recipients: list[str], page: int, page_size: int, cap: int = STAFF_INBOX_CAP
) -> StaffInboxPage:
    """Staff messages addressed to ``recipients`` (agency codes, "<code>:head", "supervisors"), newest first.

    Each recipient's newest rows come from its own range of ``ix_notifications_recipient`` and are merged here
    (one sorted read per recipient, where an ``IN`` over them read and sorted every row they had); the count
    stops at ``cap``, and so do the pages."""
    if Audience.COMPLAINANT.value in recipients:
        raise ValueError("the staff inbox is not for the complainant's messages")
    start, end = (page - 1) * page_size, page * page_size
    counted = 0
    for recipient in recipients:
        counted += int(await session.scalar(staff_message_count(recipient, cap)) or 0)
    if start >= cap:
        return StaffInboxPage([], min(counted, cap), counted <= cap)
    newest = [row for recipient in recipients for row in await session.execute(staff_messages(recipient, end))]
    newest.sort(key=lambda row: (row.created_at, row.id), reverse=True)
    ids = [row.id for row in newest[start:end]]
    found: dict[int, tuple[models.Notification, models.Case]] = {}
    if ids:
        joined = select(N, models.Case).join(models.Case, models.Case.case_id == N.case_id).where(N.id.in_(ids))
        found = {n.id: (n, c) for n, c in await session.execute(joined)}
    return StaffInboxPage([found[i] for i in ids if i in found], min(counted, cap), counted <= cap)


class DeliveryCollector(Collector):
    """The outbox backlog and the delivery log's totals, read at scrape time."""

    def __init__(
        self,
        backlog: dict[str, int],
        oldest_age: float,
        failed: dict[str, int],
        attempts: list[tuple[str, str, int]],
    ) -> None:
        self._backlog, self._oldest_age, self._failed, self._attempts = backlog, oldest_age, failed, attempts

    def collect(self) -> Iterable[Metric]:
        backlog = GaugeMetricFamily(
            "rongtuk_notifications_backlog",
            "Notifications waiting to be delivered (pending or being sent), by channel.",
            labels=["channel"],
        )
        for channel, n in sorted(self._backlog.items()):
            backlog.add_metric([channel], n)
        yield backlog
        yield GaugeMetricFamily(
            "rongtuk_notifications_oldest_pending_seconds",
            "Age of the oldest notification not delivered yet (0 when none waits).",
            value=self._oldest_age,
        )
        failed = GaugeMetricFamily(
            "rongtuk_notifications_failed",
            "Notifications that failed for good on their channel (the web inbox still has them), by channel.",
            labels=["channel"],
        )
        for channel, n in sorted(self._failed.items()):
            failed.add_metric([channel], n)
        yield failed
        attempts = CounterMetricFamily(
            "rongtuk_delivery_attempts",
            "Delivery attempts recorded in the delivery log, by gateway and result.",
            labels=["gateway", "result"],
        )
        for gateway, result, n in self._attempts:
            attempts.add_metric([gateway, result], n)
        yield attempts


def scraped_counts() -> Select[str, str, int]:
    """The notifications waiting or failed for good, by status and channel: a range of the status index each.

    The statuses are literals in the statement: a prepared statement's generic plan can then read the index's
    ranges too, where with parameters it read the whole table (bench.outbox_bench)."""
    scraped: BindParameter[list[str]] = bindparam("scraped", [*BACKLOG_STATUSES, "failed"], literal_execute=True)
    return select(N.status, N.channel, func.count()).where(N.status.in_(scraped)).group_by(N.status, N.channel)


async def delivery_collector(session: AsyncSession, *, now: datetime) -> DeliveryCollector:
    """Read the delivery figures for one scrape."""
    counts = (await session.execute(scraped_counts())).all()
    oldest = (await session.execute(select(func.min(N.created_at)).where(text(models.DUE_SQL)))).scalar_one_or_none()
    if isinstance(oldest, str):  # SQLite's min() over the column comes back as text
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    # The database's running tally of the log (migration 0018), not a count of the log at every scrape.
    attempts = (await session.execute(select(T.gateway, T.result, func.sum(T.n)).group_by(T.gateway, T.result))).all()
    backlog: dict[str, int] = {}
    failed: dict[str, int] = {}
    for status, channel, n in counts:
        target = failed if status == "failed" else backlog
        target[channel] = target.get(channel, 0) + int(n)
    return DeliveryCollector(
        backlog,
        max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0,
        failed,
        sorted((g, r, int(n)) for g, r, n in attempts),
    )
