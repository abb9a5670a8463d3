"""The names of deadlines and alarms: which allowance a deadline counts, and what fires around it."""

from __future__ import annotations

from enum import StrEnum


class DeadlineRule(StrEnum):
    """An SLA allowance of ``config/sla.yaml`` (``ANSWER``: the date promised to the complainant at intake)."""

    ANSWER = "answer"
    SCREENING = "screening"
    AWAITING_INFO_LAPSE = "awaiting_info_lapse"
    AGENCY_ACCEPTANCE = "agency_acceptance"
    STAGE1_RESPONSE = "stage1_response"
    STAGE2_ACKNOWLEDGE = "stage2_acknowledge"
    STAGE2_RESPONSE = "stage2_response"
    CLOSURE = "closure"  # PSC closes the case once the agencies have answered
    STAGE2_FINDINGS = "stage2_findings"  # an agency's investigation task in stage 2, inside stage2_response


# What each deadline is for, as the consoles say it (English, Thai).
DEADLINE_RULE_LABELS: dict[str, tuple[str, str]] = {
    DeadlineRule.ANSWER: ("Answer promised to the complainant", "วันที่แจ้งผู้ร้องว่าจะได้คำตอบ"),
    DeadlineRule.SCREENING: ("Screening", "ตรวจสอบเรื่อง"),
    DeadlineRule.AWAITING_INFO_LAPSE: ("Complainant's answer", "ผู้ร้องส่งข้อมูลเพิ่มเติม"),
    DeadlineRule.AGENCY_ACCEPTANCE: ("Agency accepts", "หน่วยงานรับเรื่อง"),
    DeadlineRule.STAGE1_RESPONSE: ("Stage 1 response", "ตอบผลขั้นที่ 1"),
    DeadlineRule.STAGE2_ACKNOWLEDGE: ("Stage 2 acknowledgement", "แจ้งรับเรื่องขั้นที่ 2"),
    DeadlineRule.STAGE2_RESPONSE: ("Stage 2 response", "ตอบผลขั้นที่ 2"),
    DeadlineRule.CLOSURE: ("Closure", "ยุติเรื่อง"),
    DeadlineRule.STAGE2_FINDINGS: ("Stage 2 findings", "ส่งผลการตรวจสอบขั้นที่ 2"),
}


class AlarmKind(StrEnum):
    """A moment around a deadline: before it, at it, after it, or while waiting for the complainant."""

    REMINDER = "reminder"
    BREACH = "breach"
    ESCALATION = "escalation"
    INFO_REMINDER = "info_reminder"
    LAPSE = "lapse"

    @property
    def event(self) -> str:
        """The process table's event that records this alarm on the timeline."""
        return _EVENTS[self]

    @property
    def late(self) -> bool:
        """Whether the alarm means the deadline has passed (it makes the case overdue)."""
        return self in {AlarmKind.BREACH, AlarmKind.ESCALATION}


_EVENTS = {
    AlarmKind.REMINDER: "sla_reminder",
    AlarmKind.BREACH: "sla_breach",
    AlarmKind.ESCALATION: "sla_escalation",
    AlarmKind.INFO_REMINDER: "info_reminder",
    AlarmKind.LAPSE: "lapse",
}
