"""The supervisor board and /metrics over read-model rows written straight into the database.

These routes only read the read model, so the app here has no Temporal: the error handlers, the two routers
and the shared ``db`` (SQLite by default, PostgreSQL with RONGTUK_TEST_DATABASE_URL). The board refuses a filter
value its configuration does not know, so this module's app is configured with two agencies and a receiving
centre of its own (``board_settings``): a test's cases carry that centre, and its assertions are exact whatever
else the database holds.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete, update

from api.main import create_app
from api.views import BANGKOK
from config.agencies import DEFAULT_AGENCIES_FILE
from config.centres import DEFAULT_CENTRES_FILE
from config.settings import Settings
from sla.calendar import WorkingCalendar
from store import models
from store.board import sync_agency_tasks
from store.db import Database
from store.queries import list_cases
from tests.api.conftest import AUDITOR, OFFICER, SUPERVISOR, agency, bearer
from tests.connection_guard import Guard
from workflows.process import OPEN_STATES, State

ADMIN = bearer("admin-1", "admin")
NAME, PHONE, CITIZEN_ID, EMAIL = "สมชาย ใจดีมาก", "0899999999", "1103700012345", "somchai.board@example.com"
DESCRIPTION = "ถนนหน้าบ้านเลขที่ 99 เป็นหลุมลึก รถจักรยานยนต์ล้มทุกวัน"


# This run's own codes: the board's filters select exactly this module's rows (each test removes its own).
TAG = uuid.uuid4().hex[:10].upper()
A1, A2, CENTRE = f"A1-{TAG}", f"A2-{TAG}", f"BOARDTEST-{TAG}"
PROVINCE = "แม่ฮ่องสอน"


def configured(settings: Settings, directory: Path, *, agencies: list[str], centre: str) -> Settings:
    """``settings`` with the repository's agency and centre files plus these agencies and this centre."""
    directory.mkdir(parents=True, exist_ok=True)
    directory_file = yaml.safe_load(DEFAULT_AGENCIES_FILE.read_text(encoding="utf-8"))
    directory_file["agencies"] += [
        {"code": code, "kind": "department", "name_th": f"หน่วยงานทดสอบ {code}", "name_en": f"Test agency {code}"}
        for code in agencies
    ]
    centres_file = yaml.safe_load(DEFAULT_CENTRES_FILE.read_text(encoding="utf-8"))
    centres_file["centres"].append({"code": centre, "kind": "agency", "name_th": "ศูนย์ทดสอบ", "name_en": "Test centre"})
    (directory / "agencies.yaml").write_text(yaml.safe_dump(directory_file, allow_unicode=True), encoding="utf-8")
    (directory / "centres.yaml").write_text(yaml.safe_dump(centres_file, allow_unicode=True), encoding="utf-8")
    return settings.model_copy(
        update={"agencies_file": directory / "agencies.yaml", "centres_file": directory / "centres.yaml"}
    )


@pytest.fixture(scope="module")
def board_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return configured(settings, tmp_path_factory.mktemp("board-config"), agencies=[A1, A2], centre=CENTRE)


@pytest.fixture
def calendar(settings: Settings) -> WorkingCalendar:
    return settings.calendar()  # the configuration the app builds its own from


