"""The officers' screening queue (``store.queries.screening_queue``): one order over both queue states, pages
that add up to the whole queue, and the view of the cases one officer holds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete

from config.settings import Settings
from store import models
from store.db import Database
from store.queries import screening_queue
from workflows.process import State

QUEUE = [State.RECEIVED.value, State.SCREENING.value]


async def test_pages_follow_one_order_over_both_states_and_the_held_view(db: Database, settings: Settings) -> None:
    calendar = settings.calendar()
    tag = uuid.uuid4().hex[:8]
    officer, other = f"officer-{tag}", f"other-{tag}"
    now = datetime.now(UTC).replace(microsecond=0)
    # (status, priority, due_at offset in hours or None, received days ago, holder)
    shapes = [
        ("received", "normal", 30, 1, officer),
        ("screening", "normal", -5, 2, officer),  # late: before every normal case due later
        ("screening", "urgent", 200, 1, officer),  # urgent: first, however late its deadline
        ("received", "normal", None, 9, officer),  # no deadline (paused): after every deadline
        ("received", "normal", 30, 3, officer),  # same deadline as the first, received earlier: before it
        ("screening", "urgent", None, 1, officer),
        ("accepted", "urgent", -50, 1, officer),  # left the queue: never shown, though its claim stays
        ("received", "normal", 10, 1, other),
        ("screening", "normal", 10, 1, None),
    ]
    ids = [f"RT-Q{tag}-{i}" for i in range(len(shapes))]
    async with db.session() as session:
        for case_id, (status, priority, due, days, holder) in zip(ids, shapes, strict=True):
            session.add(
                models.Case(
                    case_id=case_id,
                    tracking_code=case_id.replace("-", "")[-16:],
                    workflow_id=f"complaint-{case_id}",
                    status=status,
                    channel="web",
                    description="-",
                    priority=priority,
                    agencies=[],
                    received_at=now - timedelta(days=days),
                    updated_at=now,
                    due_at=None if due is None else now + timedelta(hours=due),
                )
            )
            if holder is not None:
                session.add(models.QueueClaim(case_id=case_id, officer_id=holder, claimed_at=now))
    try:
        expected = [ids[i] for i in (2, 5, 1, 4, 0, 3)]
        async with db.session() as session:
            pages = [
                await screening_queue(
                    session, now=now, calendar=calendar, states=QUEUE, held_by=officer, page=p, page_size=4
                )
                for p in (1, 2, 3)
            ]
            assert [[i.case_id for i in p.items] for p in pages] == [expected[:4], expected[4:], []]
            assert {p.total for p in pages} == {6}
            assert [i.overdue for i in pages[0].items] == [False, False, True, False]
            late = pages[0].items[2]
            assert late.due_at is not None
            assert late.working_days_late == calendar.working_days_between(late.due_at, now)

            theirs = await screening_queue(session, now=now, calendar=calendar, states=QUEUE, held_by=other)
            assert [i.case_id for i in theirs.items] == [ids[7]] and theirs.total == 1

            everyone = await screening_queue(session, now=now, calendar=calendar, states=QUEUE, page_size=10_000)
            listed = [i.case_id for i in everyone.items]
            mine = [c for c in listed if c.startswith(f"RT-Q{tag}-")]
            assert set(mine) == {ids[i] for i in (0, 1, 2, 3, 4, 5, 7, 8)} and ids[6] not in listed
            assert everyone.total == len(listed), "the count and the rows agree"
            # Other tests' queue cases may share the database; the order holds across all of them.
            urgent = [i.priority == "urgent" for i in everyone.items]
            assert urgent == sorted(urgent, reverse=True)
    finally:
        async with db.session() as session:
            await session.execute(delete(models.QueueClaim).where(models.QueueClaim.case_id.in_(ids)))
            await session.execute(delete(models.Case).where(models.Case.case_id.in_(ids)))
