"""Directory rules: which agencies handle a category in a place (category x place -> agency).

An agency fits when it lists the category, its group or "*" and its areas cover the place. Fits are ranked by
how exactly the category matches (exact, group, "*"), then how closely the area fits (district, province,
country), then the directory's order. A pothole in Lat Phrao goes to the Lat Phrao district office before the
BMA's Public Works Department; a power cut in Chiang Mai goes to PEA; an online scam to the police's Cyber
Crime Investigation Bureau, wherever it happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.agencies import WHOLE_COUNTRY, Agency
from config.reference import ReferenceData
from screening.places import Place

_MATCH = {2: "the category", 1: "its group", 0: "any complaint"}
_AREA = {3: "in this district", 2: "in this province", 1: "nationwide"}
_MATCH_TH = {2: "หมวดนี้", 1: "กลุ่มของหมวดนี้", 0: "ทุกเรื่อง"}
_AREA_TH = {3: "ในอำเภอ/เขตนี้", 2: "ในจังหวัดนี้", 1: "ทั่วประเทศ"}


@dataclass(frozen=True)
class Route:
    """One agency the directory points to, with its rank and the rule in words."""

    agency: Agency
    match: int  # 2 exact category, 1 group, 0 "*"
    specificity: int  # 3 district, 2 province, 1 whole country

    @property
    def score(self) -> int:
        return self.match * 10 + self.specificity

    def rule(self, category: str) -> dict[str, str]:
        return {
            "en": f"{self.agency.code} handles {_MATCH[self.match]} ({category}) {_AREA[self.specificity]}",
            "th": f"{self.agency.name_th} รับผิดชอบ{_MATCH_TH[self.match]} ({category}) {_AREA_TH[self.specificity]}",
        }


def routes(category: str, place: Place | None, reference: ReferenceData, *, limit: int = 3) -> list[Route]:
    """The agencies for ``category`` at ``place``, best first; catch-alls only when nothing better fits."""
    province = place.province_code if place else None
    district = place.district_code if place else None
    found: list[Route] = []
    # Only agencies that serve the place can fit: the whole country's, the province's and the district's.
    nearby = dict.fromkeys(
        code for area in (WHOLE_COUNTRY, province, district) if area for code in reference.serving.get(area, ())
    )
    for code in sorted(nearby, key=reference.position.__getitem__):
        agency = reference.agencies[code]
        match = max((reference.category_matches(h, category) for h in agency.categories), default=-1)
        if match < 0:
            continue
        specificity = agency.specificity(province, district)
        if specificity is None:
            continue
        found.append(Route(agency, match, specificity))
    found.sort(key=lambda r: -r.score)  # stable: the directory's order breaks ties
    # A catch-all (PSC, Damrongdham) is a fallback: shown only if no agency names the category or its group.
    specific = [r for r in found if r.match > 0]
    return (specific or found)[:limit]
