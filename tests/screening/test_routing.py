"""Directory rules: category x place -> agency, in Bangkok and in the provinces."""

from __future__ import annotations

import pytest

from config.reference import ReferenceData
from screening.places import Place, place_from_text
from screening.routing import routes


def best(reference: ReferenceData, category: str, where: str) -> list[str]:
    found = routes(category, place_from_text(where), reference)
    assert found, (category, where)
    top = found[0].score
    return [r.agency.code for r in found if r.score == top]


@pytest.mark.parametrize(
    ("category", "where", "expected"),
    [
        ("utilities.power", "อ.สันทราย จ.เชียงใหม่", {"PEA"}),
        ("utilities.power", "Chiang Mai", {"PEA"}),
        ("utilities.power", "เขตบางนา", {"MEA"}),
        ("utilities.power", "จ.นนทบุรี", {"MEA"}),
        ("utilities.water", "จ.ขอนแก่น", {"PWA"}),
        ("land.dispute", "อ.เมือง จ.ขอนแก่น", {"LAND-40", "PROV-40"}),
        ("fraud.online", "จ.ขอนแก่น", {"CCIB", "AOC"}),
        ("fraud.online", "", {"CCIB", "AOC"}),
        ("roads.pothole", "ซอยโชคชัย 4 เขตลาดพร้าว", {"BKK-1038"}),
        ("roads.pothole", "อ.เมือง จ.ขอนแก่น", {"DIST-4001"}),
        ("debt.informal", "จ.ยะลา", {"PROV-95", "POL-95"}),
        ("police.misconduct", "จ.สงขลา", {"POL-90"}),
        ("corruption.officials", "จ.ภูเก็ต", {"PACC", "NACC"}),
        ("labour.wages", "จ.ระยอง", {"DLPW"}),
    ],
)
def test_rules_pick_the_responsible_agency(
    reference: ReferenceData, category: str, where: str, expected: set[str]
) -> None:
    assert set(best(reference, category, where)) == expected


def test_every_rule_explains_itself(reference: ReferenceData) -> None:
    route = routes("utilities.power", Place("50", "5014", None), reference)[0]
    rule = route.rule("utilities.power")
    assert "PEA" in rule["en"] and "nationwide" in rule["en"]
    assert rule["th"].startswith("การไฟฟ้าส่วนภูมิภาค")


def test_local_offices_do_not_serve_outside_their_area(reference: ReferenceData) -> None:
    codes = {r.agency.code for r in routes("roads.pothole", Place("50", "5014", None), reference, limit=50)}
    assert "DIST-5014" in codes and "BKK-1038" not in codes and "DIST-4001" not in codes and "BMA-PWD" not in codes


def test_catch_alls_only_when_nothing_names_the_category(reference: ReferenceData) -> None:
    codes = {r.agency.code for r in routes("utilities.power", Place("50", None, None), reference, limit=50)}
    assert "PSC" not in codes and "PROV-50" not in codes
