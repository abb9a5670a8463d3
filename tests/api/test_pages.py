"""The login page, the session cookie and CSRF, and the operational pages (docs, /metrics) by configuration."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from api.accounts import add_account
from api.auth import StaffRole
from config.settings import Settings
from store.db import Database
from tests.api.conftest import app_client, bearer

PASSWORD = "correct horse battery"


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings) as c:
        yield c


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def test_login_page_signs_in_with_a_secure_session_and_csrf(client: httpx.AsyncClient, db: Database) -> None:
    name = f"u-{uuid.uuid4().hex[:8]}"
    await add_account(db, username=name, role=StaffRole.SUPERVISOR, password=PASSWORD)
    page = await client.get("/login")
    assert page.status_code == 200 and 'lang="th"' in page.text and "เข้าสู่ระบบ" in page.text
    assert (
        page.headers["cache-control"] == "no-store"
        and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    )
    assert "http://" not in page.text.replace('href="?lang', "") and "https://" not in page.text
    english = await client.get("/login", params={"lang": "en"})
    assert 'lang="en"' in english.text and "Staff sign-in" in english.text
    assert 'lang="en"' in (await client.get("/login")).text, "the language choice sticks (cookie)"
    client.cookies.delete("rongtuk_lang")

    token = csrf_of(page)
    # Without the CSRF token (a form posted from another site) nothing happens.
    forged = await client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": "x", "next": "/"})
    assert forged.status_code == 403 and "rongtuk_session" not in forged.headers.get("set-cookie", "")
    wrong = await client.post("/login", data={"username": name, "password": "nope", "csrf_token": token})
    assert wrong.status_code == 401 and "ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง" in wrong.text and name not in wrong.text

    done = await client.post(
        "/login", data={"username": name, "password": PASSWORD, "csrf_token": token, "next": "//evil.example/"}
    )
    # Never off the site; with nowhere safe to go, to the supervisor's own console.
    assert done.status_code == 303 and done.headers["location"] == "/board"
    cookie = next(c for c in done.headers.get_list("set-cookie") if c.startswith("rongtuk_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie  # Secure in prod only
    home = await client.get("/")
    assert home.status_code == 200 and name in home.text
    me = await client.get("/api/v1/auth/me")
    assert me.json()["username"] == name and me.json()["role"] == "supervisor"

    # Changes made with the cookie need the CSRF header: a cross-site form cannot send it.
    body = {"channel": "web", "description": "ทดสอบการป้องกัน CSRF ของระบบ"}
    assert (await client.post("/api/v1/complaints", json=body)).status_code == 403
    csrf = client.cookies["rongtuk_csrf"]
    out = await client.post("/logout", data={"csrf_token": csrf})
    assert out.status_code == 303
    client.cookies.set("rongtuk_session", cookie.split(";")[0].split("=", 1)[1])  # replay the old cookie
    assert (await client.get("/api/v1/auth/me")).status_code == 401, "logout revoked the session"
    assert (await client.get("/")).status_code == 303


async def test_docs_assets_come_from_the_installed_package(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "/static/swagger/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower() and "https://" not in docs.text
    bundle = await client.get("/static/swagger/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    assert "no-store" not in bundle.headers.get("cache-control", "")
    assert (await client.get("/openapi.json")).json()["info"]["title"] == "Rongtuk"


async def test_staff_only_and_switched_off_operational_pages(settings: Settings) -> None:
    staff_only = settings.model_copy(update={"docs_access": "staff", "metrics_access": "staff"})
    async with app_client(staff_only) as client:
        assert (await client.get("/openapi.json")).status_code == 401
        assert (await client.get("/metrics")).status_code == 401
        redirect = await client.get("/docs")
        assert redirect.status_code == 303 and redirect.headers["location"] == "/login?next=/docs"
        staff = bearer("sup-ops", "supervisor")
        assert (await client.get("/openapi.json", headers=staff)).status_code == 200
        assert (await client.get("/metrics", headers=staff)).status_code == 200
    off = settings.model_copy(update={"docs_access": "off", "metrics_access": "off"})
    async with app_client(off) as client:
        staff = bearer("sup-ops", "supervisor")
        for path in ("/openapi.json", "/docs", "/metrics"):
            assert (await client.get(path, headers=staff)).status_code == 404, path


BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def main_text(page: httpx.Response) -> str:
    """The words of a page's main section, tags gone and spaces folded."""
    main = page.text.split('<main id="content"', 1)[1].split("</main>", 1)[0]
    return " ".join(re.sub(r"<[^>]+>", " ", main).split())


