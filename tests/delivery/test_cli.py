"""``rongtuk deliver --once`` drains the outbox with the configured (here: no) gateways."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from cli.main import app
from config.settings import Settings, get_settings
from store.db import open_database
from tests.delivery.conftest import add_notifications, make_case, outbox


def test_deliver_once_drains_the_outbox(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    async def prepare() -> str:
        db = open_database(settings)
        try:
            case = await make_case(db, channels=["sms", "web"])
            await add_notifications(db, case)
            return case.case_id
        finally:
            await db.dispose()

    async def statuses(case_id: str) -> dict[str, tuple[str, str | None]]:
        db = open_database(settings)
        try:
            return {k: (r.status, r.gateway) for k, r in (await outbox(db, case_id)).items()}
        finally:
            await db.dispose()

    case_id = asyncio.run(prepare())
    # The command configures logging to the stream CliRunner hands it and closes afterwards; the session's
    # configuration must outlive this test.
    monkeypatch.setattr("config.logging.configure_logging", lambda **_: None)
    monkeypatch.setenv("RONGTUK_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RONGTUK_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["deliver", "--once"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "outbox row(s)" in result.output
    assert asyncio.run(statuses(case_id)) == {
        "1:complainant:sms:complainant": ("sent", "log"),  # no SMS gateway configured: logged, kept in the inbox
        "1:complainant:web:complainant": ("skipped", None),
    }
