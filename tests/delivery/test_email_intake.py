"""Email intake against real local servers: a message to the intake listener (aiosmtpd on 127.0.0.1) becomes
a case with its photo, and the receipt with the tracking code arrives at a second SMTP server through the
notification outbox; automatic mail, bounces, our own messages and oversized mail file nothing."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from attachments.storage import DiskStorage
from cli.devserver import free_port
from config.settings import Settings
from delivery.dispatcher import Dispatcher
from intake.relay import start_relay
from intake_channels.email import EmailIntake, intake_desk, poll_imap_once, start_smtp
from store import models
from store.db import Database
from tests.attachments.images import LATITUDE, photo
from tests.delivery.conftest import SmtpHandler
from worker import build_worker

INTAKE = "complaints@rongtuk.example.go.th"


@pytest.fixture
async def intake(
    dev_env: WorkflowEnvironment, delivery_settings: Settings, db: Database, task_queue: str
) -> AsyncIterator[tuple[EmailIntake, int, Settings]]:
    port = free_port()
    settings = delivery_settings.model_copy(
        update={
            "task_queue": task_queue,
            "email_intake_address": INTAKE,
            "email_intake_smtp_port": port,
            "email_intake_max_bytes": 200_000,
        }
    )
    relay, relay_task = start_relay(db, dev_env.client, settings)
    desk = intake_desk(db, settings, relay)
    handler = EmailIntake(settings=settings, desk=desk, storage=DiskStorage(settings.attachment_root))
    async with build_worker(dev_env.client, settings, db, task_queue=task_queue):
        server = await start_smtp(handler, settings)
        try:
            yield handler, port, settings
        finally:
            server.close()
            await server.wait_closed()
            relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay_task


def mail(
    sender: str, *, subject: str = "ถนนชำรุด", text: str = "ถนนหน้าตลาดเป็นหลุมใหญ่ รถจักรยานยนต์ล้มทุกวัน", **headers: str
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"สมชาย ใจดี <{sender}>"
    msg["To"] = INTAKE
    msg["Subject"] = subject
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(text)
    return msg


async def cases_from(db: Database, sender: str) -> list[models.Case]:
    async with db.session() as s:
        query = select(models.Case).where(models.Case.complainant_email == sender)
        return list((await s.execute(query)).scalars())


async def test_a_message_becomes_a_case_and_the_receipt_comes_back_by_email(
    intake: tuple[EmailIntake, int, Settings],
    db: Database,
    dispatcher: Dispatcher,
    smtp_server: tuple[SmtpHandler, int],
) -> None:
    _, port, _ = intake
    sender = f"somchai-{uuid.uuid4().hex[:6]}@example.org"
    msg = mail(sender)
    msg.add_attachment(photo(), maintype="image", subtype="jpeg", filename="หลุม.jpg")
    msg.add_attachment(b"MZ\x90\x00 not a picture", maintype="image", subtype="jpeg", filename="virus.jpg")
    await aiosmtplib.send(msg, hostname="127.0.0.1", port=port, timeout=30)

    [case] = await cases_from(db, sender)
    assert case.channel == "email" and case.complainant_name == "สมชาย ใจดี"
    assert case.subject == "ถนนชำรุด" and "รถจักรยานยนต์" in case.description
    assert case.preferred_channels == ["email", "web"]
    assert case.latitude == pytest.approx(LATITUDE, abs=1e-4)  # the photo's position: the mail gave none
    async with db.session() as s:
        files = list(
            (await s.execute(select(models.Attachment).where(models.Attachment.case_id == case.case_id))).scalars()
        )
    assert [(f.name, f.content_type) for f in files] == [("หลุม.jpg", "image/jpeg")]  # the disguised one dropped

    # Intake committed the case; its workflow (started by the relay) queues the receipt in the outbox.
    for _ in range(300):
        async with db.session() as s:
            queued = (
                await s.execute(select(models.Notification.id).where(models.Notification.case_id == case.case_id))
            ).first()
        if queued:
            break
        await asyncio.sleep(0.1)
    await dispatcher.drain()
    received, _ = smtp_server
    replies = [e for e in received.messages if sender in e.rcpt_tos]
    assert len(replies) == 1
    reply = email.message_from_bytes(replies[0].content, policy=email.policy.default)
    assert case.tracking_code in reply.get_body().get_content()  # type: ignore[union-attr]

    # The reply sent back to the intake address (a loop) files nothing.
    await aiosmtplib.send(replies[0].content, sender=sender, recipients=[INTAKE], hostname="127.0.0.1", port=port)
    assert len(await cases_from(db, sender)) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto_Submitted": "auto-replied"},
        {"Precedence": "bulk"},
        {"X_Autoreply": "yes"},
        {"In_Reply_To": "<rongtuk-notification-12@rongtuk>"},
    ],
)
async def test_automatic_mail_files_nothing(
    intake: tuple[EmailIntake, int, Settings], db: Database, headers: dict[str, str]
) -> None:
    _, port, _ = intake
    sender = f"auto-{uuid.uuid4().hex[:6]}@example.org"
    await aiosmtplib.send(mail(sender, **headers), hostname="127.0.0.1", port=port, timeout=30)
    assert await cases_from(db, sender) == []


async def test_bounces_wrong_recipients_and_oversized_mail(
    intake: tuple[EmailIntake, int, Settings], db: Database
) -> None:
    _, port, _ = intake
    bounce = mail("MAILER-DAEMON@example.org")
    await aiosmtplib.send(bounce, sender="", recipients=[INTAKE], hostname="127.0.0.1", port=port)
    assert await cases_from(db, "MAILER-DAEMON@example.org") == []
    sender = f"big-{uuid.uuid4().hex[:6]}@example.org"
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await aiosmtplib.send(
            mail(sender), recipients=["someone@rongtuk.example.go.th"], hostname="127.0.0.1", port=port
        )
    big = mail(sender)
    big.add_attachment(b"\0" * 300_000, maintype="application", subtype="pdf", filename="big.pdf")
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await aiosmtplib.send(big, hostname="127.0.0.1", port=port, timeout=30)
    assert refused.value.code == 552
    assert await cases_from(db, sender) == []


class FakeImap:
    """An IMAP mailbox as imaplib answers: what the poller searches, fetches and flags."""

    def __init__(self, messages: dict[bytes, bytes]) -> None:
        self.messages = messages
        self.seen: set[bytes] = set()
        self.logged_out = False

    def select(self, folder: str) -> tuple[str, list[bytes]]:
        return "OK", [str(len(self.messages)).encode()]

    def uid(self, command: str, *args: Any) -> tuple[str, list[Any]]:
        if command == "SEARCH":
            return "OK", [b" ".join(u for u in self.messages if u not in self.seen)]
        if command == "FETCH":
            return "OK", [(b"1 (UID " + args[0] + b" BODY[] {1}", self.messages[args[0]]), b")"]
        if command == "STORE":
            self.seen.add(args[0])
            return "OK", []
        raise AssertionError(command)

    def logout(self) -> None:
        self.logged_out = True


async def test_imap_polling_files_unseen_messages_once(intake: tuple[EmailIntake, int, Settings], db: Database) -> None:
    handler, _, settings = intake
    sender = f"imap-{uuid.uuid4().hex[:6]}@example.org"
    box = FakeImap({b"7": mail(sender).as_bytes(), b"8": mail(sender, Auto_Submitted="auto-generated").as_bytes()})
    assert await poll_imap_once(handler, settings, connect=lambda _s: box) == 2
    assert box.seen == {b"7", b"8"} and box.logged_out
    assert await poll_imap_once(handler, settings, connect=lambda _s: box) == 0
    await asyncio.sleep(0)
    assert len(await cases_from(db, sender)) == 1
