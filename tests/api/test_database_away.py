"""The read model away: the API answers 503 with Retry-After in words (Thai and English), never a 500 or a hung
request, and a write it could not confirm is applied once when sent again with its key.

The real app over ASGI, PostgreSQL reached through a TCP proxy in this process (``tests/tcp_proxy.py``); the
proxy, not PostgreSQL, is cut or stalled. No worker and no Temporal: intake answers from the database alone.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from activities.projection import is_permanent
from config.settings import Settings
from store import models
from store.db import Database, is_database_unavailable
from tests.api.conftest import app_client, complaint
from tests.api.test_consoles import file_by_form
from tests.tcp_proxy import TcpProxy

TIMEOUT = 1.5


@pytest.fixture
async def proxy(db: Database) -> AsyncIterator[TcpProxy]:
    if db.is_sqlite:
        pytest.skip("the read model is a SQLite file here: there is no connection to lose")
    url = make_url(db.url)
    proxied = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxied.start()
    yield proxied
    await proxied.close()


@pytest.fixture
async def api(settings: Settings, db: Database, proxy: TcpProxy) -> AsyncIterator[httpx.AsyncClient]:
    url = make_url(db.url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    here = settings.model_copy(
        update={
            "database_url": url,
            "database_timeout_seconds": TIMEOUT,
            "task_queue": f"tq-{uuid.uuid4()}",
            "intake_relay_in_api": False,
        }
    )
    async with app_client(here) as client:
        yield client


async def _filed_with(db: Database, key: str) -> int:
    async with db.session() as s:
        count = select(func.count()).where(models.IntakeOutbox.idempotency_key == key)
        return int((await s.execute(count)).scalar_one())


def _assert_away(answer: httpx.Response, *, read: bool) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "5"
    error = answer.json()["error"]
    assert error["code"] == "database_unavailable" and error["message_th"]
    assert ("nothing was changed" in error["message"]) is read
    assert "Traceback" not in answer.text and "asyncpg" not in answer.text


async def test_a_cut_database_is_503_and_the_complaint_is_filed_once_when_sent_again(
    api: httpx.AsyncClient, proxy: TcpProxy, db: Database
) -> None:
    before = await api.post("/api/v1/complaints", json=complaint())
    assert before.status_code == 201, before.text
    key = {"Idempotency-Key": str(uuid.uuid4())}
    proxy.cut()
    filed = await api.post("/api/v1/complaints", json=complaint(), headers=key)
    _assert_away(filed, read=False)
    assert "same Idempotency-Key" in filed.json()["error"]["message"]
    _assert_away(await api.get(f"/api/v1/track/{before.json()['tracking_code']}"), read=True)
    assert await _filed_with(db, key["Idempotency-Key"]) == 0  # cut before the statement: nothing half-written

    proxy.restore()
    again = [await api.post("/api/v1/complaints", json=complaint(), headers=key) for _ in range(2)]
    assert [r.status_code for r in again] == [201, 201] and again[0].text == again[1].text
    assert await _filed_with(db, key["Idempotency-Key"]) == 1


async def test_a_database_that_stops_answering_is_503_within_the_timeout(
    api: httpx.AsyncClient, proxy: TcpProxy, db: Database
) -> None:
    assert (await api.post("/api/v1/complaints", json=complaint())).status_code == 201
    proxy.stall()
    for method, path in (("POST", "/api/v1/complaints"), ("GET", "/api/v1/track/AAAAA-AAAAA")):
        started = time.monotonic()
        answer = await api.request(method, path, json=complaint() if method == "POST" else None)
        waited = time.monotonic() - started
        _assert_away(answer, read=method == "GET")
        # A bound, not a timing: the request ended instead of hanging (one timeout for the statement, at most
        # one more for a fresh connection, and slack for a busy machine).
        assert waited < 3 * TIMEOUT + 5, waited
    proxy.restore()
    assert (await api.post("/api/v1/complaints", json=complaint())).status_code == 201


async def test_the_complaint_form_keeps_what_was_typed_when_the_database_is_away(
    api: httpx.AsyncClient, proxy: TcpProxy, db: Database
) -> None:
    """Not an error page in place of the form: the form again, as typed, with the reason and when to retry."""
    description = f"ท่อระบายน้ำอุดตัน น้ำท่วมขังหน้าตลาดทุกครั้งที่ฝนตก {uuid.uuid4().hex[:6]}"
    proxy.cut()
    page = await file_by_form(api, description=description)
    assert page.status_code == 503 and page.headers["Retry-After"] == "5"
    assert description in page.text and "ส่งแบบฟอร์มอีกครั้ง" in page.text and "เพียงครั้งเดียว" in page.text
    assert "ระบบไม่พร้อมให้บริการชั่วคราว" in page.text  # headed as the service away, not "please correct"
    assert "กรุณาแก้ไขข้อมูล" not in page.text
    proxy.restore()
    # Sent again as the page shows it (its key kept): filed, once.
    key = re.search(r'name="form_key" value="([0-9a-f]{32})"', page.text)
    assert key
    again = await file_by_form(api, description=description, form_key=key.group(1))
    assert again.status_code == 303 and again.headers["Location"].startswith("/track/")
    assert await _filed_with(db, key.group(1)) == 1


def test_only_the_database_being_away_is_a_503() -> None:
    """Lost or refused connections and timeouts are the database away; a broken constraint or statement is a
    bug and stays a 500."""
    from sqlalchemy import exc

    lost = exc.DBAPIError("SELECT 1", {}, Exception("connection was closed"), connection_invalidated=True)
    assert is_database_unavailable(lost)
    assert is_database_unavailable(exc.OperationalError("SELECT 1", {}, Exception("could not connect")))
    assert is_database_unavailable(exc.TimeoutError("QueuePool limit reached"))
    assert is_database_unavailable(ConnectionRefusedError()) and is_database_unavailable(TimeoutError())
    assert not is_database_unavailable(exc.IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_database_unavailable(exc.ProgrammingError("SELEC", {}, Exception("syntax error")))
    assert not is_database_unavailable(exc.DBAPIError("SELECT 1", {}, Exception("value out of range")))
    assert not is_database_unavailable(ValueError("a bug"))
    # The worker reads the same line: what is away is retried, what is wrong is marked stuck for good.
    assert not any(is_permanent(e) for e in (lost, TimeoutError(), exc.OperationalError("S", {}, Exception())))
    assert is_permanent(exc.DBAPIError("SELECT 1", {}, Exception("value out of range")))
    assert is_permanent(exc.IntegrityError("INSERT", {}, Exception("duplicate key")))
