"""A real case through the API, the dev server and the worker; its messages delivered while it moves; the
delivery log for supervisors and the complainant's inbox over HTTP."""

from __future__ import annotations

import asyncio
import email
from email import policy
from typing import Any

import httpx
from sqlalchemy import select

from config.settings import Settings
from delivery.dispatcher import Dispatcher
from delivery.gateways import Gateways
from store import models
from store.db import Database
from tests.api.conftest import AUDITOR, OFFICER, SUPERVISOR, agency, api, complaint  # noqa: F401 (fixture)
from tests.delivery.conftest import PHONE_E164, FakeHttpGateway, SmtpHandler, add_notifications, make_case

BMA_DESK = "desk@bma.example.go.th"


async def _act(client: httpx.AsyncClient, case_id: str, action: str, headers: dict[str, str], **body: Any) -> None:
    response = await client.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body, headers=headers)
    assert response.status_code == 200, response.text


async def _settled(db: Database, case_id: str) -> list[models.Notification]:
    """The case's outbox once nothing in it waits any more."""
    for _ in range(300):
        async with db.session() as s:
            rows = list(
                (await s.execute(select(models.Notification).where(models.Notification.case_id == case_id))).scalars()
            )
        if rows and all(r.status in {"sent", "skipped", "failed"} for r in rows):
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"outbox of {case_id} still busy: {[(r.seq, r.channel, r.status) for r in rows]}")


async def test_a_real_cases_messages_are_delivered_while_the_gateway_stumbles(
    api: httpx.AsyncClient,  # noqa: F811
    db: Database,
    delivery_settings: Settings,
    http_gateway: FakeHttpGateway,
    smtp_server: tuple[SmtpHandler, int],
) -> None:
    handler, _ = smtp_server
    settings = delivery_settings.model_copy(update={"staff_emails": {"BMA": BMA_DESK}, "delivery_poll_seconds": 0.05})
    dispatcher = Dispatcher(db, settings, gateways=Gateways.from_settings(settings))
    http_gateway.fail_first = 3  # every SMS fails three times before the gateway takes it
    stop = asyncio.Event()
    loop = asyncio.create_task(dispatcher.run(stop))
    try:
        receipt = await api.post("/api/v1/complaints", json=complaint())
        assert receipt.status_code == 201, receipt.text
        case_id, code = receipt.json()["case_id"], receipt.json()["tracking_code"]
        bma = agency("BMA")
        # The case moves at its own pace while its SMS are failing: delivery never holds it up.
        await _act(api, case_id, "screen", OFFICER)
        await _act(api, case_id, "accept", OFFICER, category="lighting.streetlight", agencies=["BMA"])
        await _act(api, case_id, "agency_accept", bma)
        await _act(api, case_id, "respond", bma, outcome="resolved", response="เปลี่ยนหลอดไฟเรียบร้อยแล้ว")
        await _act(api, case_id, "close", SUPERVISOR)
        rows = await _settled(db, case_id)
    finally:
        stop.set()
        await loop
        await dispatcher.aclose()

    complainant_seqs = sorted({r.seq for r in rows if r.audience == "complainant"})
    sms_rows = {r.seq: r for r in rows if r.audience == "complainant" and r.channel == "sms"}
    assert sorted(sms_rows) == complainant_seqs and len(complainant_seqs) == 6  # filed ... close
    assert all(r.status == "sent" and r.attempts == 4 for r in sms_rows.values())
    # Each message reached the phone exactly once, in the order of the case's events.
    accepted = http_gateway.accepted("/sms")
    assert sorted(r.headers["Idempotency-Key"] for r in accepted) == sorted(str(r.id) for r in sms_rows.values())
    assert {r.body["to"] for r in accepted} == {PHONE_E164}
    texts = {int(r.headers["Idempotency-Key"]): r.body["text"] for r in accepted}
    close_row = max(sms_rows.values(), key=lambda r: r.seq)
    assert close_row.event == "close" and "#form-rate" in texts[close_row.id]
    assert all(code in text for text in texts.values())
    # The agency's desk got its own messages (a new case, the complainant closed it...) by email.
    staff_mail = [email.message_from_bytes(m.content, policy=policy.default) for m in handler.messages]
    assert staff_mail and all(m["To"] == BMA_DESK for m in staff_mail)
    assert any(case_id in m.get_content() for m in staff_mail)

    # The complainant's inbox, by tracking code: every message, in Thai or English, nothing personal.
    inbox = await api.get(f"/api/v1/track/{code}/messages")
    assert inbox.status_code == 200, inbox.text
    messages = inbox.json()["messages"]
    assert [m["event"] for m in messages] == ["filed", "screen", "accept", "agency_accept", "respond", "close"]
    assert all(m["delivered_by"] == ["sms"] and not m["pending"] for m in messages)
    assert "ยุติเรื่องแล้ว" in messages[-1]["text"]
    english = (await api.get(f"/api/v1/track/{code}/messages", params={"lang": "en"})).json()["messages"]
    assert "is closed" in english[-1]["text"]
    # The number in any spelling (a bare "081" would also match a timestamp's microseconds).
    assert "สมหญิง" not in inbox.text and "0812345678" not in inbox.text.replace("-", "")
    assert "+66812345678" not in inbox.text.replace("-", "")

    # The supervisors' view of the same case.
    seen = await api.get(f"/api/v1/cases/{case_id}/deliveries", headers=SUPERVISOR)
    assert seen.status_code == 200, seen.text
    by_id = {n["id"]: n for n in seen.json()["notifications"]}
    first_sms = by_id[sms_rows[1].id]
    assert [(a["attempt"], a["result"]) for a in first_sms["log"]] == [
        (1, "retry"),
        (2, "retry"),
        (3, "retry"),
        (4, "sent"),
    ]
    assert "+66" not in seen.text and "สมหญิง" not in seen.text


