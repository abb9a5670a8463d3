"""``rongtuk process export --format``: one name per renderer."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum

from processdoc.bpmn import to_bpmn
from processdoc.text import to_json, to_mermaid
from workflows.process import TRANSITIONS, Transition


class ExportFormat(StrEnum):
    """What ``rongtuk process export --format`` accepts."""

    JSON = "json"
    MERMAID = "mermaid"
    BPMN = "bpmn"


def export(fmt: ExportFormat | str, transitions: Sequence[Transition] = TRANSITIONS) -> str:
    """Render ``transitions`` in the named format (what ``rongtuk process export`` prints)."""
    renderers: Mapping[ExportFormat, Callable[[Sequence[Transition]], str]] = {
        ExportFormat.JSON: to_json,
        ExportFormat.MERMAID: to_mermaid,
        ExportFormat.BPMN: to_bpmn,
    }
    return renderers[ExportFormat(fmt)](transitions)
