"""the delivery log's attempts, counted by gateway and result as they are written

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 14:35:00

``/metrics`` served ``rongtuk_delivery_attempts_total`` by counting the whole delivery log at every scrape
(``GROUP BY gateway, result``). The log gains about 15 rows a case and is kept: with a million rows, under a
year of the PSC's complaints, the count took 0.8 s on SQLite at each scrape, and it grows with the log. Now the
database keeps the count: ``delivery_tally`` has a row per gateway, result and shard, and a trigger adds one
to it in the same transaction as each log row, whichever code writes the row. The counts so far are carried
over here. On PostgreSQL a connection adds to the shard of its backend pid (mod 64), so dispatchers in several
processes seldom wait on the same row; SQLite has one writer, and one shard.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite: a row trigger (it has no statement triggers), adding to its one shard in place.
_SQLITE = (
    "CREATE TRIGGER delivery_log_tally AFTER INSERT ON delivery_log BEGIN "
    "INSERT INTO delivery_tally (gateway, result, shard, n) VALUES (NEW.gateway, NEW.result, 0, 1) "
    "ON CONFLICT (gateway, result, shard) DO UPDATE SET n = delivery_tally.n + 1; END"
)
# PostgreSQL: a statement trigger over the rows the statement inserted, one upsert per statement and key (a row
# trigger would add a new version of the same tally row for every log row, and a transaction that logs many
# rows would walk ever longer chains of them), in key order so that two writers take the rows in one order.
_PG_FUNCTION = """CREATE FUNCTION delivery_log_tally() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO delivery_tally (gateway, result, shard, n)
    SELECT gateway, result, pg_backend_pid() % 64, count(*) FROM logged GROUP BY gateway, result
    ORDER BY gateway, result
    ON CONFLICT (gateway, result, shard) DO UPDATE SET n = delivery_tally.n + excluded.n;
    RETURN NULL;
END $$"""
_PG_TRIGGER = (
    "CREATE TRIGGER delivery_log_tally AFTER INSERT ON delivery_log REFERENCING NEW TABLE AS logged "
    "FOR EACH STATEMENT EXECUTE FUNCTION delivery_log_tally()"
)


def upgrade() -> None:
    op.create_table(
        "delivery_tally",
        sa.Column("gateway", sa.String(length=16), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("gateway", "result", "shard"),
    )
    if _pg():
        # No dispatcher logs between the count below and the trigger: the lock waits for those logging now and
        # holds the others until this migration commits (SQLite's migration holds its one write lock already).
        op.execute("LOCK TABLE delivery_log IN SHARE ROW EXCLUSIVE MODE")
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        op.execute(_SQLITE)
    op.execute(
        "INSERT INTO delivery_tally (gateway, result, shard, n) "
        "SELECT gateway, result, 0, count(*) FROM delivery_log GROUP BY gateway, result"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS delivery_log_tally" + (" ON delivery_log" if _pg() else ""))
    if _pg():
        op.execute("DROP FUNCTION IF EXISTS delivery_log_tally()")
    op.drop_table("delivery_tally")


def _pg() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")
