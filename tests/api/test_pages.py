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
