"""Auto-screening as an activity: the screening service's decision on a newly filed complaint.

Off by default (``RONGTUK_AUTO_SCREEN``). The API marks a case for it at intake; the workflow then asks this
activity and, if the policy accepts, screens and accepts the case as the system's decision, with the
confidence and the reasons on the timeline. Anything else stays in the officers' queue with the suggestions
(``GET /api/v1/cases/{id}/screening``). The screener (reference data, model) is loaded once per worker, on
first use.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from temporalio import activity

from screening.completeness import Facts
from workflows.models import AutoScreenDecision, AutoScreenRequest

log = structlog.get_logger(__name__)


class ScreeningActivities:
    """Screening with the reference data and model this worker was configured with."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self._screener: Any = None

    def screener(self) -> Any:
        if self._screener is None:
            from screening.service import Screener

            self._screener = Screener.from_settings(self.settings)
        return self._screener

    @activity.defn(name="auto_screen")
    async def auto_screen(self, req: AutoScreenRequest) -> AutoScreenDecision:
        """The auto-screen policy's decision on one complaint: accept (category, agencies) or queue."""
        facts = Facts.from_json(req.complaint.model_dump(mode="json"))
        # CPU-bound (tokenising, the model): off the event loop, so the worker keeps serving other cases.
        result = await asyncio.to_thread(self.screener().screen, facts, case_id=req.case_id)
        decision = result.get("decision") or {}
        data = decision.get("data") or {}
        out = AutoScreenDecision(
            action=str(decision.get("action", "queue")),
            confidence=float(decision.get("confidence") or 0.0),
            category=data.get("category"),
            agencies=list(data.get("agencies") or []),
            summary=data.get("summary"),
            reasons=[str(r) for r in decision.get("reasons") or []],
        )
        log.info("auto_screened", case_id=req.case_id, action=out.action, confidence=round(out.confidence, 3))
        return out
