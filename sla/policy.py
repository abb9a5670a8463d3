"""Service-level policy: working-day allowances per step, reminders, the escalation ladder, time limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sla.rules import DeadlineRule

DEFAULT_POLICY_FILE = Path(__file__).resolve().parent.parent / "config" / "sla.yaml"

Audiences = list[str]

# The allowances a class may set; the others (waiting for the complainant, limits) are the same for every case.
CLASS_RULES: tuple[DeadlineRule, ...] = (
    DeadlineRule.SCREENING,
    DeadlineRule.AGENCY_ACCEPTANCE,
    DeadlineRule.STAGE1_RESPONSE,
    DeadlineRule.STAGE2_ACKNOWLEDGE,
    DeadlineRule.STAGE2_RESPONSE,
    DeadlineRule.STAGE2_FINDINGS,
    DeadlineRule.CLOSURE,
)
# The classes every policy has: categories.yaml names them, and urgent priority implies ``urgent``.
REQUIRED_CLASSES = ("standard", "urgent", "complex")
KINDS = ("complaint", "suggestion", "request", "tipoff")


class EscalationStep(BaseModel):
    """One rung of the ladder: ``after_working_days`` past the deadline, tell ``to``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    after_working_days: int = Field(ge=0, le=60)
    to: Audiences = Field(min_length=1)