async def test_a_person_in_a_browser_gets_an_error_as_a_page_and_a_program_gets_json(
    client: httpx.AsyncClient, db: Database
) -> None:
    name = f"u-{uuid.uuid4().hex[:8]}"
    await add_account(db, username=name, role=StaffRole.SUPERVISOR, password=PASSWORD)
    signed = await client.post(
        "/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf_of(await client.get("/login"))}
    )
    assert signed.status_code == 303

    # A page number that is not one: the page says which value and offers the page without its query.
    bad = await client.get("/board", params={"page": "abc", "agency": "BMA"}, headers=BROWSER)
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html")
    words = main_text(bad)
    assert "ที่อยู่ของหน้านี้มีค่าที่ใช้ไม่ได้" in words and "page : ต้องเป็นจำนวนเต็ม" in words, words
    assert 'href="/board" id="error-plain"' in bad.text
    assert 'href="/board" id="error-home"' in bad.text, "back to the supervisor's own console"
    assert '{"error"' not in bad.text and name in bad.text, "a page, with the signed-in user in its menu"

    gone = await client.get("/case/RT-NOPE-1", headers=BROWSER)
    assert gone.status_code == 404 and "ไม่พบเรื่องเลขที่ RT-NOPE-1" in main_text(gone)
    english = await client.get("/audit/case/RT-NOPE-1", params={"lang": "en"}, headers=BROWSER)
    assert english.status_code == 404 and 'lang="en"' in english.text
    assert "Nothing was found here No case RT-NOPE-1." in main_text(english)
    client.cookies.delete("rongtuk_lang")
    nowhere = await client.get("/nowhere", headers=BROWSER)
    assert nowhere.status_code == 404 and 'href="/" id="error-home"' in nowhere.text, "staff start again at /"

    # Programs, and the API's addresses whatever the client accepts, keep the JSON error.
    assert (await client.get("/board", params={"page": "abc"})).json()["error"]["code"] == "validation_failed"
    api_gone = await client.get("/api/v1/cases/RT-NOPE-1", headers=BROWSER)
    assert api_gone.status_code == 404 and api_gone.json()["error"]["message_th"] == "ไม่พบเรื่องเลขที่ RT-NOPE-1"

    # A citizen (no session) is pointed to tracking, not to a console.
    client.cookies.clear()
    lost = await client.get("/trak/ABC", headers=BROWSER)
    assert lost.status_code == 404 and 'href="/track" id="error-home"' in lost.text
    assert "กลับไปหน้างานของท่าน" not in lost.text


async def test_an_error_page_keeps_retry_after_and_shows_no_trace(settings: Settings) -> None:
    from fastapi import FastAPI

    from api.errors import AppError, install_error_handlers
    from api.routes.pages import error_page

    app = FastAPI()
    app.state.settings = settings
    install_error_handlers(app, page=error_page)

    @app.get("/busy")
    async def busy() -> None:
        raise AppError(429, "rate_limited", "Too many requests.", "มีคำขอมากเกินไป", headers={"Retry-After": "7"})

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("secret detail 0812345678")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://rongtuk") as c:
        busy_page = await c.get("/busy", headers=BROWSER)
        assert busy_page.status_code == 429 and busy_page.headers["retry-after"] == "7"
        assert "โปรดลองใหม่อีกครั้งในอีก 7 วินาที" in main_text(busy_page)
        broken_page = await c.get("/broken", headers=BROWSER)
        assert broken_page.status_code == 500 and broken_page.headers["content-type"].startswith("text/html")
        assert "ระบบขัดข้อง" in main_text(broken_page)
        assert "secret" not in broken_page.text and "Traceback" not in broken_page.text
        assert (await c.get("/broken")).json()["error"]["code"] == "internal_error"
