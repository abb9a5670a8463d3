"""The guard that checks every API test against "a request holds one database connection at a time, and none
while it waits on Temporal" (tests/connection_guard.py) sees each breach, and nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment

from config.settings import Settings
from store.db import Database, open_database, release
from tests.connection_guard import Guard


@pytest.fixture
async def own_db(settings: Settings) -> AsyncIterator[Database]:
    """A pool of this test's own: the guard's listeners stay on the engine it watches."""
    database = open_database(settings)
    yield database
    await database.dispose()


async def test_the_guard_sees_a_second_connection_and_a_wait_on_temporal(
    own_db: Database, dev_env: WorkflowEnvironment
) -> None:
    guard = Guard()
    guard.watch(own_db.engine)
    temporal = guard.watched_client(dev_env.client)
    app = FastAPI()

    @app.get("/two-at-once")
    async def two_at_once() -> None:
        async with own_db.sessions() as outer:
            await outer.execute(text("SELECT 1"))
            async with own_db.sessions() as inner:
                await inner.execute(text("SELECT 2"))

    @app.get("/one-after-another")
    async def one_after_another() -> None:
        async with own_db.sessions() as first:
            await first.execute(text("SELECT 1"))
            await release(first)
            async with own_db.sessions() as second:
                await second.execute(text("SELECT 2"))
            await first.execute(text("SELECT 3"))  # a new transaction, on whichever connection is free

    @app.get("/temporal-holding")
    async def temporal_holding() -> None:
        async with own_db.sessions() as session:
            await session.execute(text("SELECT 1"))
            await temporal.count_workflows()

    @app.get("/temporal-released")
    async def temporal_released() -> None:
        async with own_db.sessions() as session:
            await session.execute(text("SELECT 1"))
            await release(session)
            await temporal.count_workflows()

    transport = httpx.ASGITransport(app=guard.guarded(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for path in ("/one-after-another", "/temporal-released"):
            assert (await client.get(path)).status_code == 200
        assert guard.breaches == []
        # Outside a request (the app's own tasks, a test's setup), two at once are nobody's breach.
        async with own_db.sessions() as a, own_db.sessions() as b:
            await a.execute(text("SELECT 1"))
            await b.execute(text("SELECT 1"))
        assert guard.breaches == []

        for path in ("/two-at-once", "/temporal-holding"):
            assert (await client.get(path)).status_code == 200
    assert len(guard.breaches) == 2
    second, waiting = guard.breaches
    assert second.startswith("GET /two-at-once took a second connection: ")
    assert "tests/api/test_connection_rule.py" in second and "two_at_once" in second  # where, in our code
    assert waiting.startswith("GET /temporal-holding called Temporal (count_workflows) holding a connection: ")
    with pytest.raises(AssertionError, match="one-connection rule"):
        guard.check()
