"""The dispatcher against real local gateways: SMS and LINE over HTTP, email over SMTP, the web inbox."""

from __future__ import annotations

import asyncio
import email
import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path

import pytest
import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import func, insert, select, text
from structlog.testing import LogCapture

import delivery.dispatcher as dispatcher_module
import delivery.gateways as gateways_module
from config.settings import Settings
from delivery.dispatcher import Dispatcher, start_dispatcher
from delivery.gateways import Gateways
from delivery.outbox import due_rows
from delivery.queries import (
    STAFF_INBOX_CAP,
    delivery_collector,
    scraped_counts,
    staff_message_count,
    staff_messages,
)
from delivery.templates import TemplateError
from store import models
from store.db import Database
from tests.delivery.conftest import (
    EMAIL,
    LINE_TOKEN,
    LINE_USER,
    NAME,
    PHONE,
    PHONE_E164,
    SMS_TOKEN,
    FakeHttpGateway,
    SmtpHandler,
    add_notifications,
    attempts,
    dumps,
    make_case,
    outbox,
)
from tests.query_plans import query_plan
from workflows.process import State


async def test_sms_goes_to_the_gateway_with_token_idempotency_key_and_thai_text(
    db: Database, dispatcher: Dispatcher, http_gateway: FakeHttpGateway
) -> None:
    case = await make_case(db, channels=["sms", "web"], agencies=["DOPA"])
    [sms_id, _] = await add_notifications(db, case, event="accept", state="assignment")

    await dispatcher.drain()

    [request] = http_gateway.accepted("/sms")
    assert request.headers["Authorization"] == f"Bearer {SMS_TOKEN}"
    assert request.headers["Idempotency-Key"] == str(sms_id)
    assert request.body["to"] == PHONE_E164
    text = request.body["text"]
    assert case.tracking_code in text
    assert "กรมการปกครอง" in text  # the agency's Thai name
    assert "3 ธ.ค. 2569" in text  # expected date, Buddhist era
    assert f"https://rongtuk.example.go.th/track/{case.tracking_code}" in text
    rows = await outbox(db, case.case_id)
    assert rows["1:complainant:sms:complainant"].status == "sent"
    assert rows["1:complainant:sms:complainant"].gateway == "sms"
    # The next preferred channel is not used once the first has worked; the message is in the inbox anyway.
    assert rows["1:complainant:web:complainant"].status == "skipped"
    [log_row] = await attempts(db, case.case_id)
    assert (log_row.gateway, log_row.attempt, log_row.ok, log_row.result, log_row.status_code) == (
        "sms",
        1,
        True,
        "sent",
        200,
    )


async def test_a_step_before_assignment_names_the_centre_not_the_agency_assigned_since(
    db: Database, dispatcher: Dispatcher, http_gateway: FakeHttpGateway
) -> None:
    """The "being screened by ..." message went out (and read in the web inbox) naming the agency the case was
    sent to a moment after the screening: the message of a step names who had the case at that step."""
    case = await make_case(db, channels=["sms"], agencies=["DOPA"], status="assignment")
    async with db.session() as s:
        await s.execute(
            models.Case.__table__.update().where(models.Case.case_id == case.case_id).values(centre="DAMRONG-50")
        )
    [screen] = await add_notifications(db, case, seq=2, event="screen", state="screening")
    [accept] = await add_notifications(db, case, seq=3, event="accept", state="assignment")

    await dispatcher.drain()

    said = {int(r.headers["Idempotency-Key"]): r.body["text"] for r in http_gateway.accepted("/sms")}
    assert "ศูนย์ดำรงธรรมจังหวัดเชียงใหม่" in said[screen] and "กรมการปกครอง" not in said[screen], said[screen]
    assert "กรมการปกครอง" in said[accept] and "ศูนย์ดำรงธรรม" not in said[accept], said[accept]


