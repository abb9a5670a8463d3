"""Run the Alembic migrations programmatically (``rongtuk db upgrade``, the dev runner and the tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from config.settings import Pooler
from store.db import driver_options

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str, pooler: Pooler = Pooler.NONE) -> Config:
    """An Alembic config pointing at our migrations and the given database.

    Alembic keeps its options in a ``configparser``, which reads ``%`` as the start of an interpolation: a
    URL with an escaped character (a password with ``@`` or ``%`` in it, ``?host=%2Fvar%2Frun%2Fpostgresql``
    for PostgreSQL's socket) would fail with ``ValueError`` unless each ``%`` is doubled."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.attributes["connect_args"] = {} if database_url.startswith("sqlite") else driver_options(pooler)
    return cfg


def upgrade(database_url: str, revision: str = "head", *, pooler: Pooler = Pooler.NONE) -> None:
    """Bring the database schema up to ``revision``, through ``pooler`` (store.db.driver_options)."""
    command.upgrade(alembic_config(database_url, pooler), revision)
