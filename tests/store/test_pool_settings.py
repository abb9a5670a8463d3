"""The PostgreSQL pool each process keeps, as the settings say (``RONGTUK_DATABASE_POOL_SIZE`` and
``_OVERFLOW``): that many connections at once and no more, a request past them waiting its turn for at most
the database timeout."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api.main import create_app
from config.settings import Settings
from store.db import open_database


@pytest.fixture
def pg_settings(settings: Settings) -> Settings:
    if settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite has no connection pool to size (one file, one writer)")
    return settings.model_copy(update={"database_pool_size": 3, "database_pool_overflow": 2})


async def test_a_process_holds_as_many_connections_as_its_pool_allows(pg_settings: Settings) -> None:
    db = open_database(pg_settings, timeout=1.0)
    try:
        async with contextlib.AsyncExitStack() as held:
            for _ in range(5):  # 3 kept and 2 overflow
                conn = await held.enter_async_context(db.engine.connect())
                assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
            with pytest.raises(PoolTimeout):
                await asyncio.wait_for(db.engine.connect().__aenter__(), timeout=10)
        assert db.engine.pool.size() == 3
        assert db.engine.pool.checkedin() == 3  # the overflow closed when handed back
    finally:
        await db.dispose()


async def test_the_api_opens_its_pool_from_the_settings(pg_settings: Settings) -> None:
    app = create_app(pg_settings)
    async with app.router.lifespan_context(app):
        assert app.state.db.engine.pool.size() == 3
        assert app.state.report_db.engine.pool.size() == 2  # the reports keep their own small pool
