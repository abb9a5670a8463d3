"""The LINE official account's intake: webhook events in, the conversation moved on, complaints filed, replies out.

Per event: read the user's conversation from the database, take one pure step (channels/line_conversation.py),
write it back, then do what the step asks. Filing happens outside any database transaction (the worker's
projection must be able to write while the intake waits for its receipt); the conversation is saved as
``filing`` first, with a key for the attempt, so a restart in the middle resumes instead of losing the case.
A LINE user id, a message text and a description are personal data: none of them is logged.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import ValidationError

from api.errors import AppError
from api.ids import normalise_tracking_code
from api.service import IntakeDesk
from api.views import BANGKOK, expected_date
from channels.line_api import LineApi
from channels.line_conversation import (
    Conversation,
    Draft,
    Incoming,
    LocationIn,
    OtherIn,
    PhotoIn,
    PhotoRef,
    Places,
    Reply,
    Stage,
    Step,
    TextIn,
    advance,
    complaint_of,
    prompt,
)
from config.agencies import Agency
from config.settings import Settings
from delivery.templates import format_date
from intake.idempotency import idempotency_of
from intake_channels.filing import Filed, file
from store import line as line_store
from store import models, queries
from store.db import Database
from workflows.process import NEXT_STEPS, STATE_LABELS, Actor, Role, State

log = structlog.get_logger(__name__)

FILED = "รับเรื่องของท่านแล้ว\nรหัสติดตาม: {code}\n{expected}\nพิมพ์ 'ติดตาม {code}' เพื่อดูสถานะได้ตลอดเวลา"
EXPECTED = "คาดว่าจะได้รับคำตอบภายในวันที่ {date}"
EXPECTED_LATER = "วันที่คาดว่าจะได้รับคำตอบจะแจ้งให้ทราบเมื่อเจ้าหน้าที่รับเรื่อง"
FILED_WITH_LINE = "ความคืบหน้าจะแจ้งทาง LINE นี้"
FILED_ANONYMOUS = "เรื่องนี้บันทึกโดยไม่ระบุตัวตน โปรดเก็บรหัสติดตามไว้"
FILING_FAILED = "ขออภัย ระบบรับเรื่องขัดข้องชั่วคราว ยังไม่ได้บันทึกเรื่องของท่าน โปรดพิมพ์ 'ยินยอม' หรือ 'ไม่ยินยอม' อีกครั้งในอีกสักครู่"
FILING_REFUSED = "ขออภัย ข้อมูลที่ให้มาบันทึกไม่ได้ โปรดเริ่มแจ้งใหม่"
BAD_CODE = "รหัสติดตามไม่ถูกต้อง รหัสมี 10 ตัวอักษร เช่น ติดตาม 7KQ2M-X4B9T"
NO_CASE = "ไม่พบเรื่องที่มีรหัสติดตามนี้ โปรดตรวจสอบรหัสอีกครั้ง"
NO_OWN_CASES = "ยังไม่พบเรื่องที่ท่านแจ้งผ่าน LINE นี้ พิมพ์ 'ติดตาม' ตามด้วยรหัสติดตามเพื่อดูสถานะเรื่อง"
GROUPS_ONLY_ONE_TO_ONE = "โปรดแจ้งเรื่องร้องทุกข์ในแชตส่วนตัวกับบัญชีนี้ เพื่อความเป็นส่วนตัวของท่าน"
_DESCRIPTION_SHOWN = 200
_LOCK_STRIPES = 64
_FILING_MARGIN_SECONDS = 30.0


class LineBot:
    """Everything the webhook needs, wired once per app (the composition root builds it)."""

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        intake: IntakeDesk,
        api: LineApi,
        places: Places,
        agencies: dict[str, Agency],
    ) -> None:
        self.settings = settings
        self.db = db
        self.intake = intake
        self.api = api
        self.places = places
        self.agencies = agencies
        # Events of one user are taken one at a time in this process (striped locks: bounded memory); the row
        # lock does it across replicas.
        self._locks = [asyncio.Lock() for _ in range(_LOCK_STRIPES)]

    async def handle(self, events: Sequence[Any]) -> None:
        """Take the events of one webhook call, in order."""
        from linebot.v3.webhooks import FollowEvent, MessageEvent, UserSource

        for event in events:
            source = getattr(event, "source", None)
            reply_token = getattr(event, "reply_token", None)
            if not isinstance(source, UserSource) or not source.user_id:
                if isinstance(event, MessageEvent) and reply_token:
                    await self.api.reply(reply_token, [Reply(GROUPS_ONLY_ONE_TO_ONE)])
                continue
            if isinstance(event, FollowEvent):
                await self.api.reply(event.reply_token, [prompt(Stage.IDLE, max_photos=self.settings.line_max_photos)])
            elif isinstance(event, MessageEvent):
                async with self._locks[hash(source.user_id) % _LOCK_STRIPES]:
                    replies = await self._message(source.user_id, event)
                if replies and reply_token:
                    await self.api.reply(reply_token, replies)

    async def _incoming(self, message: Any) -> Incoming:
        from linebot.v3.webhooks import ImageMessageContent, LocationMessageContent, TextMessageContent

        if isinstance(message, TextMessageContent):
            return TextIn(message.text)
        if isinstance(message, LocationMessageContent):
            return LocationIn(float(message.latitude), float(message.longitude), message.address)
        if isinstance(message, ImageMessageContent):
            photo = PhotoRef(message_id=message.id)
            if message.content_provider.type == "line":
                content = await self.api.content(message.id)
                if content is not None:
                    photo = PhotoRef(
                        message_id=message.id, content_type=content.content_type, size_bytes=content.size_bytes
                    )
            return PhotoIn(photo)
        return OtherIn()

    async def _message(self, user: str, event: Any) -> list[Reply]:
        incoming = await self._incoming(event.message)
        now = datetime.now(UTC)
        async with self.db.session() as session:
            row = await line_store.load_conversation(session, line_user_id=user)
            if event.webhook_event_id in row.seen_events:
                log.info("line_event_redelivered")
                return []
            conversation = self._current(row, now)
            if conversation.stage is Stage.FILING and self._abandoned(row, now):
                # A filing cut short by a restart: take it up again with the same key before anything else.
                # (A filing still in progress elsewhere is left alone: the step says "please wait".)
                step = Step(conversation, [], file=True)
            else:
                step = advance(conversation, incoming, places=self.places, max_photos=self.settings.line_max_photos)
            after = step.conversation
            if step.file and after.draft.filing_key is None:
                after = after.model_copy(
                    update={"draft": after.draft.model_copy(update={"filing_key": str(uuid.uuid4())})}
                )
            await line_store.save_conversation(
                session,
                line_user_id=user,
                state=after.stage.value,
                draft=after.draft.model_dump(mode="json"),
                seen_events=[*row.seen_events, event.webhook_event_id],
                now=now,
            )
        log.info("line_step", stage_from=conversation.stage.value, stage_to=after.stage.value, file=step.file)
        replies = list(step.replies)
        if step.track is not None:
            replies[:0] = await self._track(user, step.track)
            if after.stage is not Stage.IDLE:
                replies.append(prompt(after.stage, max_photos=self.settings.line_max_photos))
        if step.file:
            replies += await self._file(user, after)
        return replies

    def _abandoned(self, row: line_store.ConversationRow, now: datetime) -> bool:
        """A filing nobody can still be waiting for: older than a DB-first filing could take, with a wide margin."""
        started = row.updated_at or now
        return now - started > timedelta(seconds=_FILING_MARGIN_SECONDS)

    def _current(self, row: line_store.ConversationRow, now: datetime) -> Conversation:
        """The stored conversation; one left alone too long starts again (a filing in progress never does)."""
        conversation = Conversation(stage=Stage(row.state), draft=Draft.model_validate(row.draft))
        idle_for = now - (row.updated_at or now)
        if conversation.stage is Stage.FILING:
            return conversation
        if idle_for > timedelta(hours=self.settings.line_conversation_hours):
            return Conversation()
        return conversation

    async def _file(self, user: str, conversation: Conversation) -> list[Reply]:
        draft = conversation.draft
        try:
            complaint = complaint_of(draft, line_user_id=user)
            line = Actor(id="citizen:line", role=Role.CITIZEN)
            filed = await file(
                self.intake,
                complaint=complaint,
                actor=line,
                idempotency=idempotency_of(line.id, f"line:{draft.filing_key}"),
            )
        except ValidationError:
            log.warning("line_filing_refused")
            await self._save(user, Conversation(stage=Stage.DESCRIPTION))
            return [Reply(FILING_REFUSED), prompt(Stage.DESCRIPTION, max_photos=self.settings.line_max_photos)]
        except AppError as exc:
            log.warning("line_filing_failed", code=exc.code)
            # The same key next time: an intake that deduplicates then files this attempt once.
            await self._save(user, Conversation(stage=Stage.CONSENT, draft=draft))
            return [Reply(FILING_FAILED, ("ยินยอม", "ไม่ยินยอม", "ยกเลิก"))]
        await self._save(user, Conversation())
        log.info("line_complaint_filed", case_id=filed.case_id, consent=bool(draft.consent))
        return [Reply(_filed_text(filed, consent=bool(draft.consent)), ("ติดตาม " + filed.tracking_code,))]

    async def _save(self, user: str, conversation: Conversation) -> None:
        async with self.db.session() as session:
            row = await line_store.load_conversation(session, line_user_id=user)
            await line_store.save_conversation(
                session,
                line_user_id=user,
                state=conversation.stage.value,
                draft=conversation.draft.model_dump(mode="json"),
                seen_events=row.seen_events,
                now=datetime.now(UTC),
            )

    async def _track(self, user: str, text: str) -> list[Reply]:
        """The status of a case by its code; the user's own case (their LINE account is its contact) with its
        details, anyone else's with the public status only. No code: the user's own latest cases."""
        async with self.db.sessions() as session:
            if not text:
                cases = await line_store.cases_of_line_user(session, line_user_id=user)
                if not cases:
                    return [Reply(NO_OWN_CASES)]
                lines = [f"- {c.tracking_code}: {_status_th(c.status)}{_expected_suffix(c)}" for c in cases]
                return [Reply("เรื่องของท่าน:\n" + "\n".join(lines))]
            code = normalise_tracking_code(text)
            if code is None:
                return [Reply(BAD_CODE)]
            case = await queries.case_by_tracking_code(session, code=code)
        if case is None:
            return [Reply(NO_CASE)]
        return [Reply(status_text(case, agencies=self.agencies, own=case.complainant_line_user_id == user))]


def _status_th(status: str) -> str:
    return STATE_LABELS[State(status)][1]


def _expected_suffix(case: models.Case) -> str:
    day = expected_date(case.expected_by)
    return f" (คาดว่าแล้วเสร็จ {format_date(day, 'th')})" if day and case.closed_at is None else ""


def status_text(case: models.Case, *, agencies: dict[str, Agency], own: bool) -> str:
    """A case's status as a LINE message: public facts for anyone, the complainant's own details for them."""
    lines = [f"เรื่อง {case.tracking_code}", f"สถานะ: {_status_th(case.status)}"]
    if (next_step := NEXT_STEPS.get(State(case.status))) is not None:
        lines.append(next_step[1])
    handled = [agencies[c].name_th if c in agencies else c for c in case.agencies or []]
    if handled:
        lines.append("หน่วยงานที่รับผิดชอบ: " + ", ".join(handled))
    day = expected_date(case.expected_by)
    if day and case.closed_at is None:
        lines.append(EXPECTED.format(date=format_date(day, "th")))
    if case.closed_at is not None:
        lines.append(f"ยุติเรื่องเมื่อ {format_date(case.closed_at.astimezone(BANGKOK).date(), 'th')}")
    if own:
        description = case.description
        if len(description) > _DESCRIPTION_SHOWN:
            description = description[:_DESCRIPTION_SHOWN] + "…"
        lines.append(f"รายละเอียดที่ท่านแจ้ง: {description}")
        place = ", ".join(p for p in (case.address, case.district, case.province) if p)
        if place:
            lines.append(f"สถานที่: {place}")
    return "\n".join(lines)


def _filed_text(filed: Filed, *, consent: bool) -> str:
    expected = EXPECTED.format(date=format_date(filed.expected_by, "th")) if filed.expected_by else EXPECTED_LATER
    text = FILED.format(code=filed.tracking_code, expected=expected)
    return text + "\n" + (FILED_WITH_LINE if consent else FILED_ANONYMOUS)
