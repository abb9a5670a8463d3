"""Email intake: mail to the centre's complaint address becomes a complaint.

Two ways to receive it, either or both by configuration: an SMTP listener (``aiosmtpd``, started by the
embedded set) and IMAP polling of a mailbox (``imaplib`` in a thread, with a timeout on every call). Both hand
the raw message to :class:`EmailIntake`, which parses it with the standard library's ``email`` package: the
sender's address becomes the complainant's email contact (and their channel for news), the text the
description, the files attachments. The receipt with the tracking code goes back by the notification outbox,
through the SMTP gateway, like every other message.

Mail that must not become a case is dropped quietly (never bounced, so no loop can start): automatic replies
and bulk mail (``Auto-Submitted``, ``Precedence``), delivery reports, our own messages and replies to them, and
anything over the size limit. Logs say why, never who.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import imaplib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from functools import partial
from html.parser import HTMLParser
from typing import Any

import structlog
from pydantic import ValidationError

from activities.sla import SlaActivities
from api.errors import AppError
from api.schemas import ComplaintIn
from api.service import IntakeDesk
from attachments.files import Prepared, prepare
from attachments.intake import complete, file_with_files
from attachments.storage import Storage
from config.settings import Settings
from domain.complaint import Channel
from intake.relay import IntakeRelay, start_relay
from intake_channels.filing import Filed
from sla.policy import load_policy
from store.db import Database, open_database
from workflows.process import Actor, Role

log = structlog.get_logger(__name__)

EMAIL_FILER = Actor(id="citizen:email", role=Role.CITIZEN)
_BULK = frozenset({"bulk", "junk", "list", "auto_reply"})
_DAEMONS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "noreply", "no-reply"})
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_OUR_MESSAGE_ID = "rongtuk-notification-"
_MIN_TEXT, _MAX_TEXT = 10, 5000


class Skip(Exception):
    """This message is not a complaint; ``reason`` is a short code, safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class InboundMail:
    """What a complaint needs from a message."""

    sender: str
    name: str | None
    subject: str | None
    text: str
    files: list[tuple[str | None, bytes]] = field(default_factory=list)


