"""The scratch read model a benchmark runs against: a fresh PostgreSQL database when one listens, else SQLite."""

from __future__ import annotations

import socket
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

PG_HOST, PG_PORT = "127.0.0.1", 5432


def postgres_listening() -> bool:
    """Whether PostgreSQL answers on 127.0.0.1:5432 (the benches then measure on it by default)."""
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((PG_HOST, PG_PORT)) == 0


async def scratch_database(backend: str, pg_server: str, name: str, tmp: Path) -> str:
    """A new, empty database for one run: ``name`` dropped and created on ``pg_server``, or a SQLite file in ``tmp``."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp}/rongtuk.db"
    await drop_database(pg_server, name)
    server = await asyncpg.connect(pg_server, timeout=10)
    try:
        await server.execute(f"CREATE DATABASE {name}")
    finally:
        await server.close()
    pg = make_url(pg_server).set(drivername="postgresql+asyncpg", database=name)
    return pg.render_as_string(hide_password=False)


async def drop_database(pg_server: str, name: str) -> None:
    """Drop a scratch database, closing whatever connections a killed process left on it."""
    server = await asyncpg.connect(pg_server, timeout=10)
    try:
        await server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await server.close()
