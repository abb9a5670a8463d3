"""The registry of agencies that cases can be assigned to (``config/agencies.yaml`` plus every province)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geothai
import yaml

DEFAULT_AGENCIES_FILE = Path(__file__).resolve().parent / "agencies.yaml"


@dataclass(frozen=True)
class Agency:
    code: str
    name_th: str
    name_en: str


def load_agencies(path: Path | None = None) -> dict[str, Agency]:
    """Agencies by code: the file's central agencies and one governor's office per province (from geothai)."""
    raw: Any = yaml.safe_load((path or DEFAULT_AGENCIES_FILE).read_text(encoding="utf-8")) or []
    agencies = {row["code"]: Agency(row["code"], row["name_th"], row["name_en"]) for row in raw}
    for province in geothai.provinces():
        if province.code == "10":  # Bangkok is run by the BMA, already in the file
            continue
        code = f"PROV-{province.code}"
        agencies.setdefault(
            code,
            Agency(code, f"ศาลากลางจังหวัด{province.name_th}", f"{province.name_en} Provincial Office"),
        )
    return agencies
