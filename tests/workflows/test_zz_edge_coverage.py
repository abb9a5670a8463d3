"""Every edge of the process table is exercised by some workflow test (runs last in this folder).

It reads the timelines the other workflow tests left in the read model, so it only judges a session that ran
them all; selecting a subset of the workflow tests skips it.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from store import models
from store.db import Database
from tests.workflows.paths import CASE_PREFIX
from workflows.process import TRANSITIONS


async def test_every_edge_of_the_table_is_exercised(request: pytest.FixtureRequest, db: Database) -> None:
    here = request.node.path.parent
    ran = {item.path for item in request.session.items if item.path.parent == here}
    if len(ran) < len(list(here.glob("test_*.py"))) or request.config.getoption("-k"):
        pytest.skip("judges only a session that ran every workflow test")
    async with db.session() as s:
        rows = await s.execute(
            select(models.CaseEvent.from_state, models.CaseEvent.event)
            .where(models.CaseEvent.case_id.like(f"{CASE_PREFIX}%"), models.CaseEvent.from_state.is_not(None))
            .distinct()
        )
        exercised = {(state, event) for state, event in rows.all()}
    edges = {(t.source.value, t.event) for t in TRANSITIONS}
    missing = sorted(edges - exercised)
    assert not missing, f"{len(missing)} edge(s) of the process table no workflow test goes through: {missing}"
    assert exercised <= edges, f"transitions outside the table were recorded: {sorted(exercised - edges)}"
