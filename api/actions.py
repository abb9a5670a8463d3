"""Request models for the case actions, built from the process table's field specs (one source of truth)."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

from workflows.process import TRANSITIONS, FieldSpec

_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"


def _annotation(spec: FieldSpec) -> Any:
    if spec.kind == "choice":
        return Literal[spec.choices]
    if spec.kind == "int":
        return Annotated[int, Field(ge=spec.minimum, le=spec.maximum, strict=True)]
    if spec.kind == "agencies":
        code = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32, pattern=_CODE_PATTERN)]
        return Annotated[list[code], Field(min_length=1, max_length=10)]
    pattern = _CODE_PATTERN if spec.kind in {"code", "agency", "case"} else None
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=spec.max_length, pattern=pattern),
    ]


class _ActionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


@cache
def action_model(event: str) -> type[BaseModel]:
    """The body model of ``event``: its table fields, required ones required, unknown fields refused."""
    specs = {f.name: f for t in TRANSITIONS if t.event == event for f in t.fields}
    fields: dict[str, Any] = {
        name: (_annotation(spec), ...) if spec.required else (_annotation(spec) | None, None)
        for name, spec in specs.items()
    }
    return create_model(f"{event.title().replace('_', '')}Action", __base__=_ActionBody, **fields)
