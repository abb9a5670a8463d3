"""Request guards and response headers for every route: body size, control characters, security headers.

Pure ASGI (no BaseHTTPMiddleware): the body limit must stop reading as soon as the limit is passed, before
the rest of an oversized body is received.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ErrorDetail, _field_path, _json_problem

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# C0 controls except tab, newline and carriage return; DEL; C1 controls; lone surrogates (not Unicode text).
# PostgreSQL refuses NUL in text, deep inside the worker; refusing them here answers the caller instead.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_API_CSP = "default-src 'none'; frame-ancestors 'none'"
_PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def control_character_path(value: Any, path: tuple[int | str, ...] = ()) -> tuple[int | str, ...] | None:
    """Where in a parsed JSON document the first control character is (a key or a string), or None."""
    if isinstance(value, str):
        return path if _CONTROL.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if _CONTROL.search(key):
                return path
            found = control_character_path(item, (*path, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = control_character_path(item, (*path, index))
            if found is not None:
                return found
    return None


class GuardMiddleware:
    """Refuses bodies over ``max_body_bytes`` (413) and JSON with control characters (422); sets the
    security headers, and ``Cache-Control: no-store`` on everything but static assets."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        hsts: bool,
        upload_body_bytes: int | None = None,
        upload_path: Callable[[str], bool] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.hsts = hsts
        # File uploads (attachments/) may be larger; their routes check each file's own limit.
        self.upload_body_bytes = max(upload_body_bytes or max_body_bytes, max_body_bytes)
        self.upload_path = upload_path or (lambda _path: False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        send = self._with_headers(send, path)
        if scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        limit = self.upload_body_bytes if self.upload_path(path) else self.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._too_large(scope, receive, send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(scope, receive, send, limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if "json" in headers.get("content-type", "") and body:
            where = _control_characters_in(body)
            if where is not None:
                await _json_problem(
                    422,
                    "control_characters",
                    "The request contains control characters (such as NUL) that text may not hold.",
                    "คำขอมีอักขระควบคุม (เช่น NUL) ซึ่งไม่อนุญาตให้มีในข้อความ",
                    [
                        ErrorDetail(
                            field=_field_path(where) if where else None,
                            message="Remove the control characters from this field.",
                            message_th="กรุณาลบอักขระควบคุมออกจากช่องนี้",
                        )
                    ],
                )(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        limit_kib = limit // 1024
        if self.upload_path(scope["path"]):
            message = f"The files sent together are larger than {limit_kib} KiB; send fewer or smaller files."
            message_th = f"ไฟล์ที่ส่งพร้อมกันมีขนาดรวมเกิน {limit_kib} KiB กรุณาส่งให้น้อยลงหรือลดขนาดไฟล์"
        else:
            message = f"The request body is larger than {limit_kib} KiB; send less (attachments go by reference)."
            message_th = f"ข้อมูลที่ส่งมามีขนาดเกิน {limit_kib} KiB กรุณาส่งให้น้อยลง (ไฟล์แนบให้ส่งเป็นลิงก์อ้างอิง)"
        await _json_problem(413, "body_too_large", message, message_th, headers={"Connection": "close"})(
            scope, receive, send
        )

    def _with_headers(self, send: Send, path: str) -> Send:
        static = path.startswith("/static/")
        html_pages = not path.startswith(("/api/", "/codec/", "/metrics", "/openapi.json", "/healthz"))

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control" or static]
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"content-security-policy", (_PAGE_CSP if html_pages else _API_CSP).encode()),
                    (b"cross-origin-opener-policy", b"same-origin"),
                ]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                if self.hsts:
                    headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
                message = {**message, "headers": headers}
            await send(message)

        return wrapped


def _control_characters_in(body: bytes) -> tuple[int | str, ...] | None:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON: the route's own validation answers that
    return control_character_path(document)
