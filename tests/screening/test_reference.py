"""The reference files load, hold what the directory must hold, and `ref check` finds broken edits."""

from __future__ import annotations

import re
from pathlib import Path

import geothai
import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from config.agencies import DEFAULT_AGENCIES_FILE, AgencyKind, load_agencies
from config.reference import DEFAULT_CATEGORIES_FILE, ReferenceData, check_reference
from config.settings import get_settings

OLD_CODES = """PSC DOPA BMA RTP DLT DOH DRR PCD MOPH NHSO SSO DLPW OCPB MEA PEA MWA PWA NBTC DOL RD OBEC DLA DDPM
SRT BMTA ONCB DSI DOAE RID DSDW""".split()


def test_every_code_in_use_today_still_exists(reference: ReferenceData) -> None:
    for code in OLD_CODES:
        assert code in reference.agencies, code
    provinces = [p.code for p in geothai.provinces() if p.code != "10"]
    assert all(f"PROV-{code}" in reference.agencies for code in provinces)


def test_the_api_knows_the_directory_codes() -> None:
    known = load_agencies(None)
    assert {"DOPA", "BMA", "RTP", "DOL", "BKK-1038", "DIST-5001", "PEA", "CCIB", "NACC"} <= set(known)


def test_directory_has_halls_districts_bangkok_offices_and_hierarchy(reference: ReferenceData) -> None:
    kinds: dict[AgencyKind, int] = {}
    for agency in reference.agencies.values():
        kinds[agency.kind] = kinds.get(agency.kind, 0) + 1
        assert agency.parent is None or agency.parent in reference.agencies
    assert kinds[AgencyKind.PROVINCIAL_HALL] == 76
    assert kinds[AgencyKind.DISTRICT_OFFICE] == 878
    assert kinds[AgencyKind.BMA_DISTRICT_OFFICE] == 50
    lat_phrao = reference.agencies["BKK-1038"]
    assert lat_phrao.name_th == "สำนักงานเขตลาดพร้าว" and lat_phrao.parent == "BMA" and lat_phrao.areas == ("1038",)
    assert reference.agencies["DIST-5001"].parent == "PROV-50"
    assert reference.agencies["LAND-10"].name_th == "สำนักงานที่ดินกรุงเทพมหานคร"
    for code in ("MWA", "PWA", "MEA", "PEA", "NT", "NACC", "OMB", "NBTC", "OCPB"):
        assert reference.agencies[code].contact, code


def test_categories_are_two_levels_with_pmdu_mapping(reference: ReferenceData) -> None:
    groups = {c.group for c in reference.categories.values()}
    for group in (
        "roads",
        "corruption",
        "debt",
        "consumer",
        "fraud",
        "land",
        "welfare",
        "police",
        "utilities",
        "waste",
        "environment",
        "flood",
        "health",
        "education",
        "labour",
    ):
        assert group in groups, group
    for category in reference.categories.values():
        assert category.code.startswith(category.group + ".")
        assert category.strategy in reference.strategies
        assert all(r in reference.reform_areas for r in category.reform)
    assert len(reference.strategies) == 6
    assert reference.categories["land.dispute"].sla_class.value == "complex"
    assert "complainant.citizen_id" in reference.categories["land.dispute"].fields


def test_regions_cover_the_77_provinces_in_both_groupings(reference: ReferenceData) -> None:
    assert len(reference.region6) == len(reference.region4) == 77
    assert reference.region6["50"].code == "north" and reference.region6["63"].code == "west"
    assert reference.region4["63"].code == "north" and reference.region4["10"].code == "central"
    assert sum(1 for r in reference.region6.values() if r.code == "northeast") == 20


def test_check_finds_broken_edits(tmp_path: Path) -> None:
    agencies = yaml.safe_load(DEFAULT_AGENCIES_FILE.read_text(encoding="utf-8"))
    agencies["agencies"].append(
        {"code": "XX", "name_th": "x", "name_en": "x", "parent": "NOPE", "categories": ["nope"]}
    )
    agencies["agencies"].append({"code": "PSC", "name_th": "x", "name_en": "x"})
    broken_agencies = tmp_path / "agencies.yaml"
    broken_agencies.write_text(yaml.safe_dump(agencies, allow_unicode=True), encoding="utf-8")
    categories = yaml.safe_load(DEFAULT_CATEGORIES_FILE.read_text(encoding="utf-8"))
    categories["groups"][0]["categories"][0]["strategy"] = "S9"
    broken_categories = tmp_path / "categories.yaml"
    broken_categories.write_text(yaml.safe_dump(categories, allow_unicode=True), encoding="utf-8")
    regions = tmp_path / "regions.yaml"
    regions.write_text("six: []\nfour: []\n", encoding="utf-8")

    _, problems = check_reference(
        categories_file=broken_categories, agencies_file=broken_agencies, regions_file=regions
    )
    text = "\n".join(problems)
    assert "parent NOPE" in text
    assert "unknown category nope" in text
    assert "PSC is used twice" in text
    assert "strategy S9" in text
    assert "provinces in no region" in text


def test_ref_check_command_fails_on_a_broken_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "regions.yaml"
    broken.write_text("six: []\nfour: []\n", encoding="utf-8")
    monkeypatch.setenv("RONGTUK_REGIONS_FILE", str(broken))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["ref", "check"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1 and "provinces in no region" in result.output


def test_ref_check_command_passes_on_the_shipped_files() -> None:
    result = CliRunner().invoke(app, ["ref", "check"])
    assert result.exit_code == 0, result.output
    assert re.match(r"ok: \d+ groups, \d+ categories, \d+ agencies", result.output), result.output
