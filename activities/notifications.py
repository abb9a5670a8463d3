"""Version 1 of the notification step: a regular activity after the projection, in a second transaction.

Since ``record_transition`` the outbox rows of a transition are written with its read-model rows, in one
transaction (activities/projection.py). This activity stays registered so that cases whose histories were
recorded before keep replaying and finish the step they were in.
"""

from __future__ import annotations

import structlog
from temporalio import activity

from activities.projection import queue_notifications
from store.db import Database
from workflows.models import NotificationRequest

log = structlog.get_logger(__name__)


class NotificationActivities:
    """Activities that tell complainants, agencies and supervisors what happened (version 1)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name="notify")
    async def notify(self, req: NotificationRequest) -> int:
        """Record one outbox row per recipient of this transition; returns how many the transition has."""
        async with self.db.session() as session:
            count = await queue_notifications(
                session,
                case_id=req.case_id,
                seq=req.seq,
                event=req.event,
                state=req.state.value,
                audiences=req.audiences,
                agencies=req.agencies,
                expected_by=req.expected_by,
            )
        log.info("notification_queued", case_id=req.case_id, seq=req.seq, event_name=req.event, rows=count)
        return count