class SlaClass(BaseModel):
    """A named set of allowances: what it does not set is the policy's own (the standard figure)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name_en: str = Field(min_length=1, max_length=100)
    name_th: str = Field(min_length=1, max_length=100)
    screening: int | None = Field(None, ge=1, le=60)
    agency_acceptance: int | None = Field(None, ge=1, le=60)
    stage1_response: int | None = Field(None, ge=1, le=60)
    stage1_extension_max: int | None = Field(None, ge=1, le=60)
    stage2_acknowledge: int | None = Field(None, ge=1, le=60)
    stage2_response: int | None = Field(None, ge=1, le=120)
    stage2_findings: int | None = Field(None, ge=1, le=120)
    closure: int | None = Field(None, ge=1, le=60)


def _default_classes() -> dict[str, SlaClass]:
    return {
        "standard": SlaClass(name_en="Standard", name_th="ปกติ"),
        "urgent": SlaClass(
            name_en="Urgent",
            name_th="เร่งด่วน",
            screening=1,
            agency_acceptance=1,
            stage1_response=2,
            stage1_extension_max=5,
            stage2_acknowledge=1,
            stage2_response=10,
            stage2_findings=7,
            closure=1,
        ),
        "complex": SlaClass(
            name_en="Complex",
            name_th="ซับซ้อน",
            stage1_response=10,
            stage1_extension_max=20,
            stage2_response=40,
            stage2_findings=30,
        ),
    }


class SlaPolicy(BaseModel):
    """Working-day allowances per step (SPSO model defaults); loaded from ``config/sla.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    screening: int = Field(1, ge=1, le=60)
    agency_acceptance: int = Field(2, ge=1, le=60)
    stage1_response: int = Field(5, ge=1, le=60)
    stage1_extension_max: int = Field(10, ge=1, le=60)
    stage2_acknowledge: int = Field(3, ge=1, le=60)
    stage2_response: int = Field(20, ge=1, le=120)
    # Agency-led stage 2: each investigating agency's findings are due this many working days after PSC's
    # acknowledgement, so that PSC can answer within stage2_response.
    stage2_findings: int = Field(15, ge=1, le=120)
    closure: int = Field(2, ge=1, le=60)
    # Cases filed with this on give the `responded` state (PSC to close) its clock; cases filed before it existed
    # keep their recorded behaviour (the flag travels in the case's policy snapshot).
    responded_clock: bool = True
    awaiting_info_lapse: int = Field(10, ge=1, le=120)
    awaiting_info_warning: int = Field(2, ge=0, le=60)
    reminders_before: list[int] = Field(default_factory=lambda: [1])
    escalation: list[EscalationStep] = Field(
        default_factory=lambda: [
            EscalationStep(after_working_days=0, to=["supervisor"]),
            EscalationStep(after_working_days=2, to=["supervisor", "agency_head"]),
        ]
    )
    # Named classes of allowances (a case has one: its kind's or category's default, urgent for urgent
    # priority, or the one screening chose with a reason).
    classes: dict[str, SlaClass] = Field(default_factory=_default_classes)
    default_class: str = "standard"
    urgent_class: str = "urgent"
    class_by_kind: dict[str, str] = Field(default_factory=dict)
    max_rejections: int = Field(2, ge=1, le=20)
    review_request_months: int = Field(2, ge=0, le=24)
    complaint_months: int = Field(6, ge=0, le=60)
    ombudsman_months: int = Field(12, ge=0, le=60)
    retention_days: int = Field(30, ge=0, le=3650)
    # Limits on repeatable actions, so that no one (a citizen with a tracking code included) can grow a case's
    # history without end.
    max_rating_changes: int = Field(3, ge=0, le=20)  # a rating per stage, amendable this many times
    max_progress_notes: int = Field(50, ge=1, le=500)  # per agency task
    max_info_requests: int = Field(5, ge=1, le=50)  # requests for information per case
    max_agency_questions: int = Field(3, ge=1, le=20)  # questions to the complainant per agency task
    max_reopens: int = Field(3, ge=0, le=20)
    max_manual_escalations: int = Field(10, ge=1, le=100)
    # A case's workflow continues as new (same case, fresh history) past this many history events.
    history_limit: int = Field(2000, ge=100, le=40000)

    @model_validator(mode="after")
    def _consistent(self) -> SlaPolicy:
        if self.stage1_extension_max < self.stage1_response:
            raise ValueError("stage1_extension_max must be at least stage1_response")
        if self.stage2_acknowledge + self.stage2_findings > self.stage2_response:
            raise ValueError("stage2_acknowledge + stage2_findings must fit inside stage2_response")
        if self.awaiting_info_warning >= self.awaiting_info_lapse:
            raise ValueError("awaiting_info_warning must be shorter than awaiting_info_lapse")
        known = {"supervisor", "agency_head", "agency"}
        for step in self.escalation:
            if unknown := set(step.to) - known:
                raise ValueError(f"unknown escalation audience(s) {sorted(unknown)}; known: {sorted(known)}")
        if missing := [c for c in REQUIRED_CLASSES if c not in self.classes]:
            raise ValueError(f"classes must include {', '.join(REQUIRED_CLASSES)}; missing: {', '.join(missing)}")
        named = {"default_class": self.default_class, "urgent_class": self.urgent_class}
        named |= {f"class_by_kind.{k}": v for k, v in self.class_by_kind.items()}
        if wrong := sorted(f"{where}: {name}" for where, name in named.items() if name not in self.classes):
            raise ValueError(f"unknown SLA class(es) {wrong}; classes: {sorted(self.classes)}")
        if odd := sorted(set(self.class_by_kind) - set(KINDS)):
            raise ValueError(f"class_by_kind names unknown kinds {odd}; kinds: {list(KINDS)}")
        for name in self.classes:
            allowances = self.class_allowances()[name]
            if allowances["stage1_extension_max"] < allowances[DeadlineRule.STAGE1_RESPONSE.value]:
                raise ValueError(f"class {name}: stage1_extension_max must be at least stage1_response")
            stage2 = [allowances[r.value] for r in (DeadlineRule.STAGE2_ACKNOWLEDGE, DeadlineRule.STAGE2_FINDINGS)]
            if sum(stage2) > allowances[DeadlineRule.STAGE2_RESPONSE.value]:
                raise ValueError(f"class {name}: stage2_acknowledge + stage2_findings must fit inside stage2_response")
        afters = [s.after_working_days for s in self.escalation]
        if afters != sorted(set(afters)):
            raise ValueError("escalation steps must be in increasing after_working_days order")
        return self

    def class_allowances(self) -> dict[str, dict[str, int]]:
        """Every class's allowances in full (the class's own figure, else the policy's), by rule name."""
        out: dict[str, dict[str, int]] = {}
        for name, cls in self.classes.items():
            names = [r.value for r in CLASS_RULES] + ["stage1_extension_max"]
            out[name] = {n: getattr(cls, n) if getattr(cls, n) is not None else getattr(self, n) for n in names}
        return out

    @property
    def extension_allowance(self) -> int:
        """Extra working days a stage 1 task may be granted in all."""
        return self.stage1_extension_max - self.stage1_response

    def working_days(self, rule: DeadlineRule | str) -> int:
        """The allowance of ``rule``; ``answer`` is what a complainant is promised at intake."""
        try:
            rule = DeadlineRule(rule)
        except ValueError:
            raise KeyError(f"unknown SLA rule {rule!r}") from None
        if rule is DeadlineRule.ANSWER:
            return self.screening + self.agency_acceptance + self.stage1_response
        value: int = getattr(self, rule.value)
        return value


def load_policy(path: Path | None = None) -> SlaPolicy:
    """Read the policy file, refusing unknown keys and impossible values with a clear message."""
    path = path or DEFAULT_POLICY_FILE
    raw: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        return SlaPolicy.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(f"invalid SLA policy in {path}: {exc}") from exc
