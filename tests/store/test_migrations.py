"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url

from store.db import Database
from store.migrate import upgrade
from store.models import Base


async def test_migrated_schema_matches_the_models(db: Database) -> None:
    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection)
        return [
            d
            for d in compare_metadata(context, Base.metadata)
            if d[0] != "remove_table" or d[1].name != "alembic_version"
        ]

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


def test_migration_0006_gives_existing_cases_their_defaults_and_region(tmp_path: Path) -> None:
    """Cases filed before kinds existed: complaints, normal, PSC 1111, no class, region from their province."""
    url = f"sqlite:///{tmp_path / 'before.db'}"
    upgrade(url.replace("sqlite://", "sqlite+aiosqlite://"), "0004")
    engine = create_engine(url)
    row = {"case_id": "RT-OLD-1", "tracking_code": "OLD0000001", "workflow_id": "complaint-RT-OLD-1"}
    with engine.begin() as conn:
        for case_id, province in (("RT-OLD-1", "เชียงใหม่"), ("RT-OLD-2", None)):
            conn.execute(
                text(
                    "INSERT INTO cases (case_id, tracking_code, workflow_id, status, channel, description, "
                    "preferred_channels, confidential, province, attachments, agencies, received_at, updated_at, "
                    "last_seq, escalation_level, rejections, late_review_allowed) VALUES (:id, :code, :wf, 'stage1', "
                    "'web', 'x', '[]', 0, :province, '[]', '[]', '2026-01-05', '2026-01-05', 3, 0, 0, 0)"
                ),
                {"id": case_id, "code": case_id[-8:], "wf": row["workflow_id"], "province": province},
            )
    upgrade(url.replace("sqlite://", "sqlite+aiosqlite://"))
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT case_id, kind, priority, centre, sla_class, region FROM cases ORDER BY case_id")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("RT-OLD-1", "complaint", "normal", "PSC-1111", None, "north"),
        ("RT-OLD-2", "complaint", "normal", "PSC-1111", None, None),
    ]


def test_migration_0015_gives_existing_cases_their_category_group(tmp_path: Path) -> None:
    """Cases written before the group column: the board's group filter finds them once migrated."""
    url = f"sqlite:///{tmp_path / 'before.db'}"
    upgrade(url.replace("sqlite://", "sqlite+aiosqlite://"), "0014")
    engine = create_engine(url)
    with engine.begin() as conn:
        for n, category in enumerate(("roads.potholes", "roads", "water.flooding", None)):
            conn.execute(
                text(
                    "INSERT INTO cases (case_id, tracking_code, workflow_id, status, channel, description, "
                    "preferred_channels, confidential, attachments, agencies, received_at, updated_at, last_seq, "
                    "escalation_level, rejections, late_review_allowed, category) VALUES (:id, :id, :id, 'stage1', "
                    "'web', 'x', '[]', 0, '[]', '[]', '2026-01-05', '2026-01-05', 3, 0, 0, 0, :category)"
                ),
                {"id": f"RT-OLD-{n}", "category": category},
            )
    upgrade(url.replace("sqlite://", "sqlite+aiosqlite://"))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT category, category_group FROM cases ORDER BY case_id")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("roads.potholes", "roads"),
        ("roads", "roads"),
        ("water.flooding", "water"),
        (None, None),
    ]


def test_a_url_with_percent_signs_migrates(tmp_path: Path) -> None:
    """Alembic's options are a configparser, where ``%`` starts an interpolation: a database path with one, or
    an escaped character in a password or a socket path (below), made ``rongtuk db upgrade`` fail."""
    path = tmp_path / "ศูนย์ 100%" / "rongtuk.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    engine.dispose()


@pytest.mark.skipif(not os.environ.get("RONGTUK_TEST_DATABASE_URL"), reason="PostgreSQL: RONGTUK_TEST_DATABASE_URL")
def test_a_postgresql_url_with_an_escaped_password_migrates() -> None:
    """A password with ``@`` and ``%`` in it is written escaped in the URL (``p%40ss%25``). The test server
    trusts its local connections, so any password reaches it; the migrations are already at head."""
    url = make_url(os.environ["RONGTUK_TEST_DATABASE_URL"]).set(password="p@ss%")
    rendered = url.render_as_string(hide_password=False)
    assert "p%40ss%25" in rendered
    upgrade(rendered)
