"""Labelled examples to learn from: officers' decisions in the read model, the Traffy Fondue sample, and the
categories' own names and keywords (so categories no sample shows can still be suggested).

The Traffy file is personal data (SOURCE.md): it is read where the settings point, never copied, and its
text never reaches a log.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config.reference import ReferenceData
from screening.places import Place, place_of_names

# Traffy organisation labels that say nothing about who acts (the platform, the BMA as a whole, its hotline).
_UMBRELLAS = frozenset({"BMA"})


class SampleMissing(FileNotFoundError):
    """The Traffy sample is not where the settings say (RONGTUK_TRAFFY_CSV)."""


@dataclass(frozen=True)
class Example:
    """One complaint with what was decided for it: the category and the agencies."""

    text: str
    category: str
    agencies: tuple[str, ...] = ()
    place: Place | None = None
    ref: str = ""  # where it came from: a case id, "traffy:<ticket>" or "keywords:<category>"
    source: str = "case"  # case | traffy | keywords


def keyword_examples(reference: ReferenceData) -> list[Example]:
    """One short example per category name and keyword: the directory's knowledge as training data."""
    out: list[Example] = []
    for category in reference.categories.values():
        phrases = [category.name_th, category.name_en, *category.keywords]
        out.extend(
            Example(
                text=f"{phrase} {category.group_name_th}",
                category=category.code,
                ref=f"keywords:{category.code}",
                source="keywords",
            )
            for phrase in phrases
        )
    return out


class _OrgIndex:
    """Traffy organisation names -> directory codes, by the agencies' Thai names and aliases."""

    def __init__(self, reference: ReferenceData) -> None:
        names: dict[str, str] = {}
        for agency in reference.agencies.values():
            for name in (agency.name_th, *agency.aliases):
                names.setdefault(name, agency.code)
        self._names = sorted(names.items(), key=lambda item: -len(item[0]))
        self._exact = names

    def code(self, label: str) -> str | None:
        label = label.strip()
        if label in self._exact:
            return self._exact[label]
        return next((code for name, code in self._names if len(name) >= 4 and name in label), None)


def read_traffy(path: Path, reference: ReferenceData) -> Iterator[Example]:
    """The sample's rows whose type maps to one of our categories, with their agencies in our codes.

    For the 2022 rows, whose organisation is only the BMA as a whole, the label is the district office of
    the row's district (SOURCE.md: "use district there").
    """
    if not path.is_file():
        raise SampleMissing(
            f"The Traffy Fondue sample is not at {path}; set RONGTUK_TRAFFY_CSV to its path "
            "(../shared/data/traffy/complaints-sample.csv in the team's layout)."
        )
    by_label = {label: c.code for c in reference.categories.values() for label in c.traffy}
    orgs = _OrgIndex(reference)
    bangkok_offices = {a.areas[0]: a.code for a in reference.agencies.values() if a.code.startswith("BKK-")}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            labels = [by_label[t] for t in row["type"].split(",") if t in by_label]
            if not labels or not row["comment"].strip():
                continue
            place = place_of_names(row["province"] or "กรุงเทพมหานคร", row["district"]) if row["district"] else None
            codes = [orgs.code(label) for label in row["organization"].split(",")]
            agencies = tuple(dict.fromkeys(c for c in codes if c and c not in _UMBRELLAS))
            if not agencies and place is not None and place.district_code in bangkok_offices:
                agencies = (bangkok_offices[place.district_code],)
            ticket = row["ticket_id"] or hashlib.sha256(row["comment"].encode()).hexdigest()[:12]
            yield Example(row["comment"], labels[0], agencies, place, ref=f"traffy:{ticket}", source="traffy")


async def decided_examples(session: AsyncSession, *, limit: int = 100_000) -> list[Example]:
    """Officers' decisions: every case's latest 'accept' event (category, agencies) with its description."""
    from store import models

    rows = await session.execute(
        select(
            models.Case.case_id,
            models.Case.description,
            models.Case.province,
            models.Case.district,
            models.CaseEvent.data,
        )
        .join(models.CaseEvent, models.CaseEvent.case_id == models.Case.case_id)
        .where(models.CaseEvent.event == "accept")
        .order_by(models.CaseEvent.id.desc())
        .limit(limit)
    )
    seen: set[str] = set()
    out = []
    for case_id, description, province, district, data in rows:
        category = (data or {}).get("category")
        if case_id in seen or not category or not description:
            continue
        seen.add(case_id)
        place = place_of_names(province, district or "") if province else None
        agencies = tuple((data or {}).get("agencies") or ())
        out.append(Example(description, str(category), agencies, place, ref=case_id, source="case"))
    return out


def split(examples: list[Example], *, test_share: float = 0.2) -> tuple[list[Example], list[Example]]:
    """A deterministic held-out split by a hash of each example's reference (stable across runs)."""
    train: list[Example] = []
    test: list[Example] = []
    for example in examples:
        bucket = int(hashlib.sha256(example.ref.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (test if bucket < test_share and example.source != "keywords" else train).append(example)
    return train, test
