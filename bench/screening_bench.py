"""Benchmark screening: accuracy on the Traffy held-out split, latency per complaint, duplicate search at 100k.

    .venv/bin/python -m bench.screening_bench [--index-size 100000] [--queries 200] [--latency-sample 500]
                                              [--out bench/results/screening.json]

1. Trains the suggester on the Traffy Fondue sample's training split (plus the categories' keywords) and
   measures top-1 / top-3 accuracy for category and for organisation on the held-out split (the same
   deterministic split ``rongtuk screen retrain`` uses). The keywords-only model is measured too: it is what
   screening does before anyone has trained it.
2. Latency of ``Screener.screen()`` per complaint (completeness, place, suggestion with reasons, routing,
   similar cases; no duplicates) over held-out complaints, p50 / p99.
3. Duplicate search: a ``DuplicateIndex`` of ``--index-size`` cases (the sample's texts, repeated with a
   varying house number so no two are equal, random places and categories; in memory only), its build time,
   and the search time per complaint, p50 / p99.

Complaint text stays in memory: nothing from the sample is printed or written, only figures.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from bench.machine import machine_info
from config.reference import load_reference
from config.settings import Settings
from screening.classifier import CategoryModel
from screening.completeness import Facts
from screening.duplicates import DuplicateIndex, IndexedCase
from screening.examples import Example, SampleMissing, keyword_examples, read_traffy, split
from screening.service import Screener
from screening.training import evaluate


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _accuracy(model: CategoryModel, test: list[Example], reference: Any) -> dict[str, Any]:
    acc = evaluate(model, test, reference)
    return {
        "held_out": acc.examples,
        "category_top1": round(acc.category_top1, 4),
        "category_top3": round(acc.category_top3, 4),
        "organisation_examples": acc.organisation_examples,
        "organisation_top1": round(acc.organisation_top1, 4),
        "organisation_top3": round(acc.organisation_top3, 4),
        "suggest_ms_p50": round(_percentile(acc.latency_ms, 0.5), 2),
        "suggest_ms_p99": round(_percentile(acc.latency_ms, 0.99), 2),
    }


def district_office_baseline(test: list[Example], reference: Any) -> dict[str, Any]:
    """How often simply naming the district office of the complaint's district is right: most of the
    sample's organisation labels are the district office (SOURCE.md), so this is the floor to beat."""
    offices = {a.areas[0]: a.code for a in reference.agencies.values() if a.code.startswith(("BKK-", "DIST-"))}
    labelled = [e for e in test if e.agencies]
    hits = sum(1 for e in labelled if e.place and offices.get(e.place.district_code or "") in e.agencies)
    alone = sum(1 for e in labelled if e.place and e.agencies == (offices.get(e.place.district_code or ""),))
    return {
        "organisation_examples": len(labelled),
        "district_office_top1": round(hits / len(labelled), 4) if labelled else 0.0,
        "labels_only_the_district_office": round(alone / len(labelled), 4) if labelled else 0.0,
    }


def bench_duplicates(texts: list[str], reference: Any, *, size: int, queries: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    districts = [
        (a.areas[0][:2], a.areas[0]) for a in reference.agencies.values() if a.code.startswith(("BKK-", "DIST-"))
    ]
    categories = list(reference.categories)
    cases, corpus = [], []
    for n in range(size):
        province, district = rng.choice(districts)
        cases.append(IndexedCase(f"RT-{n:07d}", rng.choice(categories), province, district, None, f"+6681{n:07d}"))
        corpus.append(f"{texts[n % len(texts)]} บ้านเลขที่ {n}")
    started = time.perf_counter()
    index = DuplicateIndex(cases, corpus)
    build_s = time.perf_counter() - started
    timings, hits = [], 0
    for _ in range(queries):
        n = rng.randrange(size)
        case = cases[n]
        query = corpus[n].replace("บ้านเลขที่", "เลขที่")
        started = time.perf_counter()
        found = index.search(query, category=case.category, place=None, exclude=None)
        timings.append((time.perf_counter() - started) * 1000)
        hits += any(c.case_id == case.case_id for c in found)
    return {
        "index_size": size,
        "build_s": round(build_s, 1),
        "queries": queries,
        "search_ms_p50": round(_percentile(timings, 0.5), 1),
        "search_ms_p99": round(_percentile(timings, 0.99), 1),
        "search_ms_mean": round(statistics.fmean(timings), 1),
        "reworded_copy_found": round(hits / queries, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--latency-sample", type=int, default=500)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--out", type=Path, default=Path("bench/results/screening.json"))
    args = parser.parse_args()

    settings = Settings()
    reference = load_reference()
    try:
        examples = list(read_traffy(settings.traffy_csv, reference))
    except SampleMissing as exc:
        raise SystemExit(str(exc)) from None
    train, test = split(examples)
    keywords = keyword_examples(reference)

    started = time.perf_counter()
    model = CategoryModel.train(train + keywords, reference)
    train_s = time.perf_counter() - started
    trained = _accuracy(model, test, reference)
    keywords_only = _accuracy(CategoryModel.train(keywords, reference), test, reference)

    screener = Screener(reference, model, model_source="bench")
    sample = random.Random(args.seed).sample(test, min(args.latency_sample, len(test)))
    screener.screen(Facts(description=sample[0].text))  # warm-up: dictionaries and place patterns load once
    latencies = []
    for example in sample:
        started = time.perf_counter()
        screener.screen(Facts(description=example.text))
        latencies.append((time.perf_counter() - started) * 1000)
    screen = {
        "complaints": len(sample),
        "ms_p50": round(_percentile(latencies, 0.5), 1),
        "ms_p99": round(_percentile(latencies, 0.99), 1),
    }
    duplicates = bench_duplicates(
        [e.text for e in examples], reference, size=args.index_size, queries=args.queries, seed=args.seed
    )

    result = {
        "machine": machine_info(),
        "data": {"examples": len(examples), "train": len(train), "held_out": len(test), "keywords": len(keywords)},
        "train_s": round(train_s, 1),
        "trained": trained,
        "keywords_only": keywords_only,
        "baseline": district_office_baseline(test, reference),
        "screen_latency": screen,
        "duplicates": duplicates,
    }
    print(
        f"Traffy sample: {len(examples)} labelled rows, {len(train)} train / {len(test)} held out; "
        f"trained in {train_s:.0f} s"
    )
    print(
        f"{'model':<14}{'cat top-1':>10}{'cat top-3':>10}{'org top-1':>10}{'org top-3':>10}{'p50 ms':>8}{'p99 ms':>8}"
    )
    for name, row in (("trained", trained), ("keywords only", keywords_only)):
        print(
            f"{name:<14}{row['category_top1']:>10.1%}{row['category_top3']:>10.1%}{row['organisation_top1']:>10.1%}"
            f"{row['organisation_top3']:>10.1%}{row['suggest_ms_p50']:>8.1f}{row['suggest_ms_p99']:>8.1f}"
        )
    baseline = result["baseline"]
    print(
        f"baseline 'the district office of the district': org top-1 {baseline['district_office_top1']:.1%} "
        f"({baseline['labels_only_the_district_office']:.1%} of the labels are that office alone)"
    )
    print(f"screen() per complaint over {screen['complaints']}: p50 {screen['ms_p50']} ms, p99 {screen['ms_p99']} ms")
    print(
        f"duplicates, {duplicates['index_size']:,} cases: build {duplicates['build_s']} s, search p50 "
        f"{duplicates['search_ms_p50']} ms, p99 {duplicates['search_ms_p99']} ms, reworded copy found "
        f"{duplicates['reworded_copy_found']:.0%}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
