"""The consoles in headless Chromium: the real app under uvicorn and a worker, both on the Temporal dev server.

Chromium is the system's (/usr/bin/chromium), never a download. Screenshots go to the test's tmp dir;
set RONGTUK_SCREENSHOTS=docs/screenshots to keep them for the README.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from temporalio.testing import WorkflowEnvironment

from api.accounts import add_account
from api.auth import StaffRole
from api.main import create_app
from cli.devserver import free_port
from config.settings import Settings
from store.db import Database
from tests.connection_guard import Guard
from worker import build_worker

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PASSWORD = "correct horse battery"
PHONE = {"width": 390, "height": 844}


@dataclass
class Console:
    base_url: str
    shots: Path
    browser: Any

    async def page(self, *, phone: bool = False, lang: str = "th-TH") -> Any:
        viewport = PHONE if phone else {"width": 1280, "height": 900}
        context = await self.browser.new_context(viewport=viewport, locale=lang, is_mobile=phone, has_touch=phone)
        page = await context.new_page()
        outside: list[str] = []
        page.on("request", lambda r: None if r.url.startswith(self.base_url) else outside.append(r.url))
        page.outside = outside
        return page

    async def shot(self, page: Any, name: str) -> Path:
        path = self.shots / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        keep = os.environ.get("RONGTUK_SCREENSHOTS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(keep) / path.name)
        return path

    async def sign_in(self, page: Any, username: str) -> None:
        await page.goto(f"{self.base_url}/login")
        await page.fill("#username", username)
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(lambda url: not url.startswith(f"{self.base_url}/login"))


async def account(db: Database, name: str, role: StaffRole, agency: str | None = None) -> str:
    await add_account(db, username=name, role=role, password=PASSWORD, agency=agency)
    return name


@pytest.fixture
async def console(
    dev_env: WorkflowEnvironment, settings: Settings, db: Database, task_queue: str, tmp_path: Path
) -> AsyncIterator[Console]:
    if not CHROMIUM.exists():
        pytest.skip("needs /usr/bin/chromium (apt-get install chromium)")
    from playwright.async_api import async_playwright

    app_settings = settings.model_copy(update={"task_queue": task_queue})
    port = free_port()
    # Each request of the pages is checked against the one-connection rule (tests/connection_guard.py).
    guard = Guard()
    app = create_app(app_settings, temporal=guard.watched_client(dev_env.client))
    server = uvicorn.Server(uvicorn.Config(guard.guarded(app), host="127.0.0.1", port=port, log_level="warning"))
    async with build_worker(dev_env.client, app_settings, db, task_queue=task_queue):
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        guard.watch_app(app)
        try:
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                try:
                    yield Console(f"http://127.0.0.1:{port}", tmp_path, browser)
                finally:
                    await browser.close()
        finally:
            server.should_exit = True
            await task
    guard.check()
    print(f"screenshots: {tmp_path}")