async def test_the_delivery_log_is_for_supervisors_and_auditors(
    api: httpx.AsyncClient,  # noqa: F811
    db: Database,
    dispatcher: Dispatcher,
    http_gateway: FakeHttpGateway,
) -> None:
    http_gateway.always = 400
    case = await make_case(db, channels=["sms", "web"])
    await add_notifications(db, case)
    await dispatcher.drain()

    for who in (SUPERVISOR, AUDITOR):
        page = await api.get("/api/v1/deliveries", params={"case_id": case.case_id}, headers=who)
        assert page.status_code == 200, page.text
        body = page.json()
        assert [(i["gateway"], i["result"]) for i in body["items"]] == [("inbox", "sent"), ("sms", "fallback")]
        assert body["total"] == 2
    failed = (
        await api.get("/api/v1/deliveries", params={"gateway": "sms", "status": "fallback"}, headers=SUPERVISOR)
    ).json()
    assert failed["items"] and all(i["gateway"] == "sms" and i["result"] == "fallback" for i in failed["items"])
    assert {"gateway": "sms", "result": "fallback", "count": failed["total"]} in failed["totals"]

    for who in (OFFICER, agency("BMA")):
        refused = await api.get("/api/v1/deliveries", headers=who)
        assert refused.status_code == 403
        assert refused.json()["error"]["message_th"]
        assert (await api.get(f"/api/v1/cases/{case.case_id}/deliveries", headers=who)).status_code == 403
    assert (await api.get("/api/v1/deliveries")).status_code == 401
    assert (await api.get("/api/v1/cases/RT-NOPE/deliveries", headers=SUPERVISOR)).status_code == 404
    bad = await api.get("/api/v1/deliveries", params={"status": "lost"}, headers=SUPERVISOR)
    assert bad.status_code == 422 and bad.json()["error"]["message_th"]

    waiting = await make_case(db, channels=["line"])
    await add_notifications(db, waiting)  # not delivered yet: backlog
    metrics = (await api.get("/metrics")).text
    backlog = [
        line for line in metrics.splitlines() if line.startswith('rongtuk_notifications_backlog{channel="line"}')
    ]
    assert backlog and float(backlog[0].split()[-1]) >= 1
    oldest = [line for line in metrics.splitlines() if line.startswith("rongtuk_notifications_oldest_pending_seconds")]
    assert oldest and float(oldest[0].split()[-1]) > 0
    assert "rongtuk_notifications_backlog" in metrics
    assert "rongtuk_notifications_oldest_pending_seconds" in metrics
    assert 'rongtuk_delivery_attempts_total{gateway="sms",result="fallback"}' in metrics


async def test_the_inbox_of_an_unknown_code_is_a_bilingual_404(api: httpx.AsyncClient) -> None:  # noqa: F811
    response = await api.get("/api/v1/track/ZZZZZ-ZZZZZ/messages")
    assert response.status_code == 404
    assert response.json()["error"]["message_th"]
    assert (await api.get("/api/v1/track/ZZZZZ-ZZZZZ/messages", params={"lang": "fr"})).status_code in {404, 422}


async def test_staff_read_their_own_inbox(api: httpx.AsyncClient, db: Database) -> None:  # noqa: F811
    case = await make_case(db, channels=["web"], agencies=["DOL", "RD"], confidential=True)
    await add_notifications(
        db,
        case,
        event="accept",
        state="assignment",
        audience="agency",
        recipients=[("web", "DOL"), ("web", "RD")],
    )
    await add_notifications(
        db, case, seq=2, event="sla_breach", state="stage1", audience="supervisor", recipients=[("web", "supervisors")]
    )

    dol = await api.get("/api/v1/inbox", headers=agency("DOL"))
    assert dol.status_code == 200, dol.text
    mine = [m for m in dol.json()["items"] if m["case_id"] == case.case_id]
    assert [(m["recipient"], m["event"]) for m in mine] == [("DOL", "accept")]
    assert "กรมที่ดิน" in mine[0]["text"] and case.case_id in mine[0]["text"]
    # A confidential complainant's tracking code is not for agencies.
    assert case.tracking_code not in dol.text
    assert all(m["recipient"] in {"DOL", "DOL:head"} for m in dol.json()["items"])

    sup = (await api.get("/api/v1/inbox", params={"lang": "en"}, headers=SUPERVISOR)).json()
    theirs = [m for m in sup["items"] if m["case_id"] == case.case_id]
    assert [(m["recipient"], m["event"]) for m in theirs] == [("supervisors", "sla_breach")]
    assert "past its deadline" in theirs[0]["text"]

    # Self-declared identity headers count for nothing: the staff inbox needs a signed-in user.
    citizen = {"X-Actor-Id": "c-1", "X-Actor-Role": "citizen"}
    refused = await api.get("/api/v1/inbox", headers=citizen)
    assert refused.status_code == 401 and refused.json()["error"]["message_th"]
