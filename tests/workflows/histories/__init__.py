"""Golden histories: recorded runs of ``ComplaintWorkflow`` (and its task children) that today's code must replay.

``make record-histories`` runs the workflow tests with ``RONGTUK_RECORD_HISTORIES`` set: after each test, a
case's history is kept if its timeline goes through an edge of the process table that no kept history covers
yet (so together they walk every edge the edge-coverage test walks), with its agency tasks' histories.
Recorded histories are never rewritten: a new behaviour adds new files beside the old ones, and the old ones
must still replay (``tests/workflows/test_replay.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from temporalio.client import Client, WorkflowHandle

from store import models
from store.db import Database

HERE = Path(__file__).parent
EDGES_FILE = "edges.json"


def recorded(folder: Path = HERE) -> list[Path]:
    """Every recorded history file, in name order."""
    return sorted(p for p in folder.glob("*/*.json") if p.name != EDGES_FILE)


def _compact(json_text: str) -> str:
    return json.dumps(json.loads(json_text), separators=(",", ":"))


def _covered(folder: Path) -> set[tuple[str, str]]:
    path = folder / EDGES_FILE
    return {tuple(e) for e in json.loads(path.read_text())} if path.exists() else set()  # type: ignore[misc]


_DB: list[Database] = []


def use_database(db: Database) -> None:
    """The read model whose timelines say which edges a case went through."""
    _DB[:] = [db]


async def _edges(case_id: str) -> set[tuple[str, str]]:
    async with _DB[0].session() as s:
        rows = await s.execute(
            select(models.CaseEvent.from_state, models.CaseEvent.event).where(
                models.CaseEvent.case_id == case_id, models.CaseEvent.from_state.is_not(None)
            )
        )
        edges = {(str(state), str(event)) for state, event in rows.all()}
        case = await s.get(models.Case, case_id)
    # One history per path too: the state a case was left in counts as an edge of its own.
    return edges | ({("path", case.status)} if case is not None else set())


async def record_if_new(client: Client, handle: WorkflowHandle, folder: Path) -> bool:  # type: ignore[type-arg]
    """Keep ``handle``'s history (and its children's) in ``folder`` if it walks an edge no kept one does."""
    if not _DB:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    edges = await _edges(handle.id.removeprefix("complaint-"))
    covered = _covered(folder)
    if edges <= covered:
        return False
    history = await handle.fetch_history()
    (folder / f"{handle.id}.json").write_text(_compact(history.to_json()))
    for event in history.events:
        if event.HasField("start_child_workflow_execution_initiated_event_attributes"):
            child = event.start_child_workflow_execution_initiated_event_attributes.workflow_id
            child_history = await client.get_workflow_handle(child).fetch_history()
            (folder / f"{child}.json").write_text(_compact(child_history.to_json()))
    (folder / EDGES_FILE).write_text(json.dumps(sorted(covered | edges), indent=0))
    return True
