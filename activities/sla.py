"""Deadline computation as a local activity, so the workflow records the result and replays it exactly."""

from __future__ import annotations

from datetime import datetime

from temporalio import activity

from sla.calendar import WorkingCalendar
from sla.policy import SlaPolicy
from workflows.models import DueRequest


class SlaActivities:
    """Working-day arithmetic with the calendar and policy this worker was configured with."""

    def __init__(self, calendar: WorkingCalendar, policy: SlaPolicy) -> None:
        self.calendar = calendar
        self.policy = policy

    @activity.defn(name="due_at")
    async def due_at(self, req: DueRequest) -> datetime:
        """The end of the working day that is ``rule``'s allowance after ``start``."""
        return self.calendar.add_working_days(req.start, self.policy.working_days(req.rule))
