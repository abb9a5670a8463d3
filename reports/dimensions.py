"""What reports break figures down by: one registry, one line per dimension.

A dimension is a SQL expression over the ``cases`` row (or an ``agency_tasks`` row joined to it) plus a way
to name its values in Thai and English. Reference data that is not in the read model is folded into SQL as
a ``CASE`` over a column: the PMDU strategy from the category (``config/categories.yaml``). The region,
kind, priority and receiving centre are the read model's own columns (the projection derives the region from
the province), named with the domain's and ``config/centres.yaml``'s labels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import geothai
from sqlalchemy import ColumnElement, String, case, cast, literal

from config.centres import Centres, load_centres
from config.reference import ReferenceData, load_reference
from domain.complaint import KIND_LABELS, PRIORITY_LABELS, Kind, Priority
from store.models import AgencyTask, Case
from workflows.process import OUTCOME_LABELS, STATE_LABELS, State

__all__ = ["DIMENSIONS", "UNKNOWN", "Dimension", "Lookup", "lookup"]

UNKNOWN = "-"  # the key of cases without a value (no category yet, no province given, ...)

CHANNEL_LABELS: Mapping[str, tuple[str, str]] = {
    "walk_in": ("Walk-in (1111 service point)", "ศูนย์บริการ 1111 (walk-in)"),
    "letter": ("Letter (PO Box 1111)", "จดหมาย (ตู้ ปณ. 1111)"),
    "hotline": ("Hotline 1111", "สายด่วน 1111"),
    "web": ("Website", "เว็บไซต์"),
    "app": ("PSC 1111 app", "แอปพลิเคชัน PSC 1111"),
    "line": ("LINE @PSC1111", "LINE @PSC1111"),
}
STAGE_LABELS: Mapping[str, tuple[str, str]] = {
    "1": ("Stage 1 (frontline)", "ขั้นที่ 1 (แก้ไขเบื้องต้น)"),
    "2": ("Stage 2 (investigation)", "ขั้นที่ 2 (ตรวจสอบ)"),
}
_UNKNOWN_LABEL = ("Not given", "ไม่ระบุ")


@dataclass(frozen=True)
class Lookup:
    """Reference data the dimensions need, read once: names, and the mappings folded into SQL."""

    reference: ReferenceData
    province_code: dict[str, str] = field(default_factory=dict)  # Thai name -> DOPA code

    @property
    def strategy_of(self) -> dict[str, str]:
        return {code: c.strategy for code, c in self.reference.categories.items()}


@lru_cache(maxsize=4)
def lookup(categories_file: Path | None = None, regions_file: Path | None = None) -> Lookup:
    """The reference data for labels and mappings (cached: the files are read once per process)."""
    reference = load_reference(categories_file=categories_file, regions_file=regions_file)
    return Lookup(reference=reference, province_code={p.name_th: p.code for p in geothai.provinces()})


def _pair(value: tuple[str, str] | None, key: str, lang: str) -> str:
    if value is None:
        return key
    return value[1] if lang == "th" else value[0]


def _fixed(labels: Mapping[str, tuple[str, str]]) -> Callable[[Lookup, str, str], str]:
    return lambda _lk, key, lang: _pair(labels.get(key), key, lang)


def _category(lk: Lookup, key: str, lang: str) -> str:
    found = lk.reference.categories.get(key)
    return _pair((found.name_en, found.name_th) if found else None, key, lang)


def _strategy(lk: Lookup, key: str, lang: str) -> str:
    found = lk.reference.strategies.get(key)
    return f"{key} {_pair((found.name_en, found.name_th), key, lang)}" if found else key


def _province(lk: Lookup, key: str, lang: str) -> str:
    code = lk.province_code.get(key)
    found = geothai.province(code) if code else None
    return key if lang == "th" or found is None else found.name_en


def _region(lk: Lookup, key: str, lang: str) -> str:
    found = next((r for r in lk.reference.region6.values() if r.code == key), None)
    return _pair((found.name_en, found.name_th) if found else None, key, lang)


def _agency(lk: Lookup, key: str, lang: str) -> str:
    found = lk.reference.agencies.get(key)
    return _pair((found.name_en, found.name_th) if found else None, key, lang)


def _state(_lk: Lookup, key: str, lang: str) -> str:
    try:
        return _pair(STATE_LABELS[State(key)], key, lang)
    except ValueError:
        return key


def _mapped(column: Any, mapping: Callable[[Lookup], Mapping[str, str]]) -> Callable[[Lookup], ColumnElement[Any]]:
    """A key folded from another column by reference data, as one SQL CASE (unknown values fall to '-')."""

    def build(lk: Lookup) -> ColumnElement[Any]:
        pairs = mapping(lk)
        if not pairs:
            return literal(UNKNOWN)
        return case(pairs, value=column, else_=literal(UNKNOWN))

    return build


@dataclass(frozen=True)
class Dimension:
    """A way to break figures down: its SQL key, its names, and how to name each value."""

    code: str
    name_en: str
    name_th: str
    key: Callable[[Lookup], ColumnElement[Any]]
    label: Callable[[Lookup, str, str], str]
    via_tasks: bool = False  # counted once per agency task, not once per case

    def name(self, lang: str) -> str:
        return self.name_th if lang == "th" else self.name_en

    def value_label(self, lk: Lookup, key: str | None, lang: str) -> str:
        if key is None or key == UNKNOWN:
            return _pair(_UNKNOWN_LABEL, UNKNOWN, lang)
        return self.label(lk, key, lang)


def _column(name: str) -> Callable[[Lookup], ColumnElement[Any]]:
    return lambda _lk: cast(getattr(Case, name), String)


def _kind(_lk: Lookup, key: str, lang: str) -> str:
    return _pair(KIND_LABELS.get(Kind(key)) if key in set(Kind) else None, key, lang)


def _priority(_lk: Lookup, key: str, lang: str) -> str:
    return _pair(PRIORITY_LABELS.get(Priority(key)) if key in set(Priority) else None, key, lang)


def _centre(_lk: Lookup, key: str, lang: str) -> str:
    found = _centres().get(key)
    return _pair((found.name_en, found.name_th) if found else None, key, lang)


@lru_cache(maxsize=1)
def _centres() -> Centres:
    return load_centres()


_ALL: list[Dimension] = [
    Dimension("category", "Category", "ประเภทเรื่อง", _column("category"), _category),
    Dimension("strategy", "PMDU strategy", "ยุทธศาสตร์ชาติ", _mapped(Case.category, lambda lk: lk.strategy_of), _strategy),
    Dimension("agency", "Agency", "หน่วยงาน", lambda _lk: AgencyTask.agency.expression, _agency, via_tasks=True),
    Dimension("province", "Province", "จังหวัด", _column("province"), _province),
    Dimension("region", "Region", "ภาค", _column("region"), _region),
    Dimension("channel", "Channel", "ช่องทาง", _column("channel"), _fixed(CHANNEL_LABELS)),
    Dimension("status", "Status", "สถานะ", _column("status"), _state),
    Dimension("outcome", "Outcome", "ผลการพิจารณา", _column("outcome"), _fixed(OUTCOME_LABELS)),
    Dimension("stage", "Stage", "ขั้นตอน", _column("stage"), _fixed(STAGE_LABELS)),
    Dimension("kind", "Kind", "ลักษณะเรื่อง", _column("kind"), _kind),
    Dimension("priority", "Priority", "ความเร่งด่วน", _column("priority"), _priority),
    Dimension("centre", "Centre", "ศูนย์รับเรื่อง", _column("centre"), _centre),
]
DIMENSIONS: dict[str, Dimension] = {d.code: d for d in _ALL}
