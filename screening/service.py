"""Screen one complaint: completeness, suggested category and agencies with confidence and reasons, similar
past cases, likely duplicates, and the auto-screen decision. Used by ``rongtuk screen`` and the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from config.reference import ReferenceData, load_reference
from screening.classifier import CategoryGuess, CategoryModel, prepare
from screening.completeness import Facts, check_completeness
from screening.duplicates import DuplicateIndex
from screening.examples import keyword_examples
from screening.places import Place
from screening.policy import AutoScreenPolicy, decide
from screening.routing import routes

log = structlog.get_logger(__name__)


def model_path(settings: Any) -> Path:
    """Where the trained model lives: under the data directory, which git ignores (it comes from personal data)."""
    return Path(settings.data_dir) / "screening" / "model.pickle"


def reference_from_settings(settings: Any) -> ReferenceData:
    """The reference data the settings name (the repository's files by default)."""
    return load_reference(
        categories_file=settings.categories_file,
        agencies_file=settings.agencies_file,
        regions_file=settings.regions_file,
    )


def model_stamp(settings: Any) -> int | None:
    """When the saved model was written (ns), or None without one: what tells a process its model is stale."""
    try:
        return model_path(settings).stat().st_mtime_ns
    except FileNotFoundError:
        return None


@dataclass
class Screener:
    """Everything screening needs, loaded once per process (and again when the saved model changes)."""

    reference: ReferenceData
    model: CategoryModel
    policy: AutoScreenPolicy = field(default_factory=AutoScreenPolicy)
    model_source: str = "keywords"
    model_stamp: int | None = None  # the saved model's, as :func:`model_stamp` read it before loading

    @classmethod
    def from_settings(cls, settings: Any) -> Screener:
        """The saved model if there is one, else a model of the categories' keywords alone (no data needed)."""
        reference = reference_from_settings(settings)
        path = model_path(settings)
        stamp = model_stamp(settings)  # before reading: a model saved meanwhile is seen as newer, and loaded
        model = CategoryModel.load(path)
        source = str(path)
        if model is None:  # the result says so ("model": {"source": "keywords"})
            model, source = CategoryModel.train(keyword_examples(reference), reference), "keywords"
        return cls(reference, model, AutoScreenPolicy.from_settings(settings), source, stamp)

    def screen(
        self,
        facts: Facts,
        *,
        index: DuplicateIndex | None = None,
        case_id: str | None = None,
        similar: bool = True,
    ) -> dict[str, Any]:
        """The screening result for one complaint, as JSON-ready data. Without ``similar`` the result has no
        ``similar_cases`` (past cases like this one, searched in the training set: 2.8 of a screening's 6.2 ms),
        for a list of many cases that shows none of them."""
        reference = self.reference
        prepared = prepare(facts.text)
        features = self.model.features(prepared)  # once, for the suggestion and the similar cases
        guesses = self.model.suggest(prepared, k=3, features=features)
        stated = reference.categories.get(facts.category or "")
        chosen = stated or (reference.categories.get(guesses[0].category) if guesses else None)
        completeness = check_completeness(facts, category=chosen, reference=reference)
        place = completeness.place
        categories = []
        for guess in guesses:
            category = reference.categories[guess.category]
            categories.append(
                {
                    "category": category.code,
                    "name_th": category.name_th,
                    "name_en": category.name_en,
                    "group": category.group,
                    "confidence": round(guess.confidence, 3),
                    "sla_class": category.sla_class.value,
                    "strategy": category.strategy,
                    "reform": list(category.reform),
                    "why": {"words": guess.words, "keywords": guess.keywords},
                }
            )
        result: dict[str, Any] = {
            "completeness": completeness.as_dict(),
            "stated_category": stated.code if stated else None,
            "categories": categories,
            "agencies": suggest_agencies(
                guesses, completeness.place, stated=stated.code if stated else None, reference=reference
            ),
            "duplicates": [],
            "model": {"source": self.model_source, "trained_on": self.model.trained_on},
        }
        if similar:
            result["similar_cases"] = [n.as_dict() for n in self.model.similar(prepared, k=3, features=features)]
        if case_id is not None:
            result = {"case_id": case_id} | result
        if place is not None and result["completeness"]["place"] is not None:
            region6 = reference.region6.get(place.province_code or "")
            region4 = reference.region4.get(place.province_code or "")
            result["completeness"]["place"]["region"] = {
                "six": region6.code if region6 else None,
                "four": region4.code if region4 else None,
            }
        if index is not None:
            duplicates = index.search(
                facts.text,
                category=chosen.code if chosen else None,
                place=place,
                citizen_id=completeness.normalised.get("citizen_id"),
                phone=completeness.normalised.get("phone"),
                exclude=case_id,
            )
            result["duplicates"] = [d.as_dict() for d in duplicates]
        result["decision"] = decide(result, self.policy).as_dict()
        result["actions"] = ready_actions(result)
        return result


class ScreenerKeeper:
    """One :class:`Screener` per API process. The first screening loads it, in a thread, once however many
    screenings ask meanwhile. After that, at most every ``check_every`` seconds a screening looks at the saved
    model's file; when it has changed (``rongtuk screen retrain``, or the embedded set's first training), the
    model is loaded again in the background while screenings go on with the one they have, so a retrained
    model reaches every running API without a restart. A load that fails keeps the model in use."""

    def __init__(self, settings: Any, *, check_every: float = 30.0) -> None:
        self._settings = settings
        self._check_every = check_every
        self._screener: Screener | None = None
        self._first = asyncio.Lock()
        self._checked = 0.0
        self._reload: asyncio.Task[None] | None = None

    async def get(self) -> Screener:
        """The screener to use now."""
        if self._screener is None:
            async with self._first:
                if self._screener is None:
                    self._screener = await asyncio.to_thread(Screener.from_settings, self._settings)
                    self._checked = time.monotonic()
            assert self._screener is not None
            return self._screener
        if time.monotonic() - self._checked >= self._check_every and (self._reload is None or self._reload.done()):
            self._checked = time.monotonic()
            if model_stamp(self._settings) != self._screener.model_stamp:
                self._reload = asyncio.create_task(self._load_again(), name="rongtuk-screening-model")
        return self._screener

    async def _load_again(self) -> None:
        try:
            fresh = await asyncio.to_thread(Screener.from_settings, self._settings)
        except Exception as exc:  # a half-copied or broken file: keep screening with the model in use
            log.warning("screening_model_load_failed", error=type(exc).__name__)
            return
        self._screener = fresh
        log.info("screening_model_loaded", source=fresh.model_source)

    async def settled(self) -> None:
        """Wait for a load in the background, if one is running (tests, shutdown)."""
        if self._reload is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reload

    async def close(self) -> None:
        """Stop a background load (its thread ends on its own; what it loads is dropped)."""
        if self._reload is not None and not self._reload.done():
            self._reload.cancel()
        await self.settled()


def ready_actions(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The screening actions an officer can send in one click (``POST .../actions/{action}`` bodies)."""
    actions: list[dict[str, Any]] = []
    question = result["completeness"]["question"]
    if question is not None:
        actions.append({"action": "need_info", "data": {"question": question["text"]}})
    primary = [a["code"] for a in result["agencies"] if a["primary"]]
    category = result["stated_category"] or (result["categories"][0]["category"] if result["categories"] else None)
    if category and primary:
        actions.append({"action": "accept", "data": {"category": category, "agencies": primary}})
    actions.extend(
        {"action": "duplicate", "data": {"original_case_id": d["case_id"]}} for d in result["duplicates"][:3]
    )
    return actions


def suggest_agencies(
    guesses: list[CategoryGuess], place: Place | None, *, stated: str | None, reference: ReferenceData
) -> list[dict[str, Any]]:
    """Agencies from the directory's rules for each likely category, weighed by its confidence."""
    weighed = [(stated, 1.0)] if stated else [(g.category, g.confidence) for g in guesses]
    confidence: dict[str, float] = defaultdict(float)
    rules: dict[str, list[dict[str, str]]] = defaultdict(list)
    primary: set[str] = set()
    for rank, (category, weight) in enumerate(weighed):
        found = routes(category, place, reference)
        if not found:
            continue
        best = found[0].score
        for route in found:
            code = route.agency.code
            confidence[code] += weight * (1.0 if route.score == best else 0.5)
            rules[code].append(route.rule(category))
            if rank == 0 and route.score == best:
                primary.add(code)
    ranked = sorted(confidence.items(), key=lambda item: (item[0] not in primary, -item[1]))
    out = []
    for code, value in ranked[:5]:
        agency = reference.agencies[code]
        out.append(
            {
                "code": code,
                "name_th": agency.name_th,
                "name_en": agency.name_en,
                "kind": agency.kind.value,
                "confidence": round(min(value, 1.0), 3),
                "primary": code in primary,
                "rules": rules[code],
                "contact": agency.contact,
            }
        )
    return out
