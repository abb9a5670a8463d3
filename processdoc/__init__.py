"""The process table rendered for people and tools: JSON rows, a Mermaid state diagram, BPMN 2.0 XML and the
generated part of ``docs/process.md``.

Documentation tooling, not workflow code: everything here is derived from ``workflows.process`` and nothing
names a state or an event, so a row added to the table shows up in every rendering. Pure: no Temporal, no I/O.
The worker never imports this package.

- ``states``: the order and labels of the states every renderer shares;
- ``text``: JSON and Mermaid;
- ``bpmn``: BPMN 2.0 with a computed layout (lanes, gateways, timers);
- ``docs``: ``docs/process.md`` below its hand-written head;
- ``export``: ``rongtuk process export --format``.
"""

from processdoc.bpmn import is_bookkeeping, to_bpmn
from processdoc.docs import render_docs, to_markdown
from processdoc.export import ExportFormat, export
from processdoc.states import PROCESS_ID
from processdoc.text import to_json, to_mermaid

__all__ = [
    "PROCESS_ID",
    "ExportFormat",
    "export",
    "is_bookkeeping",
    "render_docs",
    "to_bpmn",
    "to_json",
    "to_markdown",
    "to_mermaid",
]