async def test_line_push_through_the_messaging_api(
    db: Database, dispatcher: Dispatcher, http_gateway: FakeHttpGateway
) -> None:
    case = await make_case(db, channels=["line"])
    [line_id] = await add_notifications(db, case, event="filed", state="received")

    await dispatcher.drain()

    [request] = http_gateway.accepted("/v2/bot/message/push")
    assert request.headers["Authorization"] == f"Bearer {LINE_TOKEN}"
    assert request.headers["X-Line-Retry-Key"]  # a UUID derived from the notification id
    assert request.body["to"] == LINE_USER
    [message] = request.body["messages"]
    assert message["type"] == "text"
    assert case.tracking_code in message["text"]
    assert (await outbox(db, case.case_id))["1:complainant:line:complainant"].status == "sent"
    assert [a.gateway for a in await attempts(db, case.case_id)] == ["line"]
    assert line_id


async def test_email_reaches_the_smtp_server_in_thai_and_english(
    db: Database, dispatcher: Dispatcher, smtp_server: tuple[SmtpHandler, int]
) -> None:
    handler, _port = smtp_server
    case = await make_case(db, channels=["email"], agencies=["BMA"])
    [email_id] = await add_notifications(db, case, event="close", state="closed")

    await dispatcher.drain()

    [envelope] = handler.messages
    assert envelope.rcpt_tos == [EMAIL]
    msg = email.message_from_bytes(envelope.content, policy=policy.default)
    assert case.tracking_code in str(msg["Subject"])
    assert f"rongtuk-notification-{email_id}" in str(msg["Message-ID"])
    body = msg.get_content()
    assert "ยุติเรื่องแล้ว" in body and "is closed" in body  # Thai first, then English
    # After closure: the satisfaction survey.
    assert f"https://rongtuk.example.go.th/track/{case.tracking_code}#form-rate" in body
    assert (await outbox(db, case.case_id))["1:complainant:email:complainant"].status == "sent"


async def test_a_gateway_failing_three_times_then_recovering_delivers_each_message_once(
    db: Database, dispatcher: Dispatcher, http_gateway: FakeHttpGateway
) -> None:
    http_gateway.fail_first = 3
    cases = [await make_case(db, channels=["sms"]) for _ in range(3)]
    ids = [(await add_notifications(db, case))[0] for case in cases]

    for _ in range(10):  # backoff is 0 here: each round retries what failed in the one before
        await dispatcher.drain()

    for notification_id in ids:
        accepted = [r for r in http_gateway.accepted("/sms") if r.headers["Idempotency-Key"] == str(notification_id)]
        assert len(accepted) == 1
        assert http_gateway.seen[str(notification_id)] == 4
    for case in cases:
        log = await attempts(db, case.case_id)
        assert [(a.attempt, a.result, a.status_code) for a in log] == [
            (1, "retry", 503),
            (2, "retry", 503),
            (3, "retry", 503),
            (4, "sent", 200),
        ]
        row = (await outbox(db, case.case_id))["1:complainant:sms:complainant"]
        assert (row.status, row.attempts) == ("sent", 4)


async def test_retries_wait_their_backoff(
    db: Database, delivery_settings: Settings, http_gateway: FakeHttpGateway
) -> None:
    settings = delivery_settings.model_copy(update={"delivery_backoff_seconds": 3600.0})
    d = Dispatcher(db, settings, gateways=Gateways.from_settings(settings))
    http_gateway.fail_first = 1
    case = await make_case(db, channels=["sms"])
    await add_notifications(db, case)
    try:
        await d.drain()
        await d.drain()
    finally:
        await d.aclose()
    row = (await outbox(db, case.case_id))["1:complainant:sms:complainant"]
    assert row.status == "pending" and row.attempts == 1
    assert row.next_attempt_at is not None and row.last_error == "http_503"
    assert len(http_gateway.requests) == 1


