"""The auto-screen decision: off by default; accepts only complete, confident, simple, unique complaints."""

from __future__ import annotations

from typing import Any

from screening.policy import AutoScreenPolicy, decide

ON = AutoScreenPolicy(enabled=True)


def screened(**overrides: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "completeness": {"complete": True},
        "categories": [{"category": "utilities.power", "confidence": 0.92, "sla_class": "urgent"}],
        "agencies": [
            {"code": "PEA", "confidence": 0.9, "primary": True},
            {"code": "NT", "confidence": 0.1, "primary": False},
        ],
        "duplicates": [],
    }
    return result | overrides


def test_off_by_default_queues_everything() -> None:
    decision = decide(screened(), AutoScreenPolicy())
    assert decision.action == "queue" and "auto-screening is off" in decision.reasons


def test_complete_and_confident_is_accepted_as_the_systems_decision() -> None:
    decision = decide(screened(), ON)
    assert decision.action == "accept"
    assert decision.data["category"] == "utilities.power" and decision.data["agencies"] == ["PEA"]
    assert decision.confidence == 0.9 and "92%" in decision.data["summary"]


def test_anything_doubtful_goes_to_an_officer() -> None:
    cases = {
        "incomplete": screened(completeness={"complete": False}),
        "category confidence": screened(categories=[{"category": "utilities.power", "confidence": 0.5}]),
        "agency confidence": screened(agencies=[{"code": "PEA", "confidence": 0.3, "primary": True}]),
        "always goes to an officer": screened(
            categories=[{"category": "land.dispute", "confidence": 0.99, "sla_class": "complex"}]
        ),
        "likely duplicate": screened(duplicates=[{"case_id": "RT-1", "score": 0.8}]),
    }
    for reason, result in cases.items():
        decision = decide(result, ON)
        assert decision.action == "queue" and any(reason in r for r in decision.reasons), reason
        assert decision.data == {}


def test_thresholds_and_excluded_categories_are_configurable() -> None:
    lenient = AutoScreenPolicy(enabled=True, min_category_confidence=0.4, min_agency_confidence=0.2)
    assert decide(screened(categories=[{"category": "utilities.power", "confidence": 0.5}]), lenient).action == "accept"
    strict = AutoScreenPolicy(enabled=True, never_categories=frozenset({"utilities.power"}))
    assert decide(screened(), strict).action == "queue"
