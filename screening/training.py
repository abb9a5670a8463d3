"""Train the suggester from officers' decisions and the Traffy sample, and measure it on a held-out split."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from config.reference import ReferenceData
from screening.classifier import CategoryModel, prepare
from screening.examples import Example, SampleMissing, keyword_examples, read_traffy, split
from screening.service import suggest_agencies


@dataclass
class Accuracy:
    """Top-1 / top-3 accuracy for category and for organisation on a held-out set."""

    examples: int = 0
    category_top1: float = 0.0
    category_top3: float = 0.0
    organisation_examples: int = 0
    organisation_top1: float = 0.0
    organisation_top3: float = 0.0
    latency_ms: list[float] = field(default_factory=list, repr=False)


def evaluate(model: CategoryModel, test: list[Example], reference: ReferenceData) -> Accuracy:
    """How often the suggestion (and the agency the directory picks for it) is what was decided."""
    result = Accuracy(examples=len(test))
    cat1 = cat3 = org1 = org3 = 0
    for example in test:
        started = time.perf_counter()
        guesses = model.suggest(prepare(example.text), k=3, explain=False)
        agencies = [a["code"] for a in suggest_agencies(guesses, example.place, stated=None, reference=reference)]
        result.latency_ms.append((time.perf_counter() - started) * 1000)
        codes = [g.category for g in guesses]
        cat1 += bool(codes) and codes[0] == example.category
        cat3 += example.category in codes
        if example.agencies:
            result.organisation_examples += 1
            org1 += bool(agencies) and agencies[0] in example.agencies
            org3 += any(code in example.agencies for code in agencies[:3])
    if test:
        result.category_top1, result.category_top3 = cat1 / len(test), cat3 / len(test)
    if result.organisation_examples:
        result.organisation_top1 = org1 / result.organisation_examples
        result.organisation_top3 = org3 / result.organisation_examples
    return result


@dataclass
class TrainingReport:
    sources: dict[str, int]
    held_out: Accuracy
    traffy_missing: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        held_out = asdict(self.held_out)
        held_out.pop("latency_ms")
        return {
            "sources": self.sources,
            "held_out": held_out,
            "traffy_missing": self.traffy_missing,
            "seconds": round(self.seconds, 1),
        }


def gather(
    reference: ReferenceData, *, traffy_csv: Any, decided: list[Example], traffy_limit: int | None = None
) -> tuple[list[Example], str | None]:
    """Every labelled example: officers' decisions and the Traffy rows (with why the sample is missing).
    Decisions with a category the reference data no longer has (or never had: free text) are left out."""
    examples = [e for e in decided if e.category in reference.categories]
    missing = None
    try:
        rows = read_traffy(traffy_csv, reference)
        examples += [row for _, row in zip(range(traffy_limit or 10**9), rows, strict=False)]
    except SampleMissing as exc:
        missing = str(exc)
    return examples, missing


def retrain(
    reference: ReferenceData, *, examples: list[Example], traffy_missing: str | None = None, final: bool = True
) -> tuple[CategoryModel, TrainingReport]:
    """Measure on a held-out split, then (``final``) train on everything; the model and the report."""
    started = time.perf_counter()
    keywords = keyword_examples(reference)
    train, test = split(examples)
    model = CategoryModel.train(train + keywords, reference)
    accuracy = evaluate(model, test, reference)
    if final and test:
        model = CategoryModel.train(examples + keywords, reference)
    sources: dict[str, int] = {}
    for example in examples:
        sources[example.source] = sources.get(example.source, 0) + 1
    report = TrainingReport(sources, accuracy, traffy_missing, time.perf_counter() - started)
    return model, report
