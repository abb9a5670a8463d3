"""The auto-screening policy, a pure decision: accept and route without an officer, or queue for one.

Off by default. When on, a complaint is accepted as the system's decision only if it is complete, its
category and agencies are suggested with enough confidence, its category is not one that needs a person
(complex ones by default: corruption, land, police misconduct), and it has no likely duplicate. Everything
else is queued for an officer with the suggestions attached. ``ComplaintWorkflow`` asks it through the
``auto_screen`` activity (activities/screening.py) right after filing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AutoScreenPolicy(BaseModel):
    """Settings of the auto-screen (``RONGTUK_AUTO_SCREEN*``)."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = False
    min_category_confidence: float = Field(0.8, ge=0, le=1)
    min_agency_confidence: float = Field(0.6, ge=0, le=1)
    never_sla_classes: frozenset[str] = frozenset({"complex"})
    never_categories: frozenset[str] = frozenset()
    max_duplicate_score: float = Field(0.5, ge=0, le=1)

    @classmethod
    def from_settings(cls, settings: Any) -> AutoScreenPolicy:
        """The policy from :class:`config.settings.Settings`."""
        return cls(
            enabled=settings.auto_screen,
            min_category_confidence=settings.auto_screen_min_confidence,
            min_agency_confidence=settings.auto_screen_min_agency_confidence,
            never_categories=frozenset(settings.auto_screen_never_categories),
        )


@dataclass(frozen=True)
class Decision:
    """``accept`` (with the ``data`` of the process table's accept action) or ``queue``; always with why."""

    action: str  # accept | queue
    confidence: float
    data: dict[str, Any] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "confidence": round(self.confidence, 3),
            "data": self.data,
            "reasons": list(self.reasons),
        }


def decide(screening: dict[str, Any], policy: AutoScreenPolicy) -> Decision:
    """What the system does with a screened complaint (the dict :func:`screening.service.screen` returns)."""
    suggestion = (screening.get("categories") or [{}])[0]
    category = suggestion.get("category")
    category_confidence = float(suggestion.get("confidence") or 0.0)
    chosen = [a for a in screening.get("agencies") or [] if a.get("primary")]
    agency_confidence = min((float(a["confidence"]) for a in chosen), default=0.0)
    confidence = min(category_confidence, agency_confidence)
    reasons: list[str] = []
    if not policy.enabled:
        reasons.append("auto-screening is off")
    if not (screening.get("completeness") or {}).get("complete"):
        reasons.append("the complaint is incomplete")
    if category is None or category_confidence < policy.min_category_confidence:
        reasons.append(f"category confidence {category_confidence:.2f} < {policy.min_category_confidence:.2f}")
    if not chosen or agency_confidence < policy.min_agency_confidence:
        reasons.append(f"agency confidence {agency_confidence:.2f} < {policy.min_agency_confidence:.2f}")
    if suggestion.get("sla_class") in policy.never_sla_classes or category in policy.never_categories:
        reasons.append(f"category {category} always goes to an officer")
    duplicates = [d for d in screening.get("duplicates") or [] if float(d["score"]) >= policy.max_duplicate_score]
    if duplicates:
        reasons.append(f"likely duplicate of {duplicates[0]['case_id']}")
    if reasons:
        return Decision("queue", confidence, reasons=tuple(reasons))
    data = {
        "category": category,
        "agencies": [a["code"] for a in chosen],
        "summary": f"Auto-screened: category {category} ({category_confidence:.0%}), "
        f"agencies {', '.join(a['code'] for a in chosen)} ({agency_confidence:.0%})",
    }
    return Decision("accept", confidence, data=data, reasons=("complete and confident enough",))
