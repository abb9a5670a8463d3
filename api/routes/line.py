"""LINE Messaging API webhook: ``POST /line/webhook``, signed by LINE with the channel secret.

The signature (``X-Line-Signature``, HMAC-SHA256 of the raw body) is checked by ``line-bot-sdk`` before
anything is read from the body; a missing one is 400, a wrong one 401, and nothing is filed either way.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel

from api.deps import SettingsDep
from api.errors import AppError
from channels.line_bot import LineBot

router = APIRouter(prefix="/line", tags=["line"])


class WebhookOut(BaseModel):
    status: str
    events: int


def _not_configured() -> AppError:
    return AppError(
        503,
        "line_not_configured",
        "LINE intake is not configured on this server (no channel secret).",
        "ระบบยังไม่ได้ตั้งค่าการรับเรื่องทาง LINE (ไม่มี channel secret)",
    )


@router.post("/webhook", response_model=WebhookOut)
async def webhook(
    request: Request,
    settings: SettingsDep,
    signature: Annotated[str | None, Header(alias="X-Line-Signature", max_length=200)] = None,
) -> WebhookOut:
    """Events from LINE (messages, follows): checked against the channel secret, then taken in order."""
    from linebot.v3.exceptions import InvalidSignatureError
    from linebot.v3.webhook import WebhookParser

    if not settings.line_channel_secret:
        raise _not_configured()
    if not signature:
        raise AppError(
            400,
            "signature_missing",
            "The X-Line-Signature header is missing; only LINE may call this webhook.",
            "ไม่มีส่วนหัว X-Line-Signature เฉพาะ LINE เท่านั้นที่เรียกใช้ webhook นี้ได้",
        )
    body = await request.body()
    try:
        events = WebhookParser(settings.line_channel_secret).parse(body.decode("utf-8"), signature)
    except InvalidSignatureError:
        raise AppError(
            401,
            "signature_invalid",
            "The X-Line-Signature does not match the body and the channel secret; nothing was done.",
            "X-Line-Signature ไม่ตรงกับข้อมูลและ channel secret ของช่องทางนี้ จึงไม่ได้ดำเนินการใด ๆ",
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise AppError(
            400,
            "webhook_body_invalid",
            "The webhook body is not a LINE webhook payload.",
            "ข้อมูลที่ส่งมาไม่ใช่ข้อมูล webhook ของ LINE",
        ) from None
    bot: LineBot = request.app.state.line_bot
    await bot.handle(events)
    return WebhookOut(status="ok", events=len(events))
