"""The reports and the map in headless Chromium, as a supervisor who signs in on the login page: charts and
tables render from this server only, the background export shows its progress and its file opens, the map
draws every province and the cases' points. Screenshots go to RONGTUK_SCREENSHOTS (or the test's tmp dir).
"""

from __future__ import annotations

import asyncio
import io
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import openpyxl
import pytest
import uvicorn

from api.accounts import add_account
from api.auth import StaffRole
from api.main import create_app
from cli.devserver import free_port
from config.settings import Settings
from store.db import Database
from tests.reports.conftest import RANGE
from tests.reports.seed import Seeded

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
PASSWORD = "correct horse battery"
SCOPE = f"since={RANGE.since}&until={RANGE.until}"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)")


@pytest.fixture
async def base_url(settings: Settings) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_supervisor_reads_reports_and_map(base_url: str, db: Database, seeded: Seeded, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    shots = Path(os.environ.get("RONGTUK_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    name = f"sup-{uuid.uuid4().hex[:6]}"
    await add_account(db, username=name, role=StaffRole.SUPERVISOR, password=PASSWORD)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = await browser.new_context(locale="th-TH", viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            outside: list[str] = []
            page.on("request", lambda r: None if r.url.startswith(base_url) else outside.append(r.url))
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on(
                "response",
                lambda r: (
                    problems.append(f"{r.status} {r.url}")
                    if r.status >= 400 and not r.url.endswith("/favicon.ico")
                    else None
                ),
            )

            await page.goto(f"{base_url}/reports?{SCOPE}")
            await page.wait_for_url(f"{base_url}/login?next=/reports")
            await page.fill("#username", name)
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.goto(f"{base_url}/reports?{SCOPE}&by=region")
            assert await page.locator("h1").inner_text() == "รายงาน"
            assert await page.locator("svg.chart").count() == 4
            assert await page.locator("svg.chart rect").count() > 20
            assert "ไตรมาส 1/2566" in await page.locator("#overview table").inner_text()
            assert "ภาคเหนือ" in await page.locator("#breakdown table").inner_text()
            await page.screenshot(path=str(shots / "reports-th.png"), full_page=True)

            # Export with progress: the button (shown by the page's script) starts a job, its page follows it.
            await page.click("button.rt-job >> nth=0")
            await page.wait_for_url("**/reports/jobs/*")
            assert await page.locator("progress").count() == 1
            link = page.locator("a.rt-download")
            await link.wait_for(timeout=60_000)
            assert await page.locator("progress").get_attribute("value") == "100"
            await page.screenshot(path=str(shots / "reports-export.png"), full_page=True)
            async with page.expect_download() as waiting:
                await link.click()
            download = await waiting.value
            book = openpyxl.load_workbook(io.BytesIO(Path(await download.path()).read_bytes()), read_only=True)
            assert book.active is not None and book.active.max_row == len(seeded.case_ids) + 1

            await page.goto(f"{base_url}/reports/map?{SCOPE}&measure=overdue_pct")
            assert await page.locator("svg.thai-map path").count() == 77
            assert await page.locator("svg.thai-map circle").count() > 100
            box = await page.locator("svg.thai-map").bounding_box()
            assert box is not None and box["height"] > 400
            assert "ร้อยละเกินกำหนด" in await page.locator("table").inner_text()
            await page.screenshot(path=str(shots / "reports-map.png"), full_page=True)

            await page.goto(f"{base_url}/reports?{SCOPE}&lang=en")
            assert "SPSO indicators" in await page.locator("main").inner_text()
            await page.screenshot(path=str(shots / "reports-en.png"), full_page=True)

            phone = await browser.new_context(
                locale="th-TH", viewport={"width": 390, "height": 844}, storage_state=await context.storage_state()
            )
            small = await phone.new_page()
            await small.goto(f"{base_url}/reports/map?{SCOPE}")
            width = await small.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, "the map page fits a phone without sideways scrolling"
            await small.screenshot(path=str(shots / "reports-map-phone.png"), full_page=True)
            assert outside == [], f"the pages loaded something from elsewhere: {outside}"
            assert problems == [], problems
        finally:
            await browser.close()
    print(f"screenshots: {shots}")
