"""The SMTP gateway against a real local SMTP server: connections kept between messages, dropped when stale."""

from __future__ import annotations

import asyncio
import email
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from email import policy
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller

from config.settings import Settings
from delivery.gateways import EmailGateway, Outbound, PermanentError
from delivery.templates import Message
from tests.delivery.conftest import SmtpHandler, _free_port


def outbound(n: int, address: str = "somchai@example.com") -> Outbound:
    return Outbound(n, address, Message(subject=f"เรื่อง {n}", text=f"ข้อความที่ {n}", lang="th"))


@pytest.fixture
def impatient_smtp() -> Iterator[tuple[SmtpHandler, int]]:
    """A server that hangs up on a connection idle for 0.3 s, as real ones do after a minute or so."""
    handler = SmtpHandler()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, timeout=0.3)
    controller.start()
    yield handler, port
    controller.stop()


@asynccontextmanager
async def gateway(settings: Settings, port: int) -> AsyncIterator[EmailGateway]:
    """The SMTP gateway for the local server on ``port``; its kept connections are closed afterwards."""
    smtp = EmailGateway(
        settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False})
    )
    try:
        yield smtp
    finally:
        await smtp.aclose()


def numbers(handler: SmtpHandler) -> list[str]:
    return [
        str(email.message_from_bytes(e.content, policy=policy.default)["X-Rongtuk-Notification"])
        for e in handler.messages
    ]


async def test_messages_in_a_row_share_one_connection(settings: Settings, smtp_server: tuple[SmtpHandler, int]) -> None:
    handler, port = smtp_server
    async with gateway(settings, port) as smtp:
        for n in range(1, 6):
            assert (await smtp.send(outbound(n))).status_code == 250
    assert numbers(handler) == ["1", "2", "3", "4", "5"]
    assert len(set(handler.connections)) == 1


async def test_messages_at_once_use_a_few_connections_and_keep_them(
    settings: Settings, smtp_server: tuple[SmtpHandler, int]
) -> None:
    handler, port = smtp_server
    async with gateway(settings, port) as smtp:
        await asyncio.gather(*(smtp.send(outbound(n)) for n in range(1, 9)))
        opened = len(set(handler.connections))
        await asyncio.gather(*(smtp.send(outbound(n)) for n in range(9, 13)))
    assert sorted(numbers(handler), key=int) == [str(n) for n in range(1, 13)]
    assert opened == 8  # eight at once: eight connections, of which four are kept...
    assert len(set(handler.connections)) == 8  # ...and carry the next four


@pytest.mark.parametrize("noticed", [True, False], ids=["hang-up-noticed", "hang-up-found-on-sending"])
async def test_a_connection_the_server_hung_up_on_is_replaced_and_nothing_is_lost_or_sent_twice(
    settings: Settings, impatient_smtp: tuple[SmtpHandler, int], monkeypatch: pytest.MonkeyPatch, noticed: bool
) -> None:
    handler, port = impatient_smtp
    if not noticed:  # the client has not seen the hang-up yet: the kept connection fails on its first command
        send_message = aiosmtplib.SMTP.send_message

        async def send_and_look_alive(self: aiosmtplib.SMTP, *args: Any, **kwargs: Any) -> Any:
            sent = await send_message(self, *args, **kwargs)
            self.looks_alive = True  # type: ignore[attr-defined]
            return sent

        monkeypatch.setattr(aiosmtplib.SMTP, "send_message", send_and_look_alive)
        monkeypatch.setattr(
            aiosmtplib.SMTP,
            "is_connected",
            property(lambda self: self.protocol is not None or getattr(self, "looks_alive", False)),
        )
    async with gateway(settings, port) as smtp:
        await smtp.send(outbound(1))
        await asyncio.sleep(0.8)  # the server closes the idle connection
        await smtp.send(outbound(2))
        await smtp.send(outbound(3))
    assert numbers(handler) == ["1", "2", "3"]
    assert len(set(handler.connections)) == 2


async def test_a_refused_recipient_is_permanent_and_the_next_message_goes_through(
    settings: Settings, smtp_server: tuple[SmtpHandler, int]
) -> None:
    handler, port = smtp_server
    async with gateway(settings, port) as smtp:
        await smtp.send(outbound(1))
        with pytest.raises(PermanentError) as refused:
            await smtp.send(outbound(2, f"nobody@{handler.refuse_domain}"))
        await smtp.send(outbound(3))
    assert refused.value.status_code == 550
    assert numbers(handler) == ["1", "3"]


async def test_thai_headers_and_an_internationalised_address_arrive_readable(settings: Settings) -> None:
    """A Thai sender name and subject arrive as written (RFC 2047), with both languages in the body; an address
    that is not ASCII goes out with SMTPUTF8 to a server that offers it."""
    handler = SmtpHandler()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    thai_from = settings.model_copy(update={"smtp_from": "ศูนย์บริการประชาชน 1111 <no-reply@psc.example>"})
    message = Message(subject="เรื่อง RT-1 ส่งต่อแล้ว", text="ส่งต่อไปยังกรมการปกครองแล้ว", lang="th")
    alternative = Message(subject="Case RT-1 forwarded", text="Forwarded to DOPA.", lang="en")
    try:
        async with gateway(thai_from, port) as smtp:
            await smtp.send(Outbound(41, "somchai@example.com", message, alternative))
            await smtp.send(Outbound(42, "สมชาย@ตัวอย่าง.ไทย", message))
    finally:
        controller.stop()
    first, second = (email.message_from_bytes(e.content, policy=policy.default) for e in handler.messages)
    assert str(first["From"]) == "ศูนย์บริการประชาชน 1111 <no-reply@psc.example>"
    assert str(first["Subject"]) == "เรื่อง RT-1 ส่งต่อแล้ว" and str(first["To"]) == "somchai@example.com"
    assert "rongtuk-notification-41@" in str(first["Message-ID"]) and str(first["X-Rongtuk-Notification"]) == "41"
    body = first.get_content()
    assert "ส่งต่อไปยังกรมการปกครองแล้ว" in body and "Case RT-1 forwarded\nForwarded to DOPA." in body
    assert [e.mail_from for e in handler.messages] == ["no-reply@psc.example"] * 2
    assert handler.messages[1].rcpt_tos == ["สมชาย@ตัวอย่าง.ไทย"] and "SMTPUTF8" in handler.messages[1].mail_options
    assert str(second["To"]) == "สมชาย@ตัวอย่าง.ไทย" and str(second["Subject"]) == "เรื่อง RT-1 ส่งต่อแล้ว"
    assert all(m["Date"].datetime.tzinfo is not None for m in (first, second)), "dated, as mail filters expect"
