"""Calls to LINE for the intake bot: reply to a webhook event, and read what a user's photo is.

Through ``line-bot-sdk`` v3 with both hosts configurable (``line_api_base`` for replies, ``line_data_api_base``
for content), so tests point them at a local server; every call has the gateway timeout. Nothing here logs a
message text or a LINE user id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from channels.line_conversation import Reply
from config.settings import Settings
from delivery.gateways import LINE_TEXT_LIMIT

log = structlog.get_logger(__name__)

_MAX_QUICK_REPLIES = 13  # LINE's limit
_MAX_REPLY_MESSAGES = 5  # LINE's limit per reply
_QUICK_LABEL_LIMIT = 20


@dataclass(frozen=True)
class Content:
    content_type: str | None
    size_bytes: int


class LineApi:
    """The Messaging API client for replies and content; one per app, closed with it."""

    def __init__(self, settings: Settings) -> None:
        self._token = settings.line_channel_access_token or ""
        self._api_base = settings.line_api_base.rstrip("/")
        self._data_base = settings.line_data_api_base.rstrip("/")
        self._timeout = settings.gateway_timeout_seconds
        self._clients: dict[str, Any] = {}

    @property
    def configured(self) -> bool:
        return bool(self._token)

    def warm_up(self) -> None:
        """Import the SDK's messaging and webhook modules now: the first import takes seconds, which the first
        webhook (and LINE's patience with it) should not pay. Only when LINE is configured."""
        if self.configured:
            import linebot.v3.messaging
            import linebot.v3.webhook  # noqa: F401

    def _client(self, host: str) -> Any:
        # The SDK's client opens an aiohttp session, which needs the running loop: made on first use.
        if host not in self._clients:
            from linebot.v3.messaging import AsyncApiClient, Configuration

            self._clients[host] = AsyncApiClient(Configuration(host=host, access_token=self._token))
        return self._clients[host]

    async def reply(self, reply_token: str, replies: list[Reply]) -> bool:
        """Answer one webhook event; False (logged, not raised) when LINE refuses or cannot be reached: the
        conversation is saved either way and the user can ask again."""
        if not self.configured or not replies:
            return False
        from linebot.v3.messaging import AsyncMessagingApi, ReplyMessageRequest

        request = ReplyMessageRequest(
            replyToken=reply_token, messages=[_message(r) for r in replies[:_MAX_REPLY_MESSAGES]]
        )
        try:
            await AsyncMessagingApi(self._client(self._api_base)).reply_message(request, _request_timeout=self._timeout)
        except Exception as exc:  # the SDK's and aiohttp's errors: a failed reply is not a failed intake
            log.warning("line_reply_failed", error=type(exc).__name__, status=getattr(exc, "status", None))
            return False
        return True

    async def content(self, message_id: str) -> Content | None:
        """What a user's photo is (type and size), read from the data host; None when it cannot be read now."""
        if not self.configured:
            return None
        from linebot.v3.messaging import AsyncMessagingApiBlob

        api = AsyncMessagingApiBlob(self._client(self._data_base))
        try:
            response = await api.get_message_content_with_http_info(message_id, _request_timeout=self._timeout)
        except Exception as exc:  # as above: the reference is kept, the details are not
            log.warning("line_content_failed", error=type(exc).__name__, status=getattr(exc, "status", None))
            return None
        headers = {k.lower(): v for k, v in dict(response.headers or {}).items()}
        body = response.raw_data or b""
        return Content(content_type=headers.get("content-type"), size_bytes=len(body))

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


def _message(reply: Reply) -> Any:
    from linebot.v3.messaging import MessageAction, QuickReply, QuickReplyItem, TextMessage

    quick = None
    if reply.choices:
        quick = QuickReply(
            items=[
                QuickReplyItem(action=MessageAction(label=c[:_QUICK_LABEL_LIMIT], text=c))
                for c in reply.choices[:_MAX_QUICK_REPLIES]
            ]
        )
    return TextMessage(text=reply.text[:LINE_TEXT_LIMIT], quickReply=quick)
