"""The database's plan for a statement, as the application sends it: for tests that an index serves a query."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Executable

from store.db import Database


async def query_plan(db: Database, statement: Executable, values: dict[str, Any] | None = None) -> str:
    """The database's plan for ``statement`` as the application sends it (its parameters bound by the driver;
    ``values`` for those it must have, whose value a generic plan on PostgreSQL does not use)."""
    async with db.session() as session:
        connection = await session.connection()
        compiled = statement.compile(dialect=connection.dialect)
        expanded = compiled.construct_expanded_state(values or {})  # IN lists and LIMITs written out
        sql = expanded.statement
        positional = tuple(expanded.parameters[name] for name in expanded.positiontup or ())
        if db.is_sqlite:
            rows = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", positional)
            return "\n".join(str(row[-1]) for row in rows)
        # A test's table is small enough to scan; without scans, the plan shows whether the index can serve. The
        # generic plan, as a prepared statement (asyncpg prepares each one) gets after a few runs: it knows no
        # parameter's value, so only the query's own text can match a partial index.
        await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        await connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        await connection.exec_driver_sql(f"PREPARE app_plan AS {sql}")
        # A generic plan is the same whatever the values: NULL stands for each.
        arguments = f"({', '.join('NULL' for _ in positional)})" if positional else ""
        rows = await connection.exec_driver_sql(f"EXPLAIN EXECUTE app_plan{arguments}")
        plan = "\n".join(str(row[0]) for row in rows)
        await connection.exec_driver_sql("DEALLOCATE app_plan")
        return plan