async def test_a_gateway_down_for_good_falls_back_to_the_next_channel(
    db: Database, dispatcher: Dispatcher, http_gateway: FakeHttpGateway, smtp_server: tuple[SmtpHandler, int]
) -> None:
    handler, _ = smtp_server
    http_gateway.always = 503  # the SMS gateway never comes back
    case = await make_case(db, channels=["sms", "email", "web"])
    await add_notifications(db, case)

    for _ in range(6):
        await dispatcher.drain()

    rows = await outbox(db, case.case_id)
    assert rows["1:complainant:sms:complainant"].status == "failed"
    assert rows["1:complainant:email:complainant"].status == "sent"
    assert rows["1:complainant:web:complainant"].status == "skipped"
    assert len(handler.messages) == 1
    log = await attempts(db, case.case_id)
    assert [(a.gateway, a.attempt, a.result) for a in log] == [
        ("sms", 1, "retry"),
        ("sms", 2, "retry"),
        ("sms", 3, "retry"),
        ("sms", 4, "fallback"),
        ("email", 1, "sent"),
    ]


async def test_a_permanent_refusal_falls_back_at_once_and_the_inbox_keeps_the_message(
    db: Database, dispatcher: Dispatcher, http_gateway: FakeHttpGateway
) -> None:
    http_gateway.always = 400  # the gateway rejects the number: no point in trying again
    case = await make_case(db, channels=["sms", "line"], line_user_id="not-a-line-id")
    await add_notifications(db, case)

    await dispatcher.drain()

    rows = await outbox(db, case.case_id)
    assert rows["1:complainant:sms:complainant"].status == "failed"
    assert rows["1:complainant:line:complainant"].status == "failed"
    log = await attempts(db, case.case_id)
    assert [(a.gateway, a.result, a.status_code, a.error) for a in log] == [
        ("sms", "fallback", 400, "http_400"),
        ("line", "failed", None, "bad_address"),  # never sent to LINE: the case has no usable LINE id
    ]
    assert http_gateway.accepted("/v2/bot/message/push") == []


async def test_two_dispatchers_at_once_deliver_each_message_once(
    db: Database, delivery_settings: Settings, http_gateway: FakeHttpGateway
) -> None:
    settings = delivery_settings.model_copy(update={"delivery_batch_size": 5})
    first = Dispatcher(db, settings, gateways=Gateways.from_settings(settings))
    second = Dispatcher(db, settings, gateways=Gateways.from_settings(settings))
    cases = [await make_case(db, channels=["sms", "web"]) for _ in range(30)]
    for case in cases:
        await add_notifications(db, case)
    try:
        await asyncio.gather(first.drain(), second.drain())
    finally:
        await first.aclose()
        await second.aclose()

    keys = [r.headers["Idempotency-Key"] for r in http_gateway.requests]
    assert len(keys) == 30
    assert len(set(keys)) == 30  # no message sent twice, not even once more to a deduplicating gateway
    for case in cases:
        rows = await outbox(db, case.case_id)
        assert rows["1:complainant:sms:complainant"].status == "sent"
        assert rows["1:complainant:web:complainant"].status == "skipped"


