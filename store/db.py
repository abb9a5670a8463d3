"""Engine and sessions for the read model: SQLite file by default, PostgreSQL by URL, same code."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from config.settings import Pooler, Settings


def driver_options(pooler: Pooler) -> dict[str, Any]:
    """asyncpg's connection arguments for ``pooler``. Behind a transaction-mode pooler: no statement kept from
    one use to the next (asyncpg's cache and SQLAlchemy's off), and each prepared under a name of its own, so
    that two clients whose transactions share a server connection never clash on asyncpg's numbered names
    (``prepared statement "__asyncpg_stmt_2__" already exists``). Every statement is then prepared in the
    transaction that runs it: one round trip more a statement."""
    if pooler is Pooler.NONE:
        return {}
    return {
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": _statement_name,
    }


def _statement_name() -> str:
    return f"__rongtuk_{uuid.uuid4().hex}__"


def open_database(settings: Settings, **options: Any) -> Database:
    """The read model at ``settings``' URL, through their pooler, with their pool unless ``options`` give one
    (the rest of ``options`` as for :class:`Database`)."""
    options.setdefault("pool", (settings.database_pool_size, settings.database_pool_overflow))
    return Database(settings.database_url, pooler=settings.database_pooler, **options)


class Database:
    """One engine and session factory per process."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        writer: bool = False,
        timeout: float | None = None,
        pool: tuple[int, int] = (10, 10),
        pooler: Pooler = Pooler.NONE,
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.pooler = Pooler.NONE if self.is_sqlite else pooler
        # Bound parameters carry names and phone numbers: keep them out of error messages and logs.
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.is_sqlite:
            _ensure_parent_dir(url)
            kwargs["connect_args"] = {"timeout": 30}
            if writer:
                # SQLite has one write lock: writers that contend for it back off in sleeps of up to 100 ms.
                # The worker's writes queue for a single connection instead (bench/README.md).
                kwargs.update(pool_size=1, max_overflow=0)
        else:
            kwargs.update(pool_size=pool[0], max_overflow=pool[1])
            kwargs["connect_args"] = driver_options(self.pooler)
            if timeout is not None:
                # Connecting, each statement's answer and a pooled connection each wait at most ``timeout``: a
                # database that stopped answering (a stalled network, a frozen server) fails the request, with
                # asyncpg cancelling the statement, instead of holding it and its connection for good.
                kwargs["connect_args"] |= {"timeout": timeout, "command_timeout": timeout}
                kwargs["pool_timeout"] = timeout
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            _ping_idle_connections(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # The same pool, each statement its own transaction (no BEGIN, no COMMIT round trips): for writes that
        # are one statement each (api/service.py files a complaint so on PostgreSQL; activities/projection.py
        # writes a transition). Used as ``autocommit.begin()``, so that behind a transaction-mode pooler, where
        # a statement must be prepared and run in one transaction, it is the plain engine and those writes are
        # transactions of their own.
        self.autocommit: AsyncEngine = (
            self.engine
            if self.pooler is Pooler.TRANSACTION
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


async def release(session: AsyncSession) -> None:
    """End ``session``'s reading transaction, so that its pooled connection goes back to the pool before the
    request waits (on Temporal, on a relay, on storage) or takes another connection: a request holds one
    connection at a time, and none while it waits (docs/operations.md; tests/connection_guard.py checks every
    API test against it). Holding one across a wait, 20 actions in flight emptied PostgreSQL's pool (10 + 10)
    and the next ones failed after the pool's timeout (bench.lifecycle_bench); taking a second while holding
    one, as many such requests as the pool has connections stall until its timeout. Loaded rows stay loaded
    (``expire_on_commit=False``); the next query starts a new transaction. A session with pending changes is
    left as it is."""
    if not (session.new or session.dirty or session.deleted):
        await session.commit()


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is away, not that a statement or its data is wrong: a connection
    refused, lost or timed out, the pool exhausted, a server starting up or out of connections (SQLAlchemy's
    OperationalError and InterfaceError), or, raw from the driver, a connection error or a timeout. The API
    answers these 503 (``api.errors``) and the worker retries them (``activities.projection.is_permanent``);
    constraint and programming errors are bugs or bad data."""
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    return isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError | ConnectionError | TimeoutError)


# A pooled connection unused for longer than this is pinged before it is handed out (see below).
PING_IDLE_SECONDS = 10.0


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """``pool_pre_ping``, but only for connections that sat idle: a connection the server dropped (a restart,
    an idle timeout) is replaced before a request gets it, as with ``pool_pre_ping``. The built-in pre-ping
    costs three round trips on asyncpg (BEGIN, a query, ROLLBACK) on every checkout, as many as the intake's
    own statements; a connection handed back moments ago is not pinged (asyncpg notices a closed socket
    itself, and SQLAlchemy still invalidates the pool on a disconnect error)."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        closed = getattr(getattr(dbapi_connection, "_connection", None), "is_closed", lambda: False)()
        if not closed and (idle_since is None or time.monotonic() - idle_since < PING_IDLE_SECONDS):
            return
        try:
            if closed:
                raise ConnectionError("closed")
            dbapi_connection.ping()
        except Exception as exc:
            # The pool discards this connection and checks out another (a fresh one if need be).
            raise DisconnectionError("stale pooled connection") from exc


def _ensure_parent_dir(url: str) -> None:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=ON",
)
_PRAGMA_TRIES, _PRAGMA_PAUSE = 50, 0.1  # 5 s at most


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The worker and the API share the file: WAL lets readers run beside the one writer, and the busy
    # timeout makes a writer wait for the lock instead of failing.
    #
    # A new connection's "journal_mode=WAL" was once refused at once with "database is locked" while other
    # connections of the suite were writing, busy timeout (the driver's, 30 s) notwithstanding: SQLite answers
    # some contention without calling the busy handler. Not reproduced on purpose; tried again for a while
    # here rather than failing the connection.
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _PRAGMAS:
            for attempt in range(_PRAGMA_TRIES):
                try:
                    cursor.execute(pragma)
                    break
                except Exception as exc:
                    if "database is locked" not in str(exc) or attempt == _PRAGMA_TRIES - 1:
                        raise
                    time.sleep(_PRAGMA_PAUSE)
    finally:
        cursor.close()
