"""The notification activity that every transition fires.

For now it writes the outbox (one row per transition, audience, channel and recipient) and logs; delivery
gateways (SMS, LINE, email) drain the outbox in a later issue. Rows never carry an address or a name: the
gateway resolves the recipient from the case when it sends.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select
from temporalio import activity

from activities.projection import insert_ignoring_duplicates
from store import models
from store.db import Database
from workflows.models import NotificationRequest
from workflows.process import Audience

log = structlog.get_logger(__name__)


class NotificationActivities:
    """Activities that tell complainants, agencies and supervisors what happened."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name="notify")
    async def notify(self, req: NotificationRequest) -> int:
        """Record one outbox row per recipient of this transition; returns how many the transition has."""
        async with self.db.session() as session:
            channels = (
                await session.execute(select(models.Case.preferred_channels).where(models.Case.case_id == req.case_id))
            ).scalar_one_or_none() or ["web"]
            rows: list[dict[str, Any]] = []
            for audience in req.audiences:
                rows.extend(
                    {
                        "case_id": req.case_id,
                        "seq": req.seq,
                        "event": req.event,
                        "state": req.state.value,
                        "audience": audience.value,
                        "channel": channel,
                        "recipient": recipient,
                        "expected_by": req.expected_by,
                        "created_at": datetime.now(UTC),
                        "status": "pending",
                    }
                    for channel, recipient in _recipients(audience, channels, req.agencies)
                )
            if rows:
                await session.execute(
                    insert_ignoring_duplicates(
                        session,
                        models.Notification,
                        rows,
                        ["case_id", "seq", "audience", "channel", "recipient"],
                    )
                )
        log.info(
            "notification_queued",
            case_id=req.case_id,
            seq=req.seq,
            event_name=req.event,
            audiences=[a.value for a in req.audiences],
            rows=len(rows),
        )
        return len(rows)


def _recipients(audience: Audience, channels: list[str], agencies: list[str]) -> list[tuple[str, str]]:
    if audience is Audience.COMPLAINANT:
        return [(channel, "complainant") for channel in channels]
    if audience is Audience.AGENCY:
        return [("web", agency) for agency in agencies]
    if audience is Audience.AGENCY_HEAD:
        return [("web", f"{agency}:head") for agency in agencies]
    return [("web", "supervisors")]
