"""The board's kind, priority, centre, region and category filters, and urgent cases first.

Rows are written straight into the read model (SQLite, or PostgreSQL with RONGTUK_TEST_DATABASE_URL), each with a
task for an agency of this module's own (the app is configured with it), so that filtering by that agency selects
exactly this test's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from api.main import create_app
from config.settings import Settings
from store import models
from store.board import sync_agency_tasks
from store.db import Database
from tests.api.conftest import SUPERVISOR
from tests.api.test_board import assert_error, board_get, configured, ids
from tests.connection_guard import Guard
from workflows.process import State

AGENCY = f"KINDS-{uuid.uuid4().hex[:10].upper()}"  # this run's own: its filter selects exactly a test's rows

# name: (kind, priority, centre, region, category, due in days)
SPECS: dict[str, tuple[str, str, str, str | None, str | None, int]] = {
    "flood": ("complaint", "urgent", "DAMRONG-50", "north", "flood.flooding", -3),
    "road": ("complaint", "normal", "PSC-1111", "north", "roads.potholes", -5),
    "idea": ("suggestion", "normal", "PSC-1111", "south", None, -4),
    "help": ("request", "urgent", "PSC-1111", "south", "flood.drainage", 2),
    "tip": ("tipoff", "normal", "DAMRONG-50", None, "police.crime", 1),
}


@pytest.fixture(scope="module")
def kinds_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return configured(settings, tmp_path_factory.mktemp("kinds-config"), agencies=[AGENCY], centre="KINDSTEST")


@pytest.fixture
async def client(kinds_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app; the board reads only the read model, so Temporal is never reached."""
    app, guard = create_app(kinds_settings), Guard()
    transport = httpx.ASGITransport(app=guard.guarded(app), raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://rongtuk") as c:
        guard.watch_app(app)
        yield c
    guard.check()


@dataclass
class World:
    agency: str
    ids: dict[str, str] = field(default_factory=dict)

    def of(self, *names: str) -> list[str]:
        return [self.ids[n] for n in names]


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    tag = uuid.uuid4().hex[:10]
    w = World(agency=AGENCY)
    now = datetime.now(UTC)
    async with db.session() as session:
        for i, (name, (kind, priority, centre, region, category, due)) in enumerate(SPECS.items()):
            case_id = f"RT-K{tag}-{i}"
            session.add(
                models.Case(
                    case_id=case_id,
                    tracking_code=f"K{tag}{i}".upper()[:16],
                    workflow_id=f"complaint-{case_id}",
                    status=str(State.STAGE1),
                    channel="web",
                    description="ทดสอบการกรองตามประเภทและความเร่งด่วน",
                    province="เชียงใหม่",
                    agencies=[w.agency],
                    received_at=now - timedelta(days=10),
                    updated_at=now,
                    due_at=now + timedelta(days=due),
                    due_rule="stage1_response",
                    stage=1,
                    kind=kind,
                    priority=priority,
                    centre=centre,
                    region=region,
                    category=category,
                    sla_class="urgent" if priority == "urgent" else "standard",
                )
            )
            await session.flush()  # the task's foreign key needs the case row first on PostgreSQL
            session.add(models.AgencyTask(case_id=case_id, agency=w.agency, status="assigned"))
            await session.flush()
            await sync_agency_tasks(session, case_id)
            w.ids[name] = case_id
    yield w
    async with db.session() as session:
        await session.execute(delete(models.AgencyTask).where(models.AgencyTask.case_id.in_(list(w.ids.values()))))
        await session.execute(delete(models.Case).where(models.Case.case_id.in_(list(w.ids.values()))))


async def test_urgent_cases_come_first_then_the_most_late(client: httpx.AsyncClient, world: World) -> None:
    body = await board_get(client, SUPERVISOR, agency=world.agency)
    assert ids(body) == world.of("flood", "help", "road", "idea", "tip")
    row = body["items"][0]
    assert row["priority"] == {"code": "urgent", "label_en": "Urgent", "label_th": "เร่งด่วน"}
    assert row["kind"]["code"] == "complaint" and row["kind"]["label_th"] == "เรื่องร้องทุกข์/ร้องเรียน"
    assert row["centre"]["code"] == "DAMRONG-50" and row["centre"]["label_th"] == "ศูนย์ดำรงธรรมจังหวัดเชียงใหม่"
    assert row["region"] == {"code": "north", "label_en": "North", "label_th": "ภาคเหนือ"}
    assert row["sla_class"]["code"] == "urgent" and row["category"] == "flood.flooding"


async def test_the_overdue_board_puts_urgent_cases_first_across_states(client: httpx.AsyncClient, world: World) -> None:
    # No other filter: the merged per-state plan; other tests' rows may be there too, so check the order only.
    body = await board_get(client, SUPERVISOR, overdue="true", page_size=200)
    priorities = [item["priority"]["code"] for item in body["items"]]
    assert priorities == sorted(priorities, key=lambda p: p != "urgent"), "urgent before normal"
    mine = [i for i in ids(body) if i in world.ids.values()]
    assert mine == world.of("flood", "road", "idea")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"kind": "complaint"}, ["flood", "road"]),
        ({"kind": "tipoff"}, ["tip"]),
        ({"priority": "urgent"}, ["flood", "help"]),
        ({"priority": "normal"}, ["road", "idea", "tip"]),
        ({"centre": "DAMRONG-50"}, ["flood", "tip"]),
        ({"centre": "damrong-50"}, ["flood", "tip"]),
        ({"region": "south"}, ["help", "idea"]),
        ({"category": "flood"}, ["flood", "help"]),  # a group takes in its categories
        ({"category": "flood.flooding"}, ["flood"]),
        ({"kind": "complaint", "region": "north", "priority": "normal"}, ["road"]),
        ({"centre": "PSC-1111", "category": "flood", "kind": "request"}, ["help"]),
        ({"centre": "DAMRONG-50", "kind": "suggestion"}, []),
    ],
)
async def test_each_filter_and_combined(
    client: httpx.AsyncClient, world: World, params: dict[str, Any], expected: list[str]
) -> None:
    body = await board_get(client, SUPERVISOR, agency=world.agency, **params)
    assert ids(body) == world.of(*expected) and body["total"] == len(expected)


@pytest.mark.parametrize(
    ("params", "field"),
    [({"kind": "gossip"}, "kind"), ({"priority": "asap"}, "priority"), ({"region": "atlantis"}, "region")],
)
async def test_bad_filter_values_are_422_in_both_languages(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await client.get("/api/v1/cases", params=params, headers=SUPERVISOR)
    error = assert_error(response, 422)
    assert [d["field"] for d in error["details"]] == [f"query.{field}"]
    assert all(d["message"] and d["message_th"] for d in error["details"])