async def test_a_round_is_recorded_together_and_a_row_that_cannot_be_recorded_holds_back_no_other(
    db: Database, dispatcher: Dispatcher, http_gateway: FakeHttpGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = await make_case(db, channels=["sms", "web"])
    no_phone = await make_case(db, channels=["sms", "line"], phone=None)
    broken = await make_case(db, channels=["sms"])
    for case in (sent, no_phone, broken):
        await add_notifications(db, case)
    [broken_id] = [r.id for r in (await outbox(db, broken.case_id)).values()]
    entry = dispatcher_module.attempt_entry

    def failing_for_one(**fields: object) -> models.DeliveryAttempt:
        if fields["notification_id"] == broken_id:
            raise RuntimeError("the database refused this row")
        return entry(**fields)  # type: ignore[arg-type]

    monkeypatch.setattr(dispatcher_module, "attempt_entry", failing_for_one)
    with pytest.raises(RuntimeError):
        await dispatcher.run_once()  # one round: all three claimed and sent, the round's record fails
    monkeypatch.undo()

    # Each of the others was recorded on its own, with what it leads to for its siblings.
    rows = {case.case_id: await outbox(db, case.case_id) for case in (sent, no_phone, broken)}
    assert rows[sent.case_id]["1:complainant:sms:complainant"].status == "sent"
    assert rows[sent.case_id]["1:complainant:web:complainant"].status == "skipped"
    assert rows[no_phone.case_id]["1:complainant:sms:complainant"].status == "failed"
    assert rows[no_phone.case_id]["1:complainant:line:complainant"].status == "pending"  # woken by the fallback
    assert [(a.gateway, a.result) for a in await attempts(db, sent.case_id)] == [("sms", "sent")]
    assert [(a.gateway, a.result, a.error) for a in await attempts(db, no_phone.case_id)] == [
        ("sms", "fallback", "bad_address")
    ]
    # The one that could not be recorded keeps its claim until the lease runs out, then goes again.
    held = rows[broken.case_id]["1:complainant:sms:complainant"]
    assert (held.status, held.claim_token is not None) == ("sending", True)
    assert await attempts(db, broken.case_id) == []

    await dispatcher.drain()
    assert (await outbox(db, no_phone.case_id))["1:complainant:line:complainant"].status == "sent"
    assert [r.headers.get("Idempotency-Key") for r in http_gateway.requests].count(str(broken_id)) == 1


async def test_staff_get_the_inbox_and_email_to_their_agency_if_configured(
    db: Database, dispatcher: Dispatcher, smtp_server: tuple[SmtpHandler, int]
) -> None:
    handler, _ = smtp_server
    case = await make_case(db, channels=["web"], agencies=["DOPA", "BMA"])
    await add_notifications(
        db,
        case,
        event="sla_breach",
        state="stage1",
        audience="agency",
        recipients=[("web", "DOPA"), ("web", "BMA")],
    )

    await dispatcher.drain()

    rows = await outbox(db, case.case_id)
    assert (rows["1:agency:web:DOPA"].status, rows["1:agency:web:DOPA"].gateway) == ("sent", "email")
    assert (rows["1:agency:web:BMA"].status, rows["1:agency:web:BMA"].gateway) == ("sent", "inbox")
    [envelope] = handler.messages
    assert envelope.rcpt_tos == ["complaints@dopa.example.go.th"]
    body = email.message_from_bytes(envelope.content, policy=policy.default).get_content()
    assert case.case_id in body and "กรมการปกครอง" in body


async def test_with_no_gateway_configured_messages_are_logged_and_kept_in_the_inbox(
    db: Database, settings: Settings
) -> None:
    d = Dispatcher(db, settings, gateways=Gateways.from_settings(settings))
    case = await make_case(db, channels=["sms", "web"])
    await add_notifications(db, case)
    await d.drain()
    rows = await outbox(db, case.case_id)
    assert (rows["1:complainant:sms:complainant"].status, rows["1:complainant:sms:complainant"].gateway) == (
        "sent",
        "log",
    )


async def test_no_personal_data_in_logs(
    db: Database,
    dispatcher: Dispatcher,
    http_gateway: FakeHttpGateway,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    capture = LogCapture()
    old = structlog.get_config()
    structlog.configure(processors=[capture], cache_logger_on_first_use=False)
    # Module loggers may have been bound under an earlier configuration: give them fresh ones.
    monkeypatch.setattr(dispatcher_module, "log", structlog.get_logger("delivery.dispatcher"))
    monkeypatch.setattr(gateways_module, "log", structlog.get_logger("delivery.gateways"))
    http_gateway.fail_first = 1
    case = await make_case(db, channels=["sms", "line", "email"], line_user_id="bad")
    await add_notifications(db, case)
    other = await make_case(db, channels=["line"])
    await add_notifications(db, other)
    caplog.set_level(logging.DEBUG)
    try:
        for _ in range(3):
            await dispatcher.drain()
    finally:
        structlog.configure(**old)

    assert capture.entries, "the dispatcher logged nothing"
    assert any(e["event"] == "notification_delivery" for e in capture.entries)
    everything = dumps(capture.entries) + "\n" + caplog.text
    for personal in (PHONE, PHONE_E164, "812345678", EMAIL, LINE_USER, NAME):
        assert personal not in everything
    # Nor the message text, which names the tracking code: the log names the case by its id only.
    assert case.tracking_code not in everything


async def test_a_dead_dispatchers_claim_is_taken_over_after_its_lease(
    db: Database, delivery_settings: Settings, http_gateway: FakeHttpGateway
) -> None:
    case = await make_case(db, channels=["sms"])
    [notification_id] = await add_notifications(db, case)
    start = datetime.now(UTC)
    stalled = Dispatcher(db, delivery_settings, gateways=Gateways.from_settings(delivery_settings), clock=lambda: start)
    later = start + timedelta(seconds=delivery_settings.delivery_lease_seconds + 1)
    rescuer = Dispatcher(db, delivery_settings, gateways=Gateways.from_settings(delivery_settings), clock=lambda: later)
    try:
        [job], _ = await stalled._claim()  # claimed, then the process hangs before sending
        assert await Dispatcher(db, delivery_settings, gateways=rescuer.gateways).drain() == 0  # lease holds
        await rescuer.drain()
        # The first one wakes up and sends: the gateway sees the same idempotency key again...
        await stalled._record([await stalled._send(job)])
    finally:
        await stalled.aclose()
        await rescuer.aclose()
    assert [r.headers["Idempotency-Key"] for r in http_gateway.requests] == [str(notification_id)] * 2
    # ...and only the rescuer's result is recorded.
    assert [(a.attempt, a.result) for a in await attempts(db, case.case_id)] == [(2, "sent")]
    row = (await outbox(db, case.case_id))["1:complainant:sms:complainant"]
    assert (row.status, row.attempts, row.claim_token) == ("sent", 2, None)


async def _sent(db: Database, table: type[models.Notification] | type[models.WebhookDelivery], n: int) -> None:
    """``n`` rows of ``table`` sent long ago, as a year of cases leaves them, and the planner told so."""
    case = await make_case(db, channels=["sms"])
    now = datetime.now(UTC)
    async with db.session() as s:
        if table is models.WebhookDelivery:
            event = models.CaseEvent(
                case_id=case.case_id,
                seq=1,
                event="file",
                to_state="received",
                actor_id="c",
                actor_role="citizen",
                at=now,
            )
            s.add(event)
            await s.flush()
            rows: list[dict[str, object]] = [
                {"partner": f"p{k}", "event_id": event.id, "case_id": case.case_id, "seq": 1, "event": "file"}
                for k in range(n)
            ]
        else:
            rows = [
                {"case_id": case.case_id, "seq": k, "event": "file", "state": "received", "audience": "complainant"}
                | {"channel": "sms", "recipient": "complainant"}
                for k in range(n)
            ]
        await s.execute(insert(table), [r | {"created_at": now, "status": "sent", "sent_at": now} for r in rows])
    async with db.session() as s:
        await s.execute(text(f"ANALYZE {table.__tablename__}"))


async def _tally(db: Database) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """The database's tally of the delivery log (summed over shards), and a count of the log itself."""
    T, A = models.DeliveryTally, models.DeliveryAttempt
    async with db.session() as s:
        tally = await s.execute(select(T.gateway, T.result, func.sum(T.n)).group_by(T.gateway, T.result))
        log = await s.execute(select(A.gateway, A.result, func.count()).group_by(A.gateway, A.result))
        return {(g, r): int(n) for g, r, n in tally.all()}, {(g, r): int(n) for g, r, n in log.all()}


async def test_the_attempts_metric_is_the_databases_tally_of_the_log(
    db: Database, dispatcher: Dispatcher, http_gateway: FakeHttpGateway
) -> None:
    """``rongtuk_delivery_attempts_total`` sums the tally the database keeps as log rows are written (migration
    0018), so a scrape reads a few rows, not the whole log; the tally is the log's own count, whoever wrote it."""
    before, _ = await _tally(db)
    http_gateway.fail_first = 2
    case = await make_case(db, channels=["sms", "web"])
    await add_notifications(db, case)
    for _ in range(5):  # backoff is 0 here: each round retries what failed in the one before
        await dispatcher.drain()
    after, log = await _tally(db)
    assert after == log  # every row of the log counted once, those of earlier tests included
    grew = {key: n - before.get(key, 0) for key, n in after.items() if n != before.get(key, 0)}
    assert grew == {("sms", "retry"): 2, ("sms", "sent"): 1}
    async with db.session() as s:
        collector = await delivery_collector(s, now=datetime.now(UTC))
    exposition = generate_latest(_Registered(collector)).decode()
    assert f'rongtuk_delivery_attempts_total{{gateway="sms",result="sent"}} {float(after["sms", "sent"])}' in exposition


class _Registered(CollectorRegistry):
    def __init__(self, collector: Collector) -> None:
        super().__init__(auto_describe=False)
        self.register(collector)


@pytest.mark.parametrize("table", [models.Notification, models.WebhookDelivery])
async def test_a_claim_reads_only_the_rows_still_to_claim(
    db: Database, table: type[models.Notification] | type[models.WebhookDelivery]
) -> None:
    """Sent rows stay for good (about 15 a case) beside the few still to send: a claim reads the partial index
    of the latter (``ix_<table>_due``, migration 0017) in id order, not the table; on PostgreSQL in a prepared
    statement's generic plan too (the predicate a constant, not a parameter)."""
    await _sent(db, table, 3000)
    plan = await query_plan(db, due_rows(table, now=datetime.now(UTC), limit=50, skip_locked=not db.is_sqlite))
    # Before the index, SQLite read the whole table ("SCAN notifications", under its one write lock) and
    # PostgreSQL's generic plan walked the primary key past every sent row. Now the partial index, or (SQLite,
    # by its statistics) the status index's two ranges and a sort of what they hold: either reads the due rows.
    t = table.__tablename__
    assert f"ix_{t}_due" in plan or f"SEARCH {t} USING INDEX ix_{t}_status" in plan, plan
    assert "_pkey" not in plan and "Seq Scan" not in plan, plan
    # The backlog the metrics count sends its statuses as literals: with parameters, PostgreSQL's generic plan
    # read the whole table (124 ms at a million rows, bench.outbox_bench).
    if table is models.Notification:
        async with db.session() as s:
            counts = scraped_counts().compile(
                dialect=(await s.connection()).dialect, compile_kwargs={"render_postcompile": True}
            )
        assert "IN ('pending', 'sending', 'failed')" in str(counts) and not counts.params, str(counts)
        assert "ix_notifications_status" in await query_plan(db, scraped_counts())


async def test_the_staff_inbox_reads_each_recipients_newest_rows_from_its_index(db: Database) -> None:
    """Nothing indexed the recipient: every staff inbox page read and sorted all the kept rows (about 15 a case).
    Now a recipient's newest rows are one range of ``ix_notifications_recipient`` (migration 0020), in order."""
    await _sent(db, models.Notification, 500)
    # The page, and the count to the cap, as the inbox sends them. (This plans with scans off on PostgreSQL: it
    # shows the index can serve each, not which plan a prepared statement settles on; bench.outbox_bench
    # measures that, generic plans included.)
    for statement in (staff_messages("BMA", 50), staff_message_count("BMA:head", STAFF_INBOX_CAP)):
        plan = await query_plan(db, statement)
        assert "ix_notifications_recipient" in plan, plan
        assert "TEMP B-TREE" not in plan and "Sort" not in plan and "Seq Scan" not in plan, plan


async def test_a_broken_templates_file_stops_the_worker_as_it_starts(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    broken = tmp_path / "notifications.yaml"
    broken.write_text("languages: [th]\n", encoding="utf-8")
    with pytest.raises(TemplateError):
        start_dispatcher(settings.model_copy(update={"notification_templates_file": broken}), db)


async def test_news_too_old_to_send_stays_in_the_inbox(
    db: Database, dispatcher: Dispatcher, http_gateway: FakeHttpGateway
) -> None:
    case = await make_case(db, channels=["sms", "web"])
    await add_notifications(db, case)
    async with db.session() as s:
        for row in (await outbox(db, case.case_id)).values():
            stale = await s.get(models.Notification, row.id)
            assert stale is not None
            stale.created_at = datetime.now(UTC) - timedelta(hours=73)
    await dispatcher.drain()
    assert http_gateway.requests == []
    assert {r.status for r in (await outbox(db, case.case_id)).values()} == {"expired"}
    assert {(a.result, a.error, a.ok) for a in await attempts(db, case.case_id)} == {("expired", "expired", False)}


async def test_a_rebuilt_cases_news_is_as_old_as_its_events_and_only_the_recent_goes_out(
    db: Database, dispatcher: Dispatcher, http_gateway: FakeHttpGateway
) -> None:
    # A read model lost and rebuilt from Temporal: every transition's messages are written again, and their
    # delivery record is gone. What is older than RONGTUK_DELIVERY_EXPIRE_HOURS must not reach people again.
    from activities.projection import new_case_rows, write_transition
    from tests.store.test_projection import record

    case_id = f"RT-OLD-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    records = [
        record(case_id, 1, State.RECEIVED, intake=True),
        record(case_id, 2, State.SCREENING),
        record(case_id, 3, State.ASSIGNMENT),
    ]
    when = {1: now - timedelta(days=10), 2: now - timedelta(days=9), 3: now - timedelta(minutes=5)}
    records = [replace(r, event=replace(r.event, at=when[r.event.seq])) for r in records]
    async with db.session() as s:
        for rec in records:
            await write_transition(s, rec, allow_gap=True)

    written = (await outbox(db, case_id)).values()
    assert {(r.seq, r.created_at) for r in written} == {(seq, at) for seq, at in when.items()}
    whole = new_case_rows(records)  # the rebuild's bulk write dates them alike
    assert whole is not None and {(n["seq"], n["created_at"]) for n in whole.notifications} == set(when.items())

    await dispatcher.drain()
    after = (await outbox(db, case_id)).values()
    assert {r.status for r in after if r.seq < 3} == {"expired"}
    assert "expired" not in {r.status for r in after if r.seq == 3}
    assert {a.seq for a in await attempts(db, case_id) if a.result != "expired"} == {3}


async def test_line_says_409_to_a_retry_key_it_already_took_which_counts_as_sent(
    db: Database, dispatcher: Dispatcher, http_gateway: FakeHttpGateway
) -> None:
    http_gateway.always = 409
    case = await make_case(db, channels=["line", "sms"])
    await add_notifications(db, case)
    await dispatcher.drain()
    rows = await outbox(db, case.case_id)
    assert rows["1:complainant:line:complainant"].status == "sent"
    assert rows["1:complainant:sms:complainant"].status == "skipped"
    assert [(a.gateway, a.result, a.status_code) for a in await attempts(db, case.case_id)] == [("line", "sent", 409)]


async def test_a_busy_gateways_retry_after_is_honoured(
    db: Database, dispatcher: Dispatcher, http_gateway: FakeHttpGateway
) -> None:
    http_gateway.always = 429
    http_gateway.retry_after = "120"
    case = await make_case(db, channels=["sms"])
    await add_notifications(db, case)
    before = datetime.now(UTC)
    await dispatcher.drain()
    row = (await outbox(db, case.case_id))["1:complainant:sms:complainant"]
    assert row.status == "pending" and row.last_error == "http_429"
    assert row.next_attempt_at is not None and row.next_attempt_at >= before + timedelta(seconds=119)
    assert len(http_gateway.requests) == 1  # not tried again before its time
