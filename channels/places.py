"""Places for the LINE conversation, checked by the intake's own :class:`api.schemas.Location` (geothai)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from api.errors import BilingualError
from api.schemas import Location
from channels.line_conversation import PlaceError

_SEPARATORS = re.compile(r"[\s,]+")
NOT_FOUND = "ไม่พบจังหวัดหรืออำเภอ/เขตนี้ โปรดพิมพ์ชื่อจังหวัดและอำเภอ/เขต เช่น เชียงใหม่ สันทราย หรือส่งตำแหน่งที่ตั้ง"


def _location(**fields: Any) -> dict[str, Any]:
    """The checked Location fields, or the Thai reason it was refused."""
    try:
        return Location(**fields).model_dump(exclude_none=True)
    except ValidationError as exc:
        cause = (exc.errors()[0].get("ctx") or {}).get("error") if exc.errors() else None
        if isinstance(cause, BilingualError):
            raise PlaceError(cause.message_th) from None
        raise PlaceError(NOT_FOUND) from None


def _readings(text: str) -> list[dict[str, str]]:
    """Ways to read typed words as areas: one name, or a split into two (either order), e.g. "เชียงใหม่ สันทราย"."""
    words = [w for w in _SEPARATORS.split(text.strip()) if w]
    whole = " ".join(words)
    readings: list[dict[str, str]] = [{"province": whole}, {"district": whole}]
    for cut in range(1, len(words)):
        first, rest = " ".join(words[:cut]), " ".join(words[cut:])
        readings += [{"province": first, "district": rest}, {"district": first, "province": rest}]
    return readings


class GeoThaiPlaces:
    """Typed province/district names and LINE location messages, turned into Location fields."""

    def typed(self, text: str) -> dict[str, Any]:
        if not text.strip() or len(text) > 200:
            raise PlaceError(NOT_FOUND)
        refusals: list[PlaceError] = []
        for reading in _readings(text):
            try:
                return _location(**reading)
            except PlaceError as exc:
                refusals.append(exc)
        # The first reading's reason says most (e.g. "give the province too" for a district in many provinces).
        ambiguous = [r for r in refusals if "โปรดระบุ" in r.message_th]
        raise ambiguous[0] if ambiguous else PlaceError(NOT_FOUND)

    def point(self, latitude: float, longitude: float, address: str | None) -> dict[str, Any]:
        return _location(latitude=latitude, longitude=longitude, address=(address or "")[:500] or None)
