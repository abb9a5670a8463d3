"""Reference data for screening and reports: categories (``categories.yaml``), the agency directory
(``agencies.yaml``, see :mod:`config.agencies`) and regions (``regions.yaml``), checked together.

Every file is editable without a release; :func:`check_reference` lists what is wrong (``rongtuk ref check``)
and :func:`load_reference` refuses to start with a broken file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

import geothai
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from config.agencies import WHOLE_COUNTRY, Agency, AgencyDirectoryError, read_agencies
from config.settings import Settings

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_CATEGORIES_FILE = CONFIG_DIR / "categories.yaml"
DEFAULT_REGIONS_FILE = CONFIG_DIR / "regions.yaml"
ANY_CATEGORY = "*"
KNOWN_FIELDS = frozenset(
    {
        "location",
        "location.district",
        "location.subdistrict",
        "complainant.name",
        "complainant.citizen_id",
        "complainant.contact",
        "occurred_on",
        "attachments",
    }
)


class SlaClass(StrEnum):
    STANDARD = "standard"
    URGENT = "urgent"
    COMPLEX = "complex"  # investigate from the start: SPSO stage 2


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Named(_Strict):
    code: str = Field(min_length=1, max_length=64)
    name_th: str = Field(min_length=1)
    name_en: str = Field(min_length=1)


class FieldLabel(_Strict):
    name_th: str = Field(min_length=1)
    name_en: str = Field(min_length=1)


class _Inherited(_Strict):
    strategy: str | None = None
    reform: tuple[str, ...] | None = None
    sla_class: SlaClass | None = None
    fields: tuple[str, ...] | None = None
    min_description: int | None = Field(None, ge=1, le=2000)


class _CategoryRow(Named, _Inherited):
    traffy: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()


class _GroupRow(Named, _Inherited):
    categories: tuple[_CategoryRow, ...] = Field(min_length=1)


class _Defaults(_Strict):
    sla_class: SlaClass = SlaClass.STANDARD
    min_description: int = Field(30, ge=1, le=2000)
    fields: tuple[str, ...] = ("location",)


class _CategoriesFile(_Strict):
    strategies: tuple[Named, ...] = Field(min_length=1)
    reform_areas: tuple[Named, ...] = Field(min_length=1)
    fields: dict[str, FieldLabel]
    channels: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    defaults: _Defaults = Field(default_factory=_Defaults)
    groups: tuple[_GroupRow, ...] = Field(min_length=1)


class Category(_Strict):
    """A second-level category with everything inherited from its group and the defaults filled in."""

    code: str
    group: str
    name_th: str
    name_en: str
    group_name_th: str
    group_name_en: str
    strategy: str
    reform: tuple[str, ...]
    sla_class: SlaClass
    fields: tuple[str, ...]
    min_description: int
    traffy: tuple[str, ...]
    keywords: tuple[str, ...]


class _RegionRow(Named):
    provinces: tuple[str, ...]


class _RegionsFile(_Strict):
    six: tuple[_RegionRow, ...]
    four: tuple[_RegionRow, ...]


@dataclass(frozen=True)
class Region:
    code: str
    name_th: str
    name_en: str


@dataclass(frozen=True)
class ReferenceData:
    """Categories, groups, PMDU vocabularies, the agency directory and regions, consistent with each other."""

    categories: dict[str, Category]
    groups: dict[str, Named]
    strategies: dict[str, Named]
    reform_areas: dict[str, Named]
    fields: dict[str, FieldLabel]
    channel_fields: dict[str, tuple[str, ...]]
    agencies: dict[str, Agency]
    region6: dict[str, Region] = field(default_factory=dict)  # by province code
    region4: dict[str, Region] = field(default_factory=dict)
    # Category, group or "*" -> the codes of the agencies that list it, in the directory's order.
    handlers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Area code ("TH", a province, a district) -> the codes of the agencies whose areas list it.
    serving: dict[str, tuple[str, ...]] = field(default_factory=dict)
    position: dict[str, int] = field(default_factory=dict)  # agency code -> its place in the directory

    def category_matches(self, handled: str, category: str) -> int:
        """How well an agency's ``handled`` entry fits ``category``: 2 exact, 1 its group, 0 "*", -1 not."""
        if handled == category:
            return 2
        if handled == category.split(".", 1)[0]:
            return 1
        return 0 if handled == ANY_CATEGORY else -1


