"""The HTTP poster under the SMS gateway and the partner webhooks, against real sockets on 127.0.0.1: what
reaches the server, kept-alive connections, and every way a connection fails as a ``TransientError`` within the
timeout (refused, no answer, cut mid-answer), never an exception of the HTTP library's own."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from yarl import URL

from delivery import gateways
from delivery.gateways import HttpPoster, TransientError, json_body

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def serving(method: str, path: str, handle: Handler) -> AsyncIterator[str]:
    """An aiohttp server on 127.0.0.1 with one route; yields its ``host:port``."""
    app = web.Application()
    app.router.add_route(method, path, handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def server(handle: Handler) -> AsyncIterator[tuple[str, list]]:
    peers: list[tuple[str, int]] = []

    async def record(request: web.Request) -> web.StreamResponse:
        peers.append(request.transport.get_extra_info("peername") if request.transport else ("", 0))
        return await handle(request)

    async with serving("POST", "/in", record) as address:
        yield f"http://{address}/in", peers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_body_headers_answer_and_one_kept_connection() -> None:
    got: list[tuple[dict[str, str], dict[str, object]]] = []

    async def handle(request: web.Request) -> web.Response:
        got.append((dict(request.headers), json.loads(await request.read())))
        return web.json_response({}, status=429 if len(got) == 3 else 200, headers={"Retry-After": "30"})

    poster = HttpPoster(timeout=5, headers={"Authorization": "Bearer t"})
    try:
        async with server(handle) as (url, peers):
            answers = [
                await poster.post(url, body=json_body({"text": f"เรื่องที่ {i}"}), headers={"Idempotency-Key": str(i)})
                for i in range(3)
            ]
    finally:
        await poster.aclose()
    assert [a.status for a in answers] == [200, 200, 429] and answers[2].retry_after == 30.0
    assert [body["text"] for _, body in got] == ["เรื่องที่ 0", "เรื่องที่ 1", "เรื่องที่ 2"]
    assert [h["Idempotency-Key"] for h, _ in got] == ["0", "1", "2"]
    assert {h["Authorization"] for h, _ in got} == {"Bearer t"}
    assert len(set(peers)) == 1, "messages in a row share one connection"


async def test_a_refused_connection_is_transient() -> None:
    poster = HttpPoster(timeout=5)
    try:
        with pytest.raises(TransientError) as refused:
            await poster.post(f"http://127.0.0.1:{free_port()}/in", body=b"{}", headers={})
    finally:
        await poster.aclose()
    assert "Connect" in str(refused.value.args[0])


async def test_a_server_that_never_answers_is_transient_within_the_timeout() -> None:
    stop = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        await stop.wait()
        return web.json_response({})

    poster = HttpPoster(timeout=0.5)
    try:
        async with server(handle) as (url, _):
            started = time.monotonic()
            with pytest.raises(TransientError):
                await poster.post(url, body=b"{}", headers={})
            assert time.monotonic() - started < 3
            stop.set()
    finally:
        await poster.aclose()


async def test_a_connection_cut_mid_answer_is_transient_and_the_next_post_reconnects() -> None:
    calls = 0

    async def handle(request: web.Request) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        await request.read()
        if calls == 1:
            assert request.transport is not None
            request.transport.close()  # hangs up without an answer
            return web.Response()
        return web.json_response({})

    poster = HttpPoster(timeout=5)
    try:
        async with server(handle) as (url, _):
            with pytest.raises(TransientError):
                await poster.post(url, body=b"{}", headers={})
            assert (await poster.post(url, body=b"{}", headers={})).status == 200
    finally:
        await poster.aclose()


@contextlib.asynccontextmanager
async def proxy() -> AsyncIterator[tuple[str, list[tuple[str, str | None]]]]:
    """A forward proxy on 127.0.0.1 that answers every request itself: keeps the absolute URL it was asked for
    and the proxy credentials it was given."""
    asked: list[tuple[str, str | None]] = []

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        asked.append((str(request.url), request.headers.get("Proxy-Authorization")))
        return web.json_response({})

    async with serving("*", "/{tail:.*}", handle) as address:
        yield address, asked


async def test_posts_go_through_the_environments_proxy_looked_up_once_per_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP_PROXY (with its credentials) and NO_PROXY apply as aiohttp reads them, once for each host."""
    lookups: list[str] = []
    lookup = gateways.get_env_proxy_for_url

    def counted(url: URL) -> object:
        lookups.append(str(url.host))
        return lookup(url)

    monkeypatch.setattr(gateways, "get_env_proxy_for_url", counted)
    poster = HttpPoster(timeout=5)
    try:
        async with proxy() as (address, asked), server(_ok) as (direct, peers):
            monkeypatch.setenv("HTTP_PROXY", f"http://relay:secret@{address}")
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")
            for n in range(3):
                assert (await poster.post("http://sms.gateway.example/send", body=b"{}", headers={})).status == 200
                assert (await poster.post(direct, body=json_body({"n": n}), headers={})).status == 200
    finally:
        await poster.aclose()
    credentials = "Basic " + base64.b64encode(b"relay:secret").decode()
    assert asked == [("http://sms.gateway.example/send", credentials)] * 3
    assert len(peers) == 3  # NO_PROXY: straight to the server
    assert sorted(lookups) == ["127.0.0.1", "sms.gateway.example"]


async def test_a_netrc_entry_for_the_gateways_host_does_not_break_its_bearer_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With aiohttp's ``trust_env`` a netrc entry for the host became Basic credentials beside the bearer token,
    and every POST raised ``ValueError``. Gateways carry their own credentials: netrc is not read."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password something\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    seen: list[str | None] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({})

    poster = HttpPoster(timeout=5, headers={"Authorization": "Bearer t"})
    try:
        async with server(handle) as (url, _):
            assert (await poster.post(url, body=b"{}", headers={})).status == 200
    finally:
        await poster.aclose()
    assert seen == ["Bearer t"]


async def _ok(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({})


async def test_an_https_post_gives_the_proxys_credentials_to_its_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gateways are HTTPS: through a proxy the credentials go with the CONNECT that opens the tunnel (a plain
    HTTP request carries them itself, above). This proxy refuses the tunnel once it has read the CONNECT, so
    the POST fails as a ``TransientError``, having shown what it sent."""
    heads: list[bytes] = []

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    relay = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = relay.sockets[0].getsockname()[1]
    monkeypatch.setenv("HTTPS_PROXY", f"http://relay:secret@127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    poster = HttpPoster(timeout=5)
    try:
        with pytest.raises(TransientError):
            await poster.post("https://sms.gateway.example/send", body=b"{}", headers={})
    finally:
        await poster.aclose()
        relay.close()
        await relay.wait_closed()
    (head,) = heads
    lines = head.decode().split("\r\n")
    assert lines[0] == "CONNECT sms.gateway.example:443 HTTP/1.1"
    assert "Proxy-Authorization: Basic " + base64.b64encode(b"relay:secret").decode() in lines
