"""Real stand-ins for the gateways on 127.0.0.1 (an HTTP server for the SMS gateway and the LINE API, an
SMTP server), cases and outbox rows written straight into the read model, and a dispatcher wired to them."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from config.settings import Settings
from delivery.dispatcher import Dispatcher
from delivery.gateways import Gateways
from store import models
from store.db import Database

SMS_TOKEN = "sms-test-token"
LINE_TOKEN = "line-test-token"
# Personal data of the test complainant: none of it may reach a log line.
PHONE = "081-234-5678"
PHONE_E164 = "+66812345678"
EMAIL = "somying@example.org"
LINE_USER = "U" + "4af4980629" * 3 + "ab"
NAME = "สมหญิง รักดี"


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int
    raw: bytes = b""


@dataclass
class FakeHttpGateway:
    """Answers like an SMS gateway (``POST /sms``) and the LINE Messaging API (``POST /v2/bot/message/push``).

    ``fail_first`` makes each message fail that many times (with ``fail_status``) before it is accepted;
    ``always`` answers every request with that status. Accepted messages are counted per idempotency key.
    """

    port: int = 0
    fail_first: int = 0
    fail_status: int = 503
    always: int | None = None
    retry_after: str | None = None
    requests: list[Request] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)

    def accepted(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path and 200 <= r.status < 300]

    async def handle(self, request: web.Request) -> web.Response:
        key = request.headers.get("Idempotency-Key") or request.headers.get("X-Line-Retry-Key") or ""
        self.seen[key] = self.seen.get(key, 0) + 1
        if self.always is not None:
            status = self.always
        elif self.seen[key] <= self.fail_first:
            status = self.fail_status
        else:
            status = 200
        raw = await request.read()
        self.requests.append(Request(request.path, dict(request.headers), json.loads(raw), status, raw))
        body = {"sentMessages": [{"id": "1", "quoteToken": "q"}]} if request.path.startswith("/v2") else {}
        headers = {"Retry-After": self.retry_after} if self.retry_after and status != 200 else None
        return web.json_response(body if status == 200 else {"message": "nope"}, status=status, headers=headers)


@pytest.fixture
async def http_gateway() -> AsyncIterator[FakeHttpGateway]:
    fake = FakeHttpGateway()
    app = web.Application()
    app.router.add_post("/sms", fake.handle)
    app.router.add_post("/v2/bot/message/push", fake.handle)
    app.router.add_post("/hooks/{partner}", fake.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.port = runner.addresses[0][1]
    yield fake
    await runner.cleanup()


class SmtpHandler:
    """Keeps what it receives; refuses recipients at ``refuse_domain`` with a permanent 550."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.connections: list[Any] = []
        self.ehlo_names: list[str] = []  # the name the client gave in EHLO, one per message
        self.refuse_domain = "refused.example"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address.endswith("@" + self.refuse_domain):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        self.connections.append(session.peer)  # the client's (host, port): one per connection
        self.ehlo_names.append(session.host_name)
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[SmtpHandler, int]]:
    handler = SmtpHandler()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def delivery_settings(
    settings: Settings, http_gateway: FakeHttpGateway, smtp_server: tuple[SmtpHandler, int]
) -> Settings:
    base = f"http://127.0.0.1:{http_gateway.port}"
    return settings.model_copy(
        update={
            "sms_gateway_url": f"{base}/sms",
            "sms_gateway_token": SMS_TOKEN,
            "line_channel_access_token": LINE_TOKEN,
            "line_api_base": base,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_server[1],
            "smtp_starttls": False,
            "public_base_url": "https://rongtuk.example.go.th",
            "staff_emails": {"DOPA": "complaints@dopa.example.go.th"},
            "delivery_backoff_seconds": 0.0,
            "delivery_max_attempts": 4,
            "gateway_timeout_seconds": 5.0,
        }
    )


@pytest.fixture
async def dispatcher(delivery_settings: Settings, db: Database) -> AsyncIterator[Dispatcher]:
    d = Dispatcher(db, delivery_settings, gateways=Gateways.from_settings(delivery_settings))
    yield d
    await d.aclose()


@pytest.fixture(autouse=True)
async def set_aside_other_tests_outbox(db: Database) -> None:
    """Rows earlier tests left pending belong to cases whose tests are over: they must not reach these
    tests' gateways (the dispatcher drains the whole outbox)."""
    async with db.session() as s:
        await s.execute(
            update(models.Notification)
            .where(models.Notification.status.in_(["pending", "sending", "standby"]))
            .values(status="skipped")
        )


async def make_case(
    db: Database,
    *,
    channels: list[str],
    agencies: list[str] | None = None,
    phone: str | None = PHONE,
    email: str | None = EMAIL,
    line_user_id: str | None = LINE_USER,
    status: str = "screening",
    confidential: bool = False,
) -> models.Case:
    now = datetime.now(UTC)
    case = models.Case(
        case_id=f"RT-DLV-{uuid.uuid4().hex[:8]}",
        tracking_code=uuid.uuid4().hex[:10].upper(),
        workflow_id=f"wf-{uuid.uuid4().hex[:8]}",
        status=status,
        channel="web",
        description="ไฟถนนดับ",
        complainant_name=NAME,
        complainant_phone=phone,
        complainant_email=email,
        complainant_line_user_id=line_user_id,
        preferred_channels=channels,
        confidential=confidential,
        agencies=agencies or [],
        received_at=now,
        expected_by=datetime(2026, 12, 3, 17, 0, tzinfo=UTC),
        updated_at=now,
    )
    async with db.session() as s:
        s.add(case)
    return case


async def add_notifications(
    db: Database,
    case: models.Case,
    *,
    seq: int = 1,
    event: str = "screen",
    state: str = "screening",
    audience: str = "complainant",
    recipients: list[tuple[str, str]] | None = None,
) -> list[int]:
    """Outbox rows as the notify activity writes them: one per channel for the complainant."""
    pairs = recipients or [(channel, "complainant") for channel in case.preferred_channels]
    rows = [
        models.Notification(
            case_id=case.case_id,
            seq=seq,
            event=event,
            state=state,
            audience=audience,
            channel=channel,
            recipient=recipient,
            expected_by=case.expected_by + timedelta(0) if case.expected_by else None,
            created_at=datetime.now(UTC),
            status="pending",
        )
        for channel, recipient in pairs
    ]
    async with db.session() as s:
        s.add_all(rows)
        await s.flush()
        return [r.id for r in rows]


async def outbox(db: Database, case_id: str) -> dict[str, models.Notification]:
    async with db.session() as s:
        rows = (await s.execute(select(models.Notification).where(models.Notification.case_id == case_id))).scalars()
        return {f"{r.seq}:{r.audience}:{r.channel}:{r.recipient}": r for r in rows}


async def attempts(db: Database, case_id: str) -> list[models.DeliveryAttempt]:
    async with db.session() as s:
        return list(
            (
                await s.execute(
                    select(models.DeliveryAttempt)
                    .where(models.DeliveryAttempt.case_id == case_id)
                    .order_by(models.DeliveryAttempt.id)
                )
            ).scalars()
        )


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
