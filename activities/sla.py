"""Deadline computation as local activities, so the workflow records the results and replays them exactly.

The calendar (Thai holidays plus the configured ones) lives in the worker; when the Cabinet adds a day off,
the workers restart with the new setting and ``recalculate`` moves running cases' deadlines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields

from temporalio import activity

from sla.calendar import WorkingCalendar
from sla.policy import SlaPolicy
from sla.rules import AlarmKind, DeadlineRule
from workflows.models import Alarm, DaysLeftRequest, Deadline, PolicySnapshot, ScheduleRequest
from workflows.process import Audience


class SlaActivities:
    """Working-day arithmetic with the calendar and policy this worker was configured with."""

    def __init__(
        self, calendar: WorkingCalendar, policy: SlaPolicy, category_classes: Mapping[str, str] | None = None
    ) -> None:
        self.calendar = calendar
        self.policy = policy
        # Each category's SLA class (categories.yaml), the default of a case in that category.
        self.category_classes = dict(category_classes or {})

    @activity.defn(name="sla_schedule")
    async def sla_schedule(self, req: ScheduleRequest) -> Deadline:
        """The deadline of ``rule`` from ``start`` with its reminder, breach and escalation alarms."""
        return self.schedule_for(req)

    @activity.defn(name="working_days_left")
    async def working_days_left(self, req: DaysLeftRequest) -> int:
        """Whole working days between now and the deadline (0 if it has passed)."""
        return self.calendar.working_days_between(req.now, req.due_at)

    @activity.defn(name="sla_policy")
    async def sla_policy(self) -> PolicySnapshot:
        """The policy figures the workflow keeps in its state."""
        return snapshot_of(self.policy, self.category_classes)

    def schedule_for(self, req: ScheduleRequest) -> Deadline:
        """Pure helper behind the activities (also used by the benchmark)."""
        days = req.working_days if req.working_days is not None else self.policy.working_days(req.rule)
        at = self.calendar.add_working_days
        due = at(req.start, days)
        if req.rule is DeadlineRule.AWAITING_INFO_LAPSE:
            alarms = [Alarm(AlarmKind.LAPSE, due)]
            warn = days - self.policy.awaiting_info_warning
            if 0 < warn < days:
                alarms.insert(0, Alarm(AlarmKind.INFO_REMINDER, at(req.start, warn)))
            return Deadline(req.rule, req.start, days, due, alarms)
        alarms = [
            Alarm(AlarmKind.REMINDER, at(req.start, days - before))
            for before in self.policy.reminders_before
            if 0 < days - before < days
        ]
        for level, step in enumerate(self.policy.escalation, start=1):
            alarms.append(
                Alarm(
                    AlarmKind.BREACH if step.after_working_days == 0 else AlarmKind.ESCALATION,
                    due if step.after_working_days == 0 else at(req.start, days + step.after_working_days),
                    level=level,
                    audiences=[Audience(a) for a in step.to],
                )
            )
        return Deadline(req.rule, req.start, days, due, sorted(alarms, key=lambda a: (a.at, a.level)))


def snapshot_of(policy: SlaPolicy, category_classes: Mapping[str, str]) -> PolicySnapshot:
    """The figures a case keeps from ``policy`` (and the categories' classes), as the workflow records them."""
    own = {"class_allowances", "class_by_category"}
    values = {f.name: getattr(policy, f.name) for f in fields(PolicySnapshot) if f.name not in own}
    return PolicySnapshot(
        **values,
        class_allowances=policy.class_allowances(),
        class_by_category={c: k for c, k in category_classes.items() if k in policy.classes},
    )
