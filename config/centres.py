"""Receiving centres (``config/centres.yaml``): PSC 1111, the provincial Damrongdham centres, other agencies'.

A case records the centre that received it; supervisors filter the board by it. The provincial Damrongdham
centres are generated for every province from geothai, so the file lists only the national centres and any
exceptions. :func:`load_centres` refuses a broken file (unknown province, duplicate code, a default that is
not a centre), so the API and ``rongtuk ref check`` never run on one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

import geothai
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.complaint import DEFAULT_CENTRE

DEFAULT_CENTRES_FILE = Path(__file__).resolve().parent / "centres.yaml"
CODE_PATTERN = r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$"
_BANGKOK = "10"


class CentreKind(StrEnum):
    PSC = "psc"
    DAMRONGDHAM = "damrongdham"
    AGENCY = "agency"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Centre(_Strict):
    """One receiving centre; ``province_code`` for a provincial centre, ``agency`` for an agency's own."""

    code: str = Field(pattern=CODE_PATTERN, max_length=32)
    kind: CentreKind
    name_th: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)
    province_code: str | None = Field(None, pattern=r"^\d{2}$")
    agency: str | None = Field(None, max_length=32)


class _Template(_Strict):
    code: str = Field(min_length=1)
    name_th: str = Field(min_length=1)
    name_en: str = Field(min_length=1)


class _CentresFile(_Strict):
    default: str = DEFAULT_CENTRE
    centres: tuple[Centre, ...] = Field(min_length=1)
    provincial: _Template | None = None


class CentresError(ValueError):
    """The centres file has problems (all of them listed)."""


@dataclass(frozen=True)
class Centres:
    """The centres by code and the default one."""

    by_code: dict[str, Centre]
    default: str

    def __contains__(self, code: object) -> bool:
        return code in self.by_code

    def get(self, code: str | None) -> Centre | None:
        return self.by_code.get(code or self.default)


def _provincial(template: _Template) -> list[Centre]:
    out = []
    for province in geothai.provinces():
        # Bangkok is not a จังหวัด: its name stands alone.
        name_th = template.name_th
        if province.code == _BANGKOK:
            name_th = name_th.replace("จังหวัด{province_th}", "{province_th}")
        values = {"province_code": province.code, "province_th": province.name_th, "province_en": province.name_en}
        out.append(
            Centre(
                code=template.code.format(**values),
                kind=CentreKind.DAMRONGDHAM,
                name_th=name_th.format(**values),
                name_en=template.name_en.format(**values),
                province_code=province.code,
            )
        )
    return out


def check_centres(path: Path | None = None) -> tuple[Centres | None, list[str]]:
    """Read and check the centres file: the centres (when readable) and every problem found."""
    path = path or DEFAULT_CENTRES_FILE
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        parsed = _CentresFile.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        return None, [f"{path.name}: cannot read: {type(exc).__name__}"]
    except ValidationError as exc:
        return None, [f"{path.name}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    problems: list[str] = []
    provinces = {p.code for p in geothai.provinces()}
    generated = {c.code: c for c in _provincial(parsed.provincial)} if parsed.provincial else {}
    written: dict[str, Centre] = {}
    for centre in parsed.centres:
        if centre.code in written:
            problems.append(f"{path.name}: centre {centre.code} is listed twice")
        if centre.province_code is not None and centre.province_code not in provinces:
            problems.append(f"{path.name}: centre {centre.code}: {centre.province_code} is not a province code")
        written[centre.code] = centre
    if bad := [c for c in generated if not re.match(CODE_PATTERN, c)]:
        problems.append(f"{path.name}: the provincial template makes invalid codes such as {bad[0]}")
    by_code = generated | written  # a hand-written entry wins
    if parsed.default not in by_code:
        problems.append(f"{path.name}: the default centre {parsed.default} is not a centre")
    return Centres(by_code=by_code, default=parsed.default), problems


@lru_cache(maxsize=8)
def load_centres(path: Path | None = None) -> Centres:
    """The centres, or :class:`CentresError` listing every problem (start-up refuses a broken file)."""
    centres, problems = check_centres(path)
    if problems or centres is None:
        raise CentresError("centres file has problems:\n  " + "\n  ".join(problems))
    return centres