@pytest.fixture
async def client(board_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app; the board and the metrics read only the read model, so Temporal is never reached."""
    app, guard = create_app(board_settings), Guard()
    transport = httpx.ASGITransport(app=guard.guarded(app), raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://rongtuk") as c:
        guard.watch_app(app)
        yield c
    guard.check()


def overdue_by(calendar: WorkingCalendar, now: datetime, working_days: int) -> datetime:
    """A midnight deadline that lies ``working_days`` working days before ``now`` (as the board counts)."""
    day = now.astimezone(BANGKOK).date()
    counted = 0
    while counted < working_days:
        if calendar.is_working_day(day):
            counted += 1
        day -= timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=BANGKOK)


@dataclass
class World:
    """One test's cases, all received by this module's centre, with tasks for its two agencies."""

    province: str
    centre: str
    a1: str
    a2: str
    now: datetime
    cases: dict[str, models.Case] = field(default_factory=dict)

    def id(self, name: str) -> str:
        return self.cases[name].case_id


async def make_world(db: Database, calendar: WorkingCalendar) -> World:
    """Insert seven cases around now: overdue by 3 and 1 working days, at risk, due later, paused, finished."""
    tag = uuid.uuid4().hex[:10]
    w = World(province=PROVINCE, centre=CENTRE, a1=A1, a2=A2, now=datetime.now(UTC))
    now = w.now
    late3, late1, late5 = (overdue_by(calendar, now, n) for n in (3, 1, 5))
    risk, later = calendar.add_working_days(now, 1), calendar.add_working_days(now, 10)
    Tasks = dict[str, tuple[str, datetime | None]]
    # name: (status, due_at, stage, confidential, escalation_level, {agency: (task status, task due_at)})
    specs: dict[str, tuple[State, datetime | None, int | None, bool, int, Tasks]] = {
        "late3": (State.STAGE1, late3, 1, False, 1, {w.a1: ("accepted", late3), w.a2: ("responded", late3)}),
        "late1": (State.ASSIGNMENT, late1, None, False, 0, {w.a1: ("assigned", late1), w.a2: ("assigned", late1)}),
        "risk": (State.STAGE1, risk, 1, True, 0, {w.a1: ("accepted", risk)}),
        "later": (State.STAGE2, later, 2, False, 0, {w.a2: ("accepted", None)}),
        "paused": (State.STAGE1, None, 1, False, 0, {w.a1: ("cancelled", late3)}),
        "closed": (State.CLOSED, None, 1, False, 2, {w.a1: ("responded", late3)}),
        # A finished case whose deadline was never cleared must still not count as overdue.
        "stale": (State.WITHDRAWN, late5, None, False, 0, {}),
    }
    async with db.session() as session:
        for i, (name, (status, due_at, stage, confidential, level, tasks)) in enumerate(specs.items()):
            case = models.Case(
                case_id=f"RT-T{tag}-{i}",
                tracking_code=f"{tag}{i:02d}".upper(),
                workflow_id=f"complaint-RT-T{tag}-{i}",
                status=str(status),
                channel="hotline",
                description=DESCRIPTION,
                complainant_name=NAME,
                complainant_phone=PHONE,
                complainant_citizen_id=CITIZEN_ID,
                complainant_email=EMAIL,
                confidential=confidential,
                province=w.province,
                centre=w.centre,
                agencies=list(tasks),
                received_at=now - timedelta(days=20, hours=i),
                updated_at=now,
                due_at=due_at,
                due_rule="stage1_response" if due_at else None,
                stage=stage,
                escalation_level=level,
            )
            session.add(case)
            w.cases[name] = case
            await session.flush()  # the tasks' foreign key needs the case row first on PostgreSQL
            for code, (task_status, task_due) in tasks.items():
                session.add(models.AgencyTask(case_id=case.case_id, agency=code, status=task_status, due_at=task_due))
            await session.flush()
            await sync_agency_tasks(session, case.case_id)  # the case's board columns, as the projection copies them
    return w


async def remove_world(db: Database, w: World) -> None:
    async with db.session() as session:
        case_ids = [c.case_id for c in w.cases.values()]
        for table in (models.CaseEvent, models.AgencyTask):
            await session.execute(delete(table).where(table.case_id.in_(case_ids)))
        await session.execute(delete(models.Case).where(models.Case.case_id.in_(case_ids)))


@pytest.fixture
async def world(db: Database, calendar: WorkingCalendar) -> AsyncIterator[World]:
    w = await make_world(db, calendar)
    yield w
    await remove_world(db, w)


async def board_get(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/cases", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def ids(body: dict[str, Any]) -> list[str]:
    return [item["case_id"] for item in body["items"]]


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["message_th"] and error["message"] != error["message_th"]
    return error


# --- the board ----------------------------------------------------------------------------------------------


async def test_overdue_and_at_risk_filters(client: httpx.AsyncClient, world: World, calendar: WorkingCalendar) -> None:
    body = await board_get(client, SUPERVISOR, overdue="true", centre=world.centre)
    assert ids(body) == [world.id("late3"), world.id("late1")]  # most late first; finished "stale" left out
    assert body["total"] == 2
    as_of = datetime.fromisoformat(body["as_of"])
    late3, late1 = body["items"]
    assert late3["overdue"] is late1["overdue"] is True
    assert late3["working_days_late"] == calendar.working_days_between(world.cases["late3"].due_at, as_of) == 3
    assert late1["working_days_late"] == 1
    assert late3["at_risk"] is late1["at_risk"] is False, "overdue is not at risk"

    body = await board_get(client, SUPERVISOR, at_risk="true", centre=world.centre)
    assert ids(body) == [world.id("risk")]
    assert body["items"][0]["overdue"] is False and body["items"][0]["working_days_late"] == 0
    assert body["items"][0]["at_risk"] is True

    everything = {
        item["case_id"]: item["at_risk"] for item in (await board_get(client, SUPERVISOR, centre=world.centre))["items"]
    }
    assert everything == {world.id(n): n == "risk" for n in world.cases}, "each row says whether it is at risk"

    body = await board_get(client, SUPERVISOR, overdue="false", centre=world.centre)
    assert set(ids(body)) == {world.id(n) for n in ("risk", "later", "paused", "closed", "stale")}
    body = await board_get(client, SUPERVISOR, at_risk="false", centre=world.centre)
    assert world.id("risk") not in ids(body) and body["total"] == 6
    body = await board_get(client, SUPERVISOR, overdue="true", at_risk="true", centre=world.centre)
    assert body["items"] == [] and body["total"] == 0


async def test_open_cases_only_and_the_ended_ones(client: httpx.AsyncClient, world: World) -> None:
    # The open cases in the board's order (most late first, the one without a deadline last), the count of
    # what is still in hand; "stale" ended with a deadline never cleared and is not open for that.
    body = await board_get(client, SUPERVISOR, open_only="true", centre=world.centre)
    assert ids(body) == [world.id(n) for n in ("late3", "late1", "risk", "later", "paused")]
    assert body["total"] == 5
    body = await board_get(client, SUPERVISOR, open_only="false", centre=world.centre)
    assert ids(body) == [world.id("stale"), world.id("closed")] and body["total"] == 2
    # With the other filters: what they select, of the open (or ended) cases.
    body = await board_get(client, SUPERVISOR, open_only="true", status="stage1", centre=world.centre)
    assert ids(body) == [world.id("late3"), world.id("risk"), world.id("paused")]
    body = await board_get(client, SUPERVISOR, open_only="true", overdue="true", centre=world.centre)
    assert ids(body) == [world.id("late3"), world.id("late1")]
    body = await board_get(client, SUPERVISOR, open_only="false", overdue="true", centre=world.centre)
    assert body["items"] == [] and body["total"] == 0
    body = await board_get(client, SUPERVISOR, open_only="false", status="closed", centre=world.centre)
    assert ids(body) == [world.id("closed")]
    body = await board_get(client, SUPERVISOR, open_only="true", agency=world.a1)
    assert ids(body) == [world.id("late3"), world.id("late1"), world.id("risk")]


async def test_everything_sorted_most_late_first_and_paginated(client: httpx.AsyncClient, world: World) -> None:
    # The open cases, most late first and the paused one (no deadline) last; then the ended ones, the finished
    # case whose deadline was never cleared before the closed one.
    expected = [world.id(n) for n in ("late3", "late1", "risk", "later", "paused", "stale", "closed")]
    body = await board_get(client, OFFICER, centre=world.centre)
    assert ids(body) == expected and body["total"] == 7
    assert (body["page"], body["page_size"]) == (1, 50)

    page2 = await board_get(client, AUDITOR, centre=world.centre, page_size=2, page=2)
    assert ids(page2) == expected[2:4]
    assert (page2["total"], page2["page"], page2["page_size"]) == (7, 2, 2)
    last = await board_get(client, SUPERVISOR, centre=world.centre, page_size=2, page=4)
    assert ids(last) == expected[6:] and last["total"] == 7
    beyond = await board_get(client, SUPERVISOR, centre=world.centre, page_size=2, page=9)
    assert beyond["items"] == [] and beyond["total"] == 7


async def test_stage_status_and_agency_filters(client: httpx.AsyncClient, world: World) -> None:
    body = await board_get(client, SUPERVISOR, stage=2, centre=world.centre)
    assert ids(body) == [world.id("later")]
    body = await board_get(client, SUPERVISOR, stage=1, centre=world.centre)
    assert set(ids(body)) == {world.id("late3"), world.id("risk"), world.id("paused"), world.id("closed")}
    body = await board_get(client, SUPERVISOR, status="stage1", centre=world.centre)
    assert ids(body) == [world.id("late3"), world.id("risk"), world.id("paused")]
    body = await board_get(client, SUPERVISOR, overdue="true", status="stage1", centre=world.centre)
    assert ids(body) == [world.id("late3")]
    body = await board_get(client, SUPERVISOR, overdue="true", status="closed", centre=world.centre)
    assert body["items"] == [] and body["total"] == 0

    # Only tasks the agency still owes count: a1's cancelled and responded tasks do not.
    body = await board_get(client, SUPERVISOR, agency=world.a1)
    assert ids(body) == [world.id("late3"), world.id("late1"), world.id("risk")]
    body = await board_get(client, SUPERVISOR, agency=world.a2)
    assert ids(body) == [world.id("late1"), world.id("later")]
    body = await board_get(client, OFFICER, agency=world.a1, overdue="true")
    assert ids(body) == [world.id("late3"), world.id("late1")]


async def test_agency_staff_see_only_their_own_agency(client: httpx.AsyncClient, world: World) -> None:
    staff = agency(world.a1)
    body = await board_get(client, staff)  # no filter given: held to a1 anyway
    assert ids(body) == [world.id("late3"), world.id("late1"), world.id("risk")] and body["total"] == 3
    again = await board_get(client, staff, agency=world.a1)  # naming their own agency is fine
    assert ids(again) == ids(body) and again["total"] == 3
    by_id = {item["case_id"]: item for item in body["items"]}
    assert by_id[world.id("risk")]["tracking_code"] is None  # confidential complainant
    assert by_id[world.id("late3")]["tracking_code"] == world.cases["late3"].tracking_code
    supervisor_view = await board_get(client, SUPERVISOR, agency=world.a1)
    assert {i["case_id"]: i["tracking_code"] for i in supervisor_view["items"]}[world.id("risk")] is not None

    error = assert_error(await client.get("/api/v1/cases", params={"agency": world.a2}, headers=staff), 403)
    assert error["code"] == "forbidden"
    assert world.a1 in error["message"] and world.a1 in error["message_th"]


async def test_administrators_and_strangers_are_refused(client: httpx.AsyncClient, world: World) -> None:
    assert_error(await client.get("/api/v1/cases", headers=ADMIN), 403)
    assert_error(await client.get("/api/v1/cases"), 401)
    forged = {"Authorization": "Bearer " + bearer("sup-1", "supervisor")["Authorization"].split()[1][:-4] + "AAAA"}
    assert_error(await client.get("/api/v1/cases", headers=forged), 401)


async def test_the_province_filter_takes_any_name_people_use(client: httpx.AsyncClient, world: World) -> None:
    everything = {world.id(n) for n in world.cases}
    for name in (PROVINCE, "Mae Hong Son", "58"):  # Thai, English, the DOPA code
        body = await board_get(client, SUPERVISOR, centre=world.centre, province=name)
        assert set(ids(body)) == everything, name
    elsewhere = await board_get(client, SUPERVISOR, centre=world.centre, province="เชียงใหม่")
    assert elsewhere["items"] == [] and elsewhere["total"] == 0
    lower = await board_get(client, SUPERVISOR, centre=world.centre.lower(), agency=world.a1.lower())
    assert ids(lower) == [world.id("late3"), world.id("late1"), world.id("risk")], "codes in any case"
    named = await board_get(client, SUPERVISOR, centre=world.centre, agency=f"หน่วยงานทดสอบ {world.a1}")
    assert ids(named) == ids(lower), "an agency's name, as on the board page"


async def test_unknown_filter_values_are_named_not_shown_as_an_empty_board(
    client: httpx.AsyncClient, world: World
) -> None:
    # Compared as given, each listed nothing: a typo read as "no such cases".
    params = {
        "agency": "BMX",
        "province": "Atlantis",
        "centre": "PSC-1112",
        "region": "atlantis",
        "category": "roads.potholez",
        "overdue": "true",
    }
    error = assert_error(await client.get("/api/v1/cases", params=params, headers=SUPERVISOR), 422)
    assert error["code"] == "unknown_filter"
    fields = ["query.agency", "query.province", "query.centre", "query.region", "query.category"]
    assert [d["field"] for d in error["details"]] == fields
    for detail, value in zip(
        error["details"], ("BMX", "Atlantis", "PSC-1112", "atlantis", "roads.potholez"), strict=True
    ):
        assert value in detail["message"] and value in detail["message_th"]
    assert "/api/v1/agencies" in error["details"][0]["message"]
    # One value wrong among known ones: that one is named.
    one = assert_error(
        await client.get("/api/v1/cases", params={"centre": world.centre, "agency": "A9-NOPE"}, headers=SUPERVISOR),
        422,
    )
    assert [d["field"] for d in one["details"]] == ["query.agency"]
    several = await client.get("/api/v1/cases", params={"agency": "หน่วยงานทดสอบ"}, headers=SUPERVISOR)
    assert assert_error(several, 422)["details"][0]["field"] == "query.agency", "part of several names: not a guess"


async def test_the_directory_lists_the_codes_the_board_takes(client: httpx.AsyncClient, world: World) -> None:
    agencies = (await client.get("/api/v1/agencies")).json()  # no sign-in: public reference data
    codes = {a["code"] for a in agencies}
    assert {"BMA", "PSC", world.a1, world.a2} <= codes and len(codes) == len(agencies) > 300
    bma = next(a for a in agencies if a["code"] == "BMA")
    assert bma["name_th"] == "กรุงเทพมหานคร" and bma["kind"] == "bma" and bma["areas"] == ["10"]
    found = (await client.get("/api/v1/agencies", params={"q": "lat phrao"})).json()
    assert found and all("Lat Phrao" in a["name_en"] for a in found)
    thai = (await client.get("/api/v1/agencies", params={"q": "ลาดพร้าว", "kind": "bma_district_office"})).json()
    assert [a["code"] for a in thai] == [a["code"] for a in found if a["kind"] == "bma_district_office"] != []
    in_province = (await client.get("/api/v1/agencies", params={"area": "58", "kind": "police"})).json()
    assert [a["code"] for a in in_province] == ["POL-58"]
    assert_error(await client.get("/api/v1/agencies", params={"area": "Bangkok"}), 422)
    centres = {c["code"]: c for c in (await client.get("/api/v1/centres")).json()}
    assert centres[world.centre]["name_en"] == "Test centre"
    assert centres["DAMRONG-58"]["province_code"] == "58" and centres["PSC-1111"]["kind"] == "psc"


@pytest.mark.parametrize(
    "params",
    [
        {"stage": 3},
        {"stage": 0},
        {"page": 0},
        {"page_size": 0},
        {"page_size": 201},
        {"status": "lost"},
        {"overdue": "maybe"},
    ],
)
async def test_bad_parameters_are_422_in_both_languages(client: httpx.AsyncClient, params: dict[str, Any]) -> None:
    response = await client.get("/api/v1/cases", params=params, headers=SUPERVISOR)
    error = assert_error(response, 422)
    assert error["details"][0]["field"] == f"query.{next(iter(params))}"
    assert error["details"][0]["message_th"]


async def test_items_carry_deadlines_in_bangkok_time_and_no_personal_data(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get("/api/v1/cases", params={"centre": world.centre}, headers=SUPERVISOR)
    assert response.status_code == 200
    for secret in (NAME, PHONE, CITIZEN_ID, EMAIL, DESCRIPTION):
        assert secret not in response.text
    body = response.json()
    assert all("complainant" not in item and "description" not in item for item in body["items"])
    assert body["as_of"].endswith("+07:00")
    item = next(i for i in body["items"] if i["case_id"] == world.id("late3"))
    due = world.cases["late3"].due_at
    assert due is not None
    assert item["due_at"] == due.astimezone(BANGKOK).isoformat() and item["due_at"].endswith("+07:00")
    # A deadline is the midnight that ends its last working day: the day before on the calendar.
    assert item["due_date"] == (due.astimezone(BANGKOK) - timedelta(days=1)).date().isoformat()
    assert item["received_at"].endswith("+07:00")
    assert item["status"] == {
        "code": "stage1",
        "label_en": item["status"]["label_en"],
        "label_th": item["status"]["label_th"],
    }
    assert item["agencies"][0]["code"] == world.a1
    assert (item["stage"], item["province"], item["due_rule"], item["escalation_level"]) == (
        1,
        world.province,
        "stage1_response",
        1,
    )
    paused = next(i for i in body["items"] if i["case_id"] == world.id("paused"))
    assert paused["due_at"] is None and paused["due_date"] is None and paused["overdue"] is False


# --- metrics ---------------------------------------------------------------------------------------------------


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def test_metrics_count_the_read_model(client: httpx.AsyncClient, db: Database, calendar: WorkingCalendar) -> None:
    before = await scrape(client)
    w = await make_world(db, calendar)
    try:
        events = [
            ("sla_breach", "late3"),
            ("sla_breach", "late1"),
            ("sla_escalation", "late3"),
            ("escalate", "late1"),
            ("screen", "late1"),
            ("sla_warning", "risk"),
        ]
        async with db.session() as session:
            for seq, (event, name) in enumerate(events, start=1):
                session.add(
                    models.CaseEvent(
                        case_id=w.id(name),
                        seq=seq,
                        event=event,
                        from_state="stage1",
                        to_state="stage1",
                        actor_id="system",
                        actor_role="system",
                        at=w.now,
                    )
                )
        after = await scrape(client)
    finally:
        await remove_world(db, w)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("rongtuk_sla_breaches_total") == 2
    assert delta("rongtuk_escalations_total") == 2  # one by the system, one by hand
    assert delta("rongtuk_open_cases", state="stage1") == 3  # late3, risk, paused
    assert delta("rongtuk_open_cases", state="assignment") == 1
    assert delta("rongtuk_open_cases", state="stage2") == 1
    assert ("rongtuk_open_cases", (("state", "closed"),)) not in after
    # Every open state is reported, at 0 if need be, so that dashboards keep their series.
    assert {dict(labels)["state"] for name, labels in after if name == "rongtuk_open_cases"} == {
        str(s) for s in OPEN_STATES
    }
    # Owed and past due: a1 on late3 (accepted) and late1 (assigned); a2 on late1 only (late3 answered).
    assert after[("rongtuk_overdue_tasks", (("agency", w.a1),))] == 2
    assert after[("rongtuk_overdue_tasks", (("agency", w.a2),))] == 1

    gone = await scrape(client)
    assert ("rongtuk_overdue_tasks", (("agency", w.a1),)) not in gone


async def test_pages_cross_from_cases_with_a_deadline_to_those_without(client: httpx.AsyncClient, world: World) -> None:
    # The board reads cases with a deadline and those without in separate walks (store.queries._walk):
    # a page that straddles them, and pages wholly past the first, keep the single order; so do the walks of the
    # open cases and of the ended ones.
    expected = [world.id(n) for n in ("late3", "late1", "risk", "later", "paused", "stale", "closed")]
    for page_size in (1, 2, 3, 4, 6):
        seen: list[str] = []
        for page in range(1, 9):
            body = await board_get(client, SUPERVISOR, centre=world.centre, page_size=page_size, page=page)
            assert body["total"] == 7 and body["total_exact"] is True
            seen += ids(body)
        assert seen == expected, page_size


async def test_urgent_cases_come_first_on_every_page_whatever_the_page_size(
    client: httpx.AsyncClient, db: Database, world: World
) -> None:
    # The open cases before the ended ones, then urgent first, then by deadline with undated cases last: eight
    # walks, one order.
    urgent = [world.id("later"), world.id("paused"), world.id("closed")]
    async with db.session() as s:
        await s.execute(update(models.Case).where(models.Case.case_id.in_(urgent)).values(priority="urgent"))
    try:
        expected = [world.id(n) for n in ("later", "paused", "late3", "late1", "risk", "closed", "stale")]
        for page_size in (1, 2, 3, 5, 7):
            seen: list[str] = []
            for page in range(1, 9):
                body = await board_get(client, SUPERVISOR, centre=world.centre, page_size=page_size, page=page)
                assert body["total"] == 7
                seen += ids(body)
            assert seen == expected, page_size
    finally:
        async with db.session() as s:
            await s.execute(update(models.Case).where(models.Case.case_id.in_(urgent)).values(priority="normal"))


async def test_totals_past_the_count_cap_say_so(db: Database, world: World, calendar: WorkingCalendar) -> None:
    async with db.sessions() as session:
        capped = await list_cases(
            session, now=world.now, calendar=calendar, centre=world.centre, page_size=2, count_cap=3
        )
        exact = await list_cases(
            session, now=world.now, calendar=calendar, centre=world.centre, page_size=2, count_cap=7
        )
        deep = await list_cases(
            session, now=world.now, calendar=calendar, centre=world.centre, page_size=2, page=3, count_cap=3
        )
    assert (capped.total, capped.total_exact) == (3, False)  # "3+": more match than the cap
    assert (exact.total, exact.total_exact) == (7, True)
    assert (deep.total, deep.total_exact) == (6, False)  # never less than the rows already paged through


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"overdue": "false"}, ("stale", "risk", "later", "paused", "closed")),
        ({"at_risk": "false"}, ("stale", "late3", "late1", "later", "paused", "closed")),
    ],
)
async def test_complements_page_in_the_board_order(
    client: httpx.AsyncClient, world: World, params: dict[str, str], names: tuple[str, ...]
) -> None:
    # overdue=false and at_risk=false are read as slices of the order (store.queries._walk): the open cases
    # first, then the ended ones (the finished case whose deadline passed, then the closed one); in each, the
    # cases without a deadline last, by case id.
    cases = [world.cases[n] for n in names]
    far = datetime.max.replace(tzinfo=UTC)
    expected = [
        c.case_id
        for c in sorted(
            cases,
            key=lambda c: (c.status not in models.OPEN_CASE_STATUSES, c.due_at is None, c.due_at or far, c.case_id),
        )
    ]
    assert expected[-2:] == [world.id("stale"), world.id("closed")]
    body = await board_get(client, SUPERVISOR, centre=world.centre, **params)
    assert ids(body) == expected and body["total"] == len(expected)
    for page_size in (1, 2, 3):
        seen: list[str] = []
        for page in range(1, len(expected) + 2):
            seen += ids(
                await board_get(client, SUPERVISOR, centre=world.centre, page_size=page_size, page=page, **params)
            )
        assert seen == expected, page_size