class _Text(HTMLParser):
    """The text of an HTML-only message (scripts and styles left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style"}:
            self._skip += 1
        elif tag in {"br", "p", "div", "li", "tr"}:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"} and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _html_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


def _clean(text: str) -> str:
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in _CONTROL.sub("", text).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _check_automatic(msg: EmailMessage, mail_from: str | None, own: frozenset[str]) -> None:
    auto = str(msg.get("Auto-Submitted", "no")).strip().lower()
    if auto and not auto.startswith("no"):
        raise Skip("auto_submitted")
    if msg.get("X-Autoreply") or msg.get("X-Autorespond") or msg.get("X-Auto-Response-Suppress"):
        raise Skip("auto_submitted")
    if str(msg.get("Precedence", "")).strip().lower() in _BULK:
        raise Skip("bulk")
    if msg.get_content_type() == "multipart/report" or mail_from in {"", "<>"}:
        raise Skip("bounce")
    if msg.get("X-Rongtuk-Notification"):
        raise Skip("own_message")
    threads = " ".join(str(msg.get(h, "")) for h in ("In-Reply-To", "References"))
    if _OUR_MESSAGE_ID in threads:
        raise Skip("reply_to_notification")
    _, sender = parseaddr(str(msg.get("From", "")))
    if sender.lower() in own:
        raise Skip("own_message")


def read_message(
    raw: bytes, *, own_addresses: frozenset[str], max_bytes: int, mail_from: str | None = None
) -> InboundMail:
    """The complaint in a raw RFC 5322 message, or :class:`Skip` with the reason it is not one."""
    if len(raw) > max_bytes:
        raise Skip("too_large")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    _check_automatic(msg, mail_from, own_addresses)
    senders = getaddresses([str(msg.get("Reply-To") or msg.get("From") or "")])
    name, sender = senders[0] if senders else ("", "")
    if "@" not in sender:
        raise Skip("no_sender")
    if sender.split("@", 1)[0].lower() in _DAEMONS:
        raise Skip("bounce")
    subject = _clean(str(msg.get("Subject", ""))) or None
    body = msg.get_body(preferencelist=("plain", "html"))
    text = ""
    if isinstance(body, EmailMessage):
        try:
            content = body.get_content()
        except (LookupError, ValueError):  # an unknown charset: the mail says nothing we can read
            content = ""
        text = _clean(_html_text(content) if body.get_content_type() == "text/html" else str(content))
    files = []
    for part in msg.iter_attachments():
        data = part.get_payload(decode=True)
        if isinstance(data, bytes) and data:
            files.append((part.get_filename(), data))
    return InboundMail(sender=sender, name=_clean(name) or None, subject=subject, text=text, files=files)


def complaint_of(mail: InboundMail) -> ComplaintIn:
    """The complaint an accepted message files: channel email, the sender as the contact for news."""
    description = mail.text
    if len(description) < _MIN_TEXT and mail.subject:
        description = f"{mail.subject}\n{description}".strip()
    if len(description) < _MIN_TEXT:
        raise Skip("no_text")
    body: dict[str, Any] = {
        "channel": Channel.email.value,
        "description": description[:_MAX_TEXT],
        "subject": mail.subject[:200] if mail.subject else None,
        "complainant": {
            "name": mail.name[:200] if mail.name else None,
            "email": mail.sender,
            "preferred_channels": ["email", "web"],
        },
    }
    try:
        return ComplaintIn.model_validate({k: v for k, v in body.items() if v is not None})
    except ValidationError:
        raise Skip("invalid_complaint") from None


def intake_desk(db: Database, settings: Settings, relay: IntakeRelay | None) -> IntakeDesk:
    """What filing needs in a process of its own (the API builds the same in its lifespan)."""
    return IntakeDesk(
        db=db,
        settings=settings,
        sla=SlaActivities(settings.calendar(), load_policy(settings.sla_policy_file)),
        relay=relay,
    )


class EmailIntake:
    """Turns raw messages into complaints (with their files); shared by the SMTP listener and the IMAP poller."""

    def __init__(self, *, settings: Settings, desk: IntakeDesk, storage: Storage) -> None:
        self.settings = settings
        self.desk = desk
        self.storage = storage
        own = {parseaddr(settings.smtp_from)[1], settings.email_intake_address or ""}
        self.own_addresses = frozenset(a.lower() for a in own if a)

    def _files(self, mail: InboundMail) -> list[Prepared]:
        kept: list[Prepared] = []
        for name, data in mail.files[: self.settings.attachment_max_files]:
            try:
                kept.append(prepare(name, data, max_bytes=self.settings.attachment_max_bytes))
            except AppError as exc:  # a file we cannot take does not stop the complaint
                log.info("email_attachment_dropped", code=exc.code)
        return kept

    async def handle(self, raw: bytes, *, mail_from: str | None = None) -> Filed | None:
        """File the message as a complaint; None if it is not one. Raises AppError (503) when the engine or
        the file store is away, so the sender's server tries again later."""
        try:
            mail = read_message(
                raw,
                own_addresses=self.own_addresses,
                max_bytes=self.settings.email_intake_max_bytes,
                mail_from=mail_from,
            )
            complaint = complaint_of(mail)
        except Skip as skip:
            log.info("email_ignored", reason=skip.reason)
            return None
        files = await asyncio.to_thread(self._files, mail)  # photos decoded off the event loop
        try:
            completed = ComplaintIn.model_validate(complete(complaint, files, self.settings))
        except (ValidationError, AppError):
            completed, files = complaint, []
        filed = await file_with_files(
            self.desk,
            storage=self.storage,
            complaint=completed,
            files=files,
            actor=EMAIL_FILER,
            public=True,
        )
        log.info("email_filed", case_id=filed.case_id, attachments=len(files))
        return filed


# --- SMTP ---------------------------------------------------------------------------------------------------


class SmtpHandler:
    """aiosmtpd handler: mail for the intake address only; a complaint per message."""

    def __init__(self, intake: EmailIntake, address: str | None) -> None:
        self.intake = intake
        self.address = address.lower() if address else None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if self.address is not None and address.lower() != self.address:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        try:
            await self.intake.handle(raw, mail_from=envelope.mail_from)
        except AppError as exc:
            log.warning("email_intake_deferred", code=exc.code)
            return "451 4.3.0 Try again later"
        return "250 2.0.0 Message accepted"


