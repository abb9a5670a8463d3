"""Benchmark notification delivery: outbox rows drained to a local SMS gateway or SMTP server by one or two
dispatchers.

    .venv/bin/python -m bench.delivery_bench [--messages 1000] [--backends sqlite postgresql]
                                             [--channels sms email] [--dispatchers 1 2] [--gateway-ms 0 20]
                                             [--out bench/results/delivery.json]

Each run loads ``--messages`` cases with one pending notification each on the channel, and times
``Dispatcher.drain()`` in one or two dispatchers at once until the outbox is empty. For SMS it starts an HTTP
server on 127.0.0.1 that answers like the SMS gateway after ``--gateway-ms`` (a stand-in for a real gateway's
latency); for email, an SMTP server (``aiosmtpd``, in a thread of its own) that answers DATA after as long. It
counts what the gateway received per notification (any duplicate is reported) and, for email, how many SMTP
connections the dispatchers opened. The gateway, the dispatchers and the database client share one process,
so the figures are a floor on what a worker does.
PostgreSQL uses a database ``rongtuk_delivery_bench`` created for the run and dropped at the end; SQLite a
temporary file. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from aiosmtpd.controller import Controller
from sqlalchemy import delete, insert, update
from sqlalchemy.engine import make_url

from bench import machine
from config.logging import configure_logging
from config.settings import Settings
from delivery.dispatcher import Dispatcher
from delivery.gateways import Gateways
from store import models
from store.db import Database
from store.migrate import upgrade

BENCH_DATABASE = "rongtuk_delivery_bench"
DEFAULT_PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


class Gateway:
    """The SMS gateway stand-in: answers 200 after ``delay`` seconds and counts each idempotency key."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.seen: dict[str, int] = {}

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        key = request.headers.get("Idempotency-Key", "")
        self.seen[key] = self.seen.get(key, 0) + 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.json_response({})