def _validation_problems(where: str, exc: ValidationError) -> list[str]:
    return [f"{where}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]


def _read_yaml(path: Path, problems: list[str]) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problems.append(f"{path.name}: cannot read it: {exc}")
        return None


def _categories(path: Path, problems: list[str]) -> _CategoriesFile | None:
    raw = _read_yaml(path, problems)
    if raw is None:
        return None
    try:
        return _CategoriesFile.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_validation_problems(path.name, exc))
        return None


def _flatten(parsed: _CategoriesFile, problems: list[str]) -> dict[str, Category]:
    strategies = {s.code for s in parsed.strategies}
    reforms = {r.code for r in parsed.reform_areas}
    categories: dict[str, Category] = {}
    groups: set[str] = set()
    traffy_seen: dict[str, str] = {}
    for group in parsed.groups:
        if "." in group.code or group.code in groups:
            problems.append(f"categories.yaml: group {group.code} must be unique and contain no dot")
        groups.add(group.code)
        for row in group.categories:
            where = f"categories.yaml: {row.code}"
            if not row.code.startswith(f"{group.code}.") or row.code.count(".") != 1:
                problems.append(f"{where}: a category code is '<group>.<name>' (group {group.code})")
            if row.code in categories:
                problems.append(f"{where}: the code is used twice")
            strategy = row.strategy or group.strategy
            reform = row.reform if row.reform is not None else group.reform or ()
            fields = row.fields if row.fields is not None else group.fields
            if fields is None:
                fields = parsed.defaults.fields
            if strategy not in strategies:
                problems.append(f"{where}: strategy {strategy} is not one of {sorted(strategies)}")
            problems.extend(f"{where}: unknown reform area {r}" for r in reform if r not in reforms)
            problems.extend(f"{where}: unknown field {f}" for f in fields if f not in parsed.fields)
            for label in row.traffy:
                if label in traffy_seen:
                    problems.append(f"{where}: Traffy label {label} is also mapped by {traffy_seen[label]}")
                traffy_seen[label] = row.code
            categories[row.code] = Category(
                code=row.code,
                group=group.code,
                name_th=row.name_th,
                name_en=row.name_en,
                group_name_th=group.name_th,
                group_name_en=group.name_en,
                strategy=strategy or "",
                reform=tuple(reform),
                sla_class=row.sla_class or group.sla_class or parsed.defaults.sla_class,
                fields=tuple(fields),
                min_description=row.min_description or group.min_description or parsed.defaults.min_description,
                traffy=row.traffy,
                keywords=row.keywords,
            )
    problems.extend(
        f"categories.yaml: field {name} is not one the completeness check knows ({sorted(KNOWN_FIELDS)})"
        for name in parsed.fields
        if name not in KNOWN_FIELDS
    )
    for channel, names in parsed.channels.items():
        problems.extend(
            f"categories.yaml: channel {channel}: unknown field {n}" for n in names if n not in parsed.fields
        )
    return categories


def _regions(path: Path, problems: list[str]) -> tuple[dict[str, Region], dict[str, Region]]:
    raw = _read_yaml(path, problems)
    if raw is None:
        return {}, {}
    try:
        parsed = _RegionsFile.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_validation_problems(path.name, exc))
        return {}, {}
    provinces = {p.code for p in geothai.provinces()}
    result: list[dict[str, Region]] = []
    for name, grouping in (("six", parsed.six), ("four", parsed.four)):
        by_province: dict[str, Region] = {}
        for row in grouping:
            for code in row.provinces:
                if code not in provinces:
                    problems.append(f"regions.yaml: {name}/{row.code}: {code} is not a province code")
                elif code in by_province:
                    problems.append(f"regions.yaml: {name}: province {code} is in two regions")
                by_province[code] = Region(row.code, row.name_th, row.name_en)
        missing = sorted(provinces - by_province.keys())
        if missing:
            problems.append(f"regions.yaml: {name}: provinces in no region: {', '.join(missing)}")
        result.append(by_province)
    return result[0], result[1]


