"""Service-level policy: how many working days each step of the process may take."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_POLICY_FILE = Path(__file__).resolve().parent.parent / "config" / "sla.yaml"


class SlaPolicy(BaseModel):
    """Working-day allowances per step (SPSO model defaults); loaded from ``config/sla.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    screening: int = Field(1, ge=0, le=60)
    agency_acceptance: int = Field(2, ge=0, le=60)
    stage1_response: int = Field(5, ge=1, le=60)
    stage1_extension_max: int = Field(10, ge=1, le=60)
    stage2_acknowledge: int = Field(3, ge=1, le=60)
    stage2_response: int = Field(20, ge=1, le=120)
    awaiting_info_lapse: int = Field(10, ge=1, le=120)

    def working_days(self, rule: str) -> int:
        """The allowance named ``rule``; ``answer`` is what a complainant is promised at intake."""
        if rule == "answer":
            return self.screening + self.agency_acceptance + self.stage1_response
        value = getattr(self, rule, None)
        if not isinstance(value, int):
            raise KeyError(f"unknown SLA rule {rule!r}")
        return value


def load_policy(path: Path | None = None) -> SlaPolicy:
    """Read the policy file, refusing unknown keys and impossible values with a clear message."""
    path = path or DEFAULT_POLICY_FILE
    raw: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        return SlaPolicy.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(f"invalid SLA policy in {path}: {exc}") from exc