async def start_smtp(intake: EmailIntake, settings: Settings, *, port: int | None = None) -> asyncio.Server:
    """Listen for mail on ``email_intake_smtp_host``:``port`` in the running loop."""
    from aiosmtpd.smtp import SMTP

    handler = SmtpHandler(intake, settings.email_intake_address)
    factory = partial(
        SMTP,
        handler,
        data_size_limit=settings.email_intake_max_bytes,
        enable_SMTPUTF8=True,
        hostname="rongtuk",
        timeout=60,
    )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, settings.email_intake_smtp_host, port or settings.email_intake_smtp_port)
    log.info("email_smtp_listening", port=port or settings.email_intake_smtp_port)
    return server


# --- IMAP ---------------------------------------------------------------------------------------------------

ImapFactory = Callable[[Settings], Any]


def imap_connect(settings: Settings) -> imaplib.IMAP4:
    """A signed-in IMAP connection with the configured timeout on every socket operation."""
    assert settings.imap_host
    timeout = settings.imap_timeout_seconds
    conn: imaplib.IMAP4
    if settings.imap_ssl:
        conn = imaplib.IMAP4_SSL(settings.imap_host, settings.imap_port, timeout=timeout)
    else:
        conn = imaplib.IMAP4(settings.imap_host, settings.imap_port, timeout=timeout)
    conn.login(settings.imap_user or "", settings.imap_password or "")
    return conn


def _fetch_unseen(conn: Any, folder: str) -> list[tuple[bytes, bytes]]:
    conn.select(folder)
    status, data = conn.uid("SEARCH", None, "UNSEEN")
    if status != "OK" or not data or not data[0]:
        return []
    messages = []
    for uid in data[0].split():
        status, parts = conn.uid("FETCH", uid, "(BODY.PEEK[])")
        raw = next((p[1] for p in parts or [] if isinstance(p, tuple) and len(p) > 1), None)
        if status == "OK" and isinstance(raw, bytes):
            messages.append((uid, raw))
    return messages


async def poll_imap_once(intake: EmailIntake, settings: Settings, connect: ImapFactory = imap_connect) -> int:
    """Fetch unseen messages, file each and mark it seen; a message that could not be filed now stays unseen
    for the next poll. Returns how many messages were handled."""
    conn = await asyncio.to_thread(connect, settings)
    handled = 0
    try:
        for uid, raw in await asyncio.to_thread(_fetch_unseen, conn, settings.imap_folder):
            try:
                await intake.handle(raw)
            except AppError as exc:
                log.warning("email_intake_deferred", code=exc.code)
                break
            await asyncio.to_thread(conn.uid, "STORE", uid, "+FLAGS", "(\\Seen)")
            handled += 1
    finally:
        await asyncio.to_thread(_logout, conn)
    return handled


def _logout(conn: Any) -> None:
    try:
        conn.logout()
    except (imaplib.IMAP4.error, OSError):
        pass


async def run_imap(intake: EmailIntake, settings: Settings, stop: asyncio.Event) -> None:
    """Poll the mailbox every ``imap_poll_seconds`` until ``stop``; a failed poll is logged and retried."""
    while not stop.is_set():
        try:
            await poll_imap_once(intake, settings)
        except (imaplib.IMAP4.error, OSError, TimeoutError) as exc:
            log.warning("email_imap_poll_failed", error=type(exc).__name__)
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.imap_poll_seconds)
        except TimeoutError:
            pass


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """The email intake process: the SMTP listener and/or the IMAP poller, as configured, until ``stop``."""
    from attachments.storage import storage_from_settings
    from config.temporal import connect

    client = await connect(settings, lazy=True)
    db = open_database(settings)
    # This process starts its complaints' workflows itself right after each commit (the workers' relays would
    # too, a little later).
    relay, relay_task = start_relay(db, client, settings)
    intake = EmailIntake(
        settings=settings, desk=intake_desk(db, settings, relay), storage=storage_from_settings(settings)
    )
    server = await start_smtp(intake, settings) if settings.email_intake_smtp_port else None
    try:
        if settings.imap_host:
            await run_imap(intake, settings, stop)
        else:
            await stop.wait()
    finally:
        if server is not None:
            server.close()
            await server.wait_closed()
        relay_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay_task
        await db.dispose()
