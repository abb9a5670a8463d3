"""The login page in headless Chromium: Thai by default, English on request, sign-in sets the session cookie.

The API runs under uvicorn on 127.0.0.1 in this process's event loop; Chromium comes from the system
(/usr/bin/chromium, `apt-get install chromium fonts-thai-tlwg`), never downloaded by Playwright.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn

from api.accounts import add_account
from api.auth import StaffRole
from api.main import create_app
from cli.devserver import free_port
from config.settings import Settings
from store.db import Database

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PASSWORD = "correct horse battery"

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


async def test_login_page_in_chromium(base_url: str, db: Database, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    name = f"browser-{uuid.uuid4().hex[:6]}"
    await add_account(db, username=name, role=StaffRole.AGENCY_HEAD, password=PASSWORD, agency="BMA")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = await browser.new_page(locale="th-TH")
            outside: list[str] = []
            page.on("request", lambda r: None if r.url.startswith(base_url) else outside.append(r.url))
            await page.goto(f"{base_url}/login")
            assert await page.locator("html").get_attribute("lang") == "th"
            assert await page.locator("h1").inner_text() == "เข้าสู่ระบบสำหรับเจ้าหน้าที่"
            font = await page.locator("body").evaluate("e => getComputedStyle(e).fontFamily")
            assert font.startswith('"Noto Sans Thai"')
            await page.screenshot(path=str(tmp_path / "login-th.png"), full_page=True)

            await page.fill("#username", name)
            await page.fill("#password", "wrong password")
            await page.click("button[type=submit]")
            assert "ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง" in await page.locator(".error").inner_text()

            await page.click("a[hreflang=en]")
            assert await page.locator("h1").inner_text() == "Staff sign-in"
            await page.fill("#username", name)
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            # Straight to the work of the role (the agency's inbox), with who is signed in on every page.
            await page.wait_for_url(f"{base_url}/agency")
            who = await page.locator(".menu .who").inner_text()
            assert name in who and "Agency head" in who
            await page.goto(f"{base_url}/")
            assert name in await page.locator("main").inner_text()
            await page.screenshot(path=str(tmp_path / "home-en.png"), full_page=True)
            cookies = {c["name"]: c for c in await page.context.cookies()}
            session = cookies["rongtuk_session"]
            assert session["httpOnly"] and session["sameSite"] == "Lax"
            assert await page.evaluate("document.cookie.includes('rongtuk_session')") is False

            await page.goto(f"{base_url}/agency")
            await page.click("#sign-out")  # in the menu bar of every signed-in page
            await page.wait_for_url(f"{base_url}/login")
            await page.goto(f"{base_url}/agency")  # signed out: the console asks to sign in again
            await page.wait_for_url(f"{base_url}/login?next=/agency")
            assert outside == [], f"the page loaded something from elsewhere: {outside}"
        finally:
            await browser.close()
    print(f"screenshots: {tmp_path}")