class SmtpGateway:
    """The SMTP server's handler: answers DATA after ``delay`` seconds, counts each notification and each
    connection (the client's address and port, one per connection)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.seen: dict[str, int] = {}
        self.connections: set[tuple[str, int]] = set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        marker = b"X-Rongtuk-Notification: "
        start = envelope.content.find(marker) + len(marker)
        key = envelope.content[start : envelope.content.find(b"\r\n", start)].decode()
        self.seen[key] = self.seen.get(key, 0) + 1
        self.connections.add(tuple(session.peer))
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 Message accepted"


async def _load(db: Database, messages: int, channel: str) -> None:
    now = datetime.now(UTC)
    cases = [
        {
            "case_id": f"RT-BENCH-{i:07d}",
            "tracking_code": f"B{i:09d}",
            "workflow_id": f"bench-{i}",
            "status": "screening",
            "channel": "web",
            "description": "bench",
            "complainant_phone": "081-234-5678",
            "complainant_email": f"bench{i}@example.com",
            "preferred_channels": [channel],
            "agencies": [],
            "attachments": [],
            "received_at": now,
            "expected_by": now,
            "updated_at": now,
        }
        for i in range(messages)
    ]
    rows = [
        {
            "case_id": c["case_id"],
            "seq": 1,
            "event": "screen",
            "state": "screening",
            "audience": "complainant",
            "channel": channel,
            "recipient": "complainant",
            "expected_by": now,
            "created_at": now,
            "status": "pending",
        }
        for c in cases
    ]
    async with db.session() as s:
        await s.execute(insert(models.Case), cases)
        await s.execute(insert(models.Notification), rows)


async def _reset(db: Database) -> None:
    async with db.session() as s:
        await s.execute(delete(models.DeliveryAttempt))
        await s.execute(
            update(models.Notification).values(
                status="pending", attempts=0, next_attempt_at=None, claim_token=None, claimed_until=None, gateway=None
            )
        )


async def _run(
    url: str, *, messages: int, channels: Sequence[str], dispatchers: Sequence[int], delays: Sequence[float]
) -> list[dict[str, Any]]:
    upgrade(url)
    db = Database(url)
    results = []
    for channel in channels:
        await _clear(db)
        await _load(db, messages, channel)
        for delay in delays:
            async with _gateway(channel, delay) as (gateway, gateway_settings):
                settings = Settings(env="test", database_url=url, log_level="WARNING", **gateway_settings)
                for count in dispatchers:
                    await _reset(db)
                    gateway.seen.clear()
                    if isinstance(gateway, SmtpGateway):
                        gateway.connections.clear()
                    workers = [
                        Dispatcher(db, settings, gateways=Gateways.from_settings(settings)) for _ in range(count)
                    ]
                    started, cpu_started = time.perf_counter(), time.process_time()
                    await asyncio.gather(*(w.drain(max_rounds=100_000) for w in workers))
                    seconds = time.perf_counter() - started
                    cpu = time.process_time() - cpu_started
                    for w in workers:
                        await w.aclose()
                    row = {
                        "backend": make_url(url).get_backend_name(),
                        "channel": channel,
                        "dispatchers": count,
                        "gateway_ms": delay * 1000,
                        "messages": messages,
                        "delivered": len(gateway.seen),
                        "duplicates": sum(n - 1 for n in gateway.seen.values()),
                        # SMTP only: how many connections the dispatchers opened for the run's messages.
                        "connections": len(gateway.connections) if isinstance(gateway, SmtpGateway) else None,
                        "seconds": round(seconds, 3),
                        "per_second": round(messages / seconds, 1),
                        # This process's CPU (the dispatchers, the database client and the gateway stand-in;
                        # not PostgreSQL's server) per message: the figure that holds on a loaded machine.
                        "cpu_ms_per_message": round(cpu * 1000 / messages, 2),
                    }
                    results.append(row)
                    print(
                        f"{row['backend']:<10} {channel:<6} {count:>3} {row['gateway_ms']:>6.0f} {messages:>7} "
                        f"{row['delivered']:>9} {row['duplicates']:>4} {row['connections'] or '':>5} "
                        f"{row['seconds']:>8.2f} {row['per_second']:>9.1f} {row['cpu_ms_per_message']:>7.2f}",
                        flush=True,
                    )
    await db.dispose()
    return results


async def _clear(db: Database) -> None:
    async with db.session() as s:
        await s.execute(delete(models.DeliveryAttempt))
        await s.execute(delete(models.Notification))
        await s.execute(delete(models.Case))


@asynccontextmanager
async def _gateway(channel: str, delay: float) -> AsyncIterator[tuple[Gateway | SmtpGateway, dict[str, Any]]]:
    """The channel's stand-in server on 127.0.0.1, and the settings that point the dispatchers at it."""
    if channel == "email":
        smtp = SmtpGateway(delay)
        with socket.socket() as probe:  # aiosmtpd checks its server by connecting to the port it was given
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        controller = Controller(smtp, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            yield smtp, {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False}
        finally:
            controller.stop()
        return
    gateway = Gateway(delay)
    app = web.Application()
    app.router.add_post("/sms", gateway.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield gateway, {"sms_gateway_url": f"http://127.0.0.1:{port}/sms", "sms_gateway_token": "bench"}
    finally:
        await runner.cleanup()


async def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print a table and write the JSON results."""
    parser = argparse.ArgumentParser(prog="python -m bench.delivery_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--channels", nargs="+", default=["sms"], choices=["sms", "email"])
    parser.add_argument("--dispatchers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--gateway-ms", nargs="+", type=float, default=[0.0, 20.0])
    parser.add_argument("--pg-server", default=DEFAULT_PG_SERVER)
    parser.add_argument("--out", type=Path, default=Path("bench/results/delivery.json"))
    args = parser.parse_args(argv)
    delays = [ms / 1000 for ms in args.gateway_ms]
    configure_logging(level="WARNING")  # a line per message would dominate the timings
    header = ("backend", "chan", "dsp", "gw ms", "msgs", "delivered", "dups", "conns", "seconds", "msgs/s", "cpu ms")
    print("{:<10} {:<6} {:>3} {:>6} {:>7} {:>9} {:>4} {:>5} {:>8} {:>9} {:>7}".format(*header))
    results: list[dict[str, Any]] = []
    if "sqlite" in args.backends:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/bench-{uuid.uuid4().hex[:6]}.db"
            results += await _run(
                url, messages=args.messages, channels=args.channels, dispatchers=args.dispatchers, delays=delays
            )
    if "postgresql" in args.backends:
        server = await asyncpg.connect(args.pg_server)
        try:
            await server.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE}")
            await server.execute(f"CREATE DATABASE {BENCH_DATABASE}")
            pg = make_url(args.pg_server).set(drivername="postgresql+asyncpg", database=BENCH_DATABASE)
            url = pg.render_as_string(hide_password=False)
            results += await _run(
                url, messages=args.messages, channels=args.channels, dispatchers=args.dispatchers, delays=delays
            )
        finally:
            await server.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE}")
            await server.close()
    report = {"machine": machine.machine_info(), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    asyncio.run(main())