def _check_agencies(agencies: dict[str, Agency], categories: dict[str, Category], problems: list[str]) -> None:
    known = set(categories) | {c.group for c in categories.values()} | {ANY_CATEGORY}
    areas = {WHOLE_COUNTRY} | {p.code for p in geothai.provinces()}
    areas |= {d.code for p in geothai.provinces() for d in geothai.districts(p.code)}
    handled: set[str] = set()
    for agency in agencies.values():
        for code in agency.categories:
            if code not in known:
                problems.append(f"agencies.yaml: {agency.code}: unknown category {code}")
            handled.add(code)
        problems.extend(
            f"agencies.yaml: {agency.code}: unknown area {a} (TH, a province or a district code)"
            for a in agency.areas + agency.except_areas
            if a not in areas
        )
    # Every category must reach someone other than the catch-all, or routing can only say "PSC".
    for category in categories.values():
        if category.code not in handled and category.group not in handled:
            problems.append(f"agencies.yaml: no agency handles {category.code} (or its group)")


def check_reference(
    *, categories_file: Path | None = None, agencies_file: Path | None = None, regions_file: Path | None = None
) -> tuple[ReferenceData | None, list[str]]:
    """Read and cross-check every reference file; the data (when readable) and the list of problems."""
    problems: list[str] = []
    parsed = _categories(categories_file or DEFAULT_CATEGORIES_FILE, problems)
    agencies, agency_problems = read_agencies(agencies_file)
    problems.extend(f"agencies.yaml: {p}" if not p.startswith("agencies.yaml") else p for p in agency_problems)
    region6, region4 = _regions(regions_file or DEFAULT_REGIONS_FILE, problems)
    if parsed is None:
        return None, problems
    categories = _flatten(parsed, problems)
    _check_agencies(agencies, categories, problems)
    data = ReferenceData(
        categories=categories,
        groups={g.code: Named(code=g.code, name_th=g.name_th, name_en=g.name_en) for g in parsed.groups},
        strategies={s.code: s for s in parsed.strategies},
        reform_areas={r.code: r for r in parsed.reform_areas},
        fields=dict(parsed.fields),
        channel_fields=dict(parsed.channels),
        agencies=agencies,
        region6=region6,
        region4=region4,
        handlers=_codes_by(agencies, lambda a: a.categories),
        serving=_codes_by(agencies, lambda a: a.areas),
        position={code: n for n, code in enumerate(agencies)},
    )
    return data, problems


def _codes_by(agencies: dict[str, Agency], keys: Callable[[Agency], tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Each key (an area, a handled category) -> the codes of the agencies listing it, in directory order."""
    found: dict[str, list[str]] = {}
    for agency in agencies.values():
        for key in dict.fromkeys(keys(agency)):
            found.setdefault(key, []).append(agency.code)
    return {key: tuple(codes) for key, codes in found.items()}


@lru_cache(maxsize=8)
def load_reference(
    *, categories_file: Path | None = None, agencies_file: Path | None = None, regions_file: Path | None = None
) -> ReferenceData:
    """The reference data, or :class:`AgencyDirectoryError` listing every problem (start-up refuses)."""
    data, problems = check_reference(
        categories_file=categories_file, agencies_file=agencies_file, regions_file=regions_file
    )
    if problems or data is None:
        raise AgencyDirectoryError("reference data has problems:\n  " + "\n  ".join(problems))
    return data


@lru_cache(maxsize=4)
def regions_by_province(regions_file: Path | None = None) -> dict[str, Region]:
    """The six-region grouping by province code (empty if the file has problems: ``rongtuk ref check`` says)."""
    problems: list[str] = []
    six, _ = _regions(regions_file or DEFAULT_REGIONS_FILE, problems)
    return six


def region_of(province_code: str | None, regions_file: Path | None = None) -> str | None:
    """The region code (north, northeast, west, central, east, south) of a province, if known."""
    if not province_code:
        return None
    region = regions_by_province(regions_file).get(province_code)
    return region.code if region else None


def category_classes(settings: Settings) -> dict[str, str]:
    """Each category's SLA class, from the reference data the screening uses (the worker's and the API's)."""
    reference = load_reference(
        categories_file=settings.categories_file,
        agencies_file=settings.agencies_file,
        regions_file=settings.regions_file,
    )
    return {code: category.sla_class.value for code, category in reference.categories.items()}
