"""One complaint screened end to end, in-process and through `rongtuk screen --json`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from config.settings import get_settings
from screening.completeness import Facts
from screening.duplicates import DuplicateIndex, IndexedCase
from screening.service import Screener

POWER_CUT = {
    "channel": "hotline",
    "description": "ไฟฟ้าดับทั้งหมู่บ้านมาสามวันแล้ว อ.สันทราย จ.เชียงใหม่ ยังไม่มีใครมาแก้ไข ตู้เย็นเสียหมด",
    "complainant": {"phone": "๐๘๑-๒๓๔-๕๖๗๘"},
}


def test_a_screening_vectorises_the_text_once(screener: Screener, monkeypatch: pytest.MonkeyPatch) -> None:
    # The suggestion and the similar cases read the same n-gram vector: computed once (0.6 ms of ~7).
    calls: list[int] = []
    vectorise = screener.model._features

    def counted(prepared: list[object], *, fit: bool = False) -> object:
        calls.append(len(prepared))
        return vectorise(prepared, fit=fit)  # type: ignore[arg-type]

    monkeypatch.setattr(screener.model, "_features", counted)
    result = screener.screen(Facts.from_json(POWER_CUT))
    assert result["categories"] and "similar_cases" in result
    assert calls == [1]


def test_screen_gives_completeness_category_agencies_and_reasons(screener: Screener) -> None:
    result = screener.screen(Facts.from_json(POWER_CUT))
    assert result["completeness"]["complete"] is True
    assert result["completeness"]["place"]["district"]["code"] == "5014"
    assert result["completeness"]["place"]["region"] == {"six": "north", "four": "north"}
    top = result["categories"][0]
    assert top["category"] == "utilities.power" and top["strategy"] == "S2"
    assert top["why"]["keywords"]
    agency = result["agencies"][0]
    assert agency["code"] == "PEA" and agency["primary"] and "PEA" in agency["rules"][0]["en"]
    assert result["decision"]["action"] == "queue"  # auto-screening is off by default
    assert result["actions"] == [{"action": "accept", "data": {"category": "utilities.power", "agencies": ["PEA"]}}]


def test_a_stated_category_drives_completeness_and_routing(screener: Screener) -> None:
    facts = Facts.from_json(POWER_CUT | {"category": "land.dispute"})
    result = screener.screen(facts)
    assert result["stated_category"] == "land.dispute"
    missing = {i["field"] for i in result["completeness"]["items"]}
    assert {"complainant.name", "complainant.citizen_id"} <= missing
    assert {a["code"] for a in result["agencies"] if a["primary"]} == {"PROV-50", "LAND-50"}


def test_duplicates_appear_when_an_index_is_given(screener: Screener) -> None:
    index = DuplicateIndex(
        [IndexedCase("RT-9", "utilities.power", "50", "5014", None, "+66812345678")], [POWER_CUT["description"]]
    )
    result = screener.screen(Facts.from_json(POWER_CUT), index=index)
    assert result["duplicates"][0]["case_id"] == "RT-9" and result["duplicates"][0]["score"] > 0.9
    assert {"action": "duplicate", "data": {"original_case_id": "RT-9"}} in result["actions"]
    assert screener.screen(Facts.from_json(POWER_CUT), index=index, case_id="RT-9")["duplicates"] == []


def test_a_list_screening_leaves_out_only_the_similar_past_cases(screener: Screener) -> None:
    """A list of cases shows no similar past cases, so it is spared their search; nothing else changes."""
    full = screener.screen(Facts.from_json(POWER_CUT), case_id="RT-1")
    short = screener.screen(Facts.from_json(POWER_CUT), case_id="RT-1", similar=False)
    assert full["similar_cases"] and "similar_cases" not in short
    assert {k: v for k, v in full.items() if k != "similar_cases"} == short


@pytest.fixture
def no_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RONGTUK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("RONGTUK_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("no_database")
def test_cli_reads_json_lines_and_prints_one_object_per_line() -> None:
    lines = "\n".join(
        [json.dumps(POWER_CUT, ensure_ascii=False), json.dumps({"description": "ถนนพัง"}, ensure_ascii=False)]
    )
    result = CliRunner().invoke(app, ["screen", "--json"], input=lines)
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 2
    assert out[0]["agencies"][0]["code"] == "PEA"
    assert out[1]["completeness"]["complete"] is False and out[1]["completeness"]["question"]["th"]
    need_info = out[1]["actions"][0]
    assert need_info["action"] == "need_info" and need_info["data"]["question"].startswith("เพื่อดำเนินการ")
    assert out[0]["duplicates"] == []


@pytest.mark.usefixtures("no_database")
def test_cli_takes_one_pretty_printed_document_and_refuses_non_objects() -> None:
    result = CliRunner().invoke(app, ["screen", "--json"], input=json.dumps(POWER_CUT, indent=2))
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 1
    bad = CliRunner().invoke(app, ["screen", "--json"], input="[1, 2]\n")
    assert bad.exit_code == 1 and json.loads(bad.stdout.splitlines()[0])["error_th"]


TRAFFY_TYPES = {
    "roads.pothole": "ถนน",
    "lighting.streetlight": "แสงสว่าง",
    "waste.cleanliness": "ความสะอาด",
    "environment.noise": "เสียงรบกวน",
}


def test_retrain_from_a_sample_then_screen_with_the_saved_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import csv

    from tests.screening.conftest import FIXTURE_TEXTS

    sample = tmp_path / "sample.csv"
    with sample.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "ticket_id",
                "type",
                "organization",
                "comment",
                "district",
                "subdistrict",
                "province",
                "timestamp",
                "state",
                "source",
            ]
        )
        for n in range(5):  # the fixture texts five times over, in different districts
            for category, texts in FIXTURE_TEXTS.items():
                for m, text in enumerate(texts):
                    writer.writerow(
                        [
                            f"T-{n}-{category}-{m}",
                            TRAFFY_TYPES[category],
                            "กรุงเทพมหานคร",
                            f"{text} ครั้งที่ {n}",
                            "ลาดพร้าว",
                            "",
                            "กรุงเทพมหานคร",
                            "",
                            "",
                            "test",
                        ]
                    )
    monkeypatch.setenv("RONGTUK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RONGTUK_TRAFFY_CSV", str(sample))
    monkeypatch.delenv("RONGTUK_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        trained = CliRunner().invoke(app, ["screen", "retrain"])
        assert trained.exit_code == 0, trained.output
        assert "{'traffy': 80}" in trained.output and "category top-1" in trained.output
        assert (tmp_path / "data" / "screening" / "model.pickle").is_file()
        screened = CliRunner().invoke(app, ["screen", "--json"], input=json.dumps({"description": "ขยะล้นถังไม่มีใครเก็บ"}))
        result = json.loads(screened.stdout.splitlines()[0])
        assert result["model"]["source"].endswith("model.pickle") and result["model"]["trained_on"]["traffy"] == 80
        assert result["categories"][0]["category"] == "waste.cleanliness"
        assert result["similar_cases"][0]["ref"].startswith("traffy:T-")
        assert result["similar_cases"][0]["agencies"] == ["BKK-1038"]  # the district office stands for "BMA"
    finally:
        get_settings.cache_clear()
