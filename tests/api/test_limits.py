"""Abuse limits: 429 with Retry-After on the public endpoints, 413 before an oversized body is read, 422 for
control characters anywhere in JSON and for unsafe link schemes; no error repeats what was sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from api.limits import RateLimiter
from cli.devserver import free_port
from config.settings import Settings
from tests.api.conftest import OFFICER, app_client, complaint


@asynccontextmanager
async def client_for(settings: Settings, address: str = "203.0.113.7") -> AsyncIterator[httpx.AsyncClient]:
    # No Temporal: nothing here may reach a server someone else runs on the default port.
    away = settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    async with app_client(away, address=address) as client:
        yield client


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(settings) as c:
        yield c


def test_sliding_window() -> None:
    limiter = RateLimiter()
    assert [limiter.check("b", "ip", 2, now=t) for t in (0.0, 1.0)] == [None, None]
    assert limiter.check("b", "ip", 2, now=10.0) == 50  # the first hit leaves the window at 60 s
    assert limiter.check("b", "other-ip", 2, now=10.0) is None
    assert limiter.check("b", "ip", 2, now=60.5) is None
    assert limiter.check("b", "ip", 0, now=61.0) is None  # 0 switches the limit off


@pytest.mark.parametrize(
    ("setting", "method", "path", "body"),
    [
        ("rate_intake_per_minute", "POST", "/api/v1/complaints", {"channel": "web"}),
        ("rate_tracking_per_minute", "GET", "/api/v1/track/AAAAA-AAAAA", None),
        ("rate_citizen_action_per_minute", "POST", "/api/v1/track/AAAAA-AAAAA/actions/withdraw", {}),
        ("rate_login_per_minute", "POST", "/api/v1/auth/login", {"username": "x", "password": "y"}),
    ],
)
async def test_public_endpoints_answer_429_with_retry_after(
    settings: Settings, setting: str, method: str, path: str, body: object
) -> None:
    limited = settings.model_copy(update={setting: 3})
    async with client_for(limited) as client:
        answers = [(await client.request(method, path, json=body)).status_code for _ in range(3)]
        assert 429 not in answers
        refused = await client.request(method, path, json=body)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        error = refused.json()["error"]
        assert error["code"] == "rate_limited" and error["message_th"]
    async with client_for(limited, address="198.51.100.9") as other:
        assert (await other.request(method, path, json=body)).status_code != 429, "limits are per client address"


async def test_second_factor_guesses_are_limited_per_case(settings: Settings) -> None:
    limiter = RateLimiter()
    assert all(limiter.check("second_factor", "CODE", 5, window=900, now=float(t)) is None for t in range(5))
    assert limiter.check("second_factor", "CODE", 5, window=900, now=300.0) == 600


async def test_body_over_the_limit_is_413_before_it_is_read_in_full(settings: Settings) -> None:
    small = settings.model_copy(update={"max_body_bytes": 64 * 1024})
    sent = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(100):  # 6.4 MB offered, no Content-Length
            sent += 1
            yield b" " * 65536

    async with client_for(small) as client:
        response = await client.post(
            "/api/v1/complaints", content=stream(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"
        assert sent <= 3, f"read {sent} chunks of 64 KiB before refusing"
        declared = await client.post(
            "/api/v1/complaints",
            content=b"{}",
            headers={"content-type": "application/json", "content-length": "999999"},
        )
        assert declared.status_code == 413


@pytest.mark.parametrize(
    ("where", "body"),
    [
        ("description", complaint(description="ไฟดับ\x00 มาสองสัปดาห์แล้วครับ")),
        ("complainant.name", complaint(complainant={"name": "สม\x07ชาย", "preferred_channels": ["web"]})),
        ("attachments[0].name", complaint(attachments=[{"name": "a\x1bb.jpg", "url_or_ref": "upload:1"}])),
        (None, {"channel": "web", "descr\x00iption": "x"}),  # even in a key
        ("description", complaint(description="bidi \u0085 next-line")),
    ],
)
async def test_control_characters_anywhere_are_422(client: httpx.AsyncClient, where: str | None, body: object) -> None:
    response = await client.post("/api/v1/complaints", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "control_characters"
    assert error["details"][0]["field"] == where
    assert "สม" not in response.text and "ไฟดับ" not in response.text


async def test_newlines_and_tabs_are_text(client: httpx.AsyncClient) -> None:
    # Not refused by the control-character guard: the complaint is filed (in the database; no Temporal here).
    response = await client.post("/api/v1/complaints", json=complaint(description="บรรทัดแรก\nบรรทัดสอง\tจบ"))
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "link", ["javascript:alert(1)", "data:text/html;base64,PHNjcmlwdD4=", "file:///etc/passwd", "https:evil"]
)
async def test_unsafe_link_schemes_are_refused_without_echo(client: httpx.AsyncClient, link: str) -> None:
    body = complaint(attachments=[{"name": "photo.jpg", "url_or_ref": link}])
    response = await client.post("/api/v1/complaints", json=body, headers=OFFICER)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "attachments[0].url_or_ref"
    assert link not in response.text
