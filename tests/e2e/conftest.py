"""Fixtures the end-to-end tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web


@pytest.fixture
async def sms_gateway() -> AsyncIterator[dict[str, Any]]:
    """A real SMS gateway on 127.0.0.1 (``port``). While ``up`` (set it False to take it down) it answers 200 and
    counts each message in ``accepted`` by its Idempotency-Key (the notification id); a real gateway sends a key
    once, so a count above 1 is a message sent again under its own key. While down it answers 503 and counts
    the messages it turned away in ``refused``."""
    state: dict[str, Any] = {"up": True, "accepted": {}, "refused": 0}

    async def sms(request: web.Request) -> web.Response:
        await request.read()
        if not state["up"]:
            state["refused"] += 1
            return web.json_response({"message": "down"}, status=503)
        key = request.headers.get("Idempotency-Key", "")
        state["accepted"][key] = state["accepted"].get(key, 0) + 1
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/sms", sms)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    state["port"] = runner.addresses[0][1]
    yield state
    await runner.cleanup()
