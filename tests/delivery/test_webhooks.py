"""Signed webhooks to partner systems, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from config.settings import Settings
from delivery.dispatcher import Dispatcher
from delivery.gateways import Gateways
from delivery.webhooks import LOOKBACK_EVENTS, SIGNATURE_HEADER, Partner, PartnerError, load_partners, sign, verify
from store import models
from store.db import Database
from tests.delivery.conftest import EMAIL, NAME, PHONE, FakeHttpGateway, Request, make_case

SECRET = "partner-shared-secret"


def partner(http_gateway: FakeHttpGateway, **extra: object) -> Partner:
    name = f"P{uuid.uuid4().hex[:8]}"
    return Partner.model_validate({"name": name, "url": f"http://127.0.0.1:{http_gateway.port}/hooks/{name}", **extra})


def dispatcher_for(db: Database, settings: Settings, partners: list[Partner]) -> Dispatcher:
    settings = settings.model_copy(update={"partner_secrets": {p.name: SECRET for p in partners}})
    return Dispatcher(db, settings, gateways=Gateways.from_settings(settings), partners=partners)


async def add_event(
    db: Database, case: models.Case, seq: int, event: str, *, public: bool = True, agency: str | None = None
) -> int:
    async with db.session() as s:
        row = models.CaseEvent(
            case_id=case.case_id,
            seq=seq,
            event=event,
            from_state="screening",
            to_state="assignment",
            actor_id="officer-1",
            actor_role="officer",
            at=datetime.now(UTC),
            public=public,
            data={"summary": "ข้อความภายใน"},
        )
        s.add(row)
        if agency:
            s.add(models.AgencyTask(case_id=case.case_id, agency=agency, status="assigned"))
        await s.flush()
        return row.id


def hooks_for(http_gateway: FakeHttpGateway, p: Partner) -> list[Request]:
    return [r for r in http_gateway.requests if r.path == f"/hooks/{p.name}"]


async def test_case_events_reach_the_partner_signed_and_without_personal_data(
    db: Database, delivery_settings: Settings, http_gateway: FakeHttpGateway
) -> None:
    pmdu = partner(http_gateway, agencies=["DOPA"], events=["accept", "close"])
    d = dispatcher_for(db, delivery_settings, [pmdu])
    try:
        await d.drain()  # the partner's cursor starts here: history before it is not sent
        ours = await make_case(db, channels=["web"], agencies=["DOPA"])
        theirs = await make_case(db, channels=["web"], agencies=["BMA"])
        await add_event(db, ours, 1, "accept", agency="DOPA")
        await add_event(db, ours, 2, "screen")  # not an event this partner asked for
        await add_event(db, ours, 3, "close")
        await add_event(db, theirs, 1, "accept", agency="BMA")  # another agency's case
        await d.drain()
    finally:
        await d.aclose()

    received = hooks_for(http_gateway, pmdu)
    # Sent concurrently, so in any order: partners order a case's events by ``seq``.
    assert sorted((r.body["case_id"], r.body["event"], r.body["seq"]) for r in received) == [
        (ours.case_id, "accept", 1),
        (ours.case_id, "close", 3),
    ]
    for r in received:
        assert verify(SECRET, r.raw, r.headers[SIGNATURE_HEADER], now=int(time.time()))
        assert not verify("another-secret", r.raw, r.headers[SIGNATURE_HEADER], now=int(time.time()))
        assert r.headers["Idempotency-Key"].startswith("webhook-")
        text = r.raw.decode()
        for personal in (NAME, PHONE, EMAIL, ours.tracking_code, "ไฟถนนดับ", "ข้อความภายใน"):
            assert personal not in text
    async with db.session() as s:
        log = list(
            (
                await s.execute(
                    select(models.DeliveryAttempt).where(
                        models.DeliveryAttempt.partner == pmdu.name, models.DeliveryAttempt.case_id == ours.case_id
                    )
                )
            ).scalars()
        )
    assert [(a.gateway, a.result, a.status_code, a.notification_id is None) for a in log] == [
        ("webhook", "sent", 200, True),
        ("webhook", "sent", 200, True),
    ]


async def test_a_partner_down_three_times_gets_each_event_once_and_late_commits_are_found(
    db: Database, delivery_settings: Settings, http_gateway: FakeHttpGateway
) -> None:
    http_gateway.fail_first = 3
    damrongdham = partner(http_gateway)
    d = dispatcher_for(db, delivery_settings, [damrongdham])
    try:
        await d.drain()
        case = await make_case(db, channels=["web"])
        first = await add_event(db, case, 1, "screen")
        await add_event(db, case, 2, "accept")
        await add_event(db, case, 3, "sla_breach", public=False)  # internal: not for this partner
        # An event committed after the cursor moved past its id (a slower concurrent transaction).
        async with db.session() as s:
            cursor = await s.get(models.PartnerCursor, damrongdham.name)
            assert cursor is not None
            cursor.last_event_id = first + LOOKBACK_EVENTS // 2
        for _ in range(6):
            await d.drain()
    finally:
        await d.aclose()

    accepted = [r for r in hooks_for(http_gateway, damrongdham) if r.status == 200]
    assert sorted(r.body["seq"] for r in accepted) == [1, 2]
    assert all(http_gateway.seen[r.headers["Idempotency-Key"]] == 4 for r in accepted)


def test_partners_file_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "partners.yaml"
    path.write_text("- {name: PMDU, url: 'https://pmdu.example.go.th/hook', events: [close]}\n", encoding="utf-8")
    [pmdu] = load_partners(path, {"PMDU": "s"})
    assert pmdu.events == frozenset({"close"}) and pmdu.public_only
    with pytest.raises(PartnerError, match="no secret"):
        load_partners(path, {})
    path.write_text("- {name: PMDU, url: 'not a url'}\n", encoding="utf-8")
    with pytest.raises(PartnerError):
        load_partners(path, {"PMDU": "s"})
    assert load_partners(None, {}) == []


def test_signatures_expire_and_must_match() -> None:
    body = b'{"event": "close"}'
    header = sign(SECRET, body, timestamp=1_000_000)
    assert verify(SECRET, body, header, now=1_000_100)
    assert not verify(SECRET, body, header, now=1_000_000 + 3600)  # replayed an hour later
    assert not verify(SECRET, body + b" ", header, now=1_000_100)
    assert not verify(SECRET, body, "garbage", now=1_000_100)
