"""End to end: the real dev server, worker and API as separate processes; the worker is killed mid-case."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from cli.devserver import ProcessGroup, start_listening, temporal_command

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-password-not-for-prod"


class Stack:
    """The dev server, and workers and APIs by name (one of each unless told), each a process with its own log."""

    def __init__(
        self, tmp: Path, database_url: str, *, workers: Sequence[str] = ("worker",), apis: Sequence[str] = ("api",)
    ) -> None:
        self.tmp = tmp
        self.group = ProcessGroup()
        self.workers, self.apis = tuple(workers), tuple(apis)
        self.temporal_port = 0  # chosen as the server starts
        self.api_ports: list[int] = []  # one per API, in order
        self.env = {
            "RONGTUK_ENV": "test",
            "RONGTUK_DATABASE_URL": database_url,
            "RONGTUK_DATA_DIR": str(tmp),
            "RONGTUK_TASK_QUEUE": "rongtuk-e2e",
            "RONGTUK_LOG_FORMAT": "json",
        }

    @property
    def api_port(self) -> int:
        return self.api_ports[0]

    def start_worker(self, name: str = "worker") -> None:
        self.group.start(name, [sys.executable, "-m", "worker"], env=self.env, log=self.tmp / f"{name}.log")

    def start(self) -> None:
        # Each server on a free port, and on another if a different process binds that one first.
        _, self.temporal_port = start_listening(
            self.group,
            "temporal",
            lambda port: temporal_command(db_file=self.tmp / "temporal.db", port=port, ui_port=None),
            log=self.tmp / "temporal.log",
        )
        self.env["RONGTUK_TEMPORAL_ADDRESS"] = f"127.0.0.1:{self.temporal_port}"
        for name in self.workers:
            self.start_worker(name)
        for name in self.apis:
            _, port = start_listening(
                self.group,
                name,
                lambda port: [sys.executable, "-m", "cli.main", "api", "--port", str(port)],
                env=self.env,
                log=self.tmp / f"{name}.log",
            )
            self.api_ports.append(port)


@pytest.fixture
def stack(tmp_path: Path, database_url: str) -> Iterator[Stack]:
    s = Stack(tmp_path, database_url)
    try:
        s.start()
        yield s
    finally:
        s.group.stop()


def add_user(env: Mapping[str, str], username: str, *options: str) -> None:
    """Through the operator's command, as a deployment would (``env``: the processes' settings)."""
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "users", "add", username, *options, "--password-stdin"],
        env={**os.environ, **env},
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def written(*texts: str) -> set[str]:
    """Each text as a log line may hold it: as is, and as a JSON log escapes it (Thai as ``\\u0e..``)."""
    return {form for t in texts for form in (t, json.dumps(t)[1:-1])}


def sign_in(client: httpx.Client, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def post(
    client: httpx.Client, path: str, body: dict[str, object], headers: dict[str, str] | None = None
) -> httpx.Response:
    """POST as a careful client does: one Idempotency-Key for all its tries; a 503 (the case still being
    registered, Temporal restarting) or a 429 (too busy) is tried again after its Retry-After; a 202 is followed
    to its result."""
    headers = (headers or {}) | {"Idempotency-Key": str(uuid.uuid4())}
    for _ in range(60):  # bounded: about a minute on a loaded machine
        response = client.post(path, json=body, headers=headers)
        if response.status_code not in (429, 503):
            break
        time.sleep(float(response.headers.get("Retry-After", "1")))
    if response.status_code == 202:
        where = response.headers["Location"]
        for _ in range(120):
            result = client.get(where, headers=headers).json()
            if result["state"] != "pending":
                break
            time.sleep(0.5)
        assert result["state"] == "applied", result
        response = client.post(path, json=body, headers=headers)  # the same key: the applied answer, not again
    assert response.status_code in (200, 201), response.text
    return response


async def read_rows(database_url: str, case_id: str) -> tuple[list[Any], list[Any]]:
    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        events = (
            await conn.execute(
                text("SELECT seq, event, actor_id FROM case_events WHERE case_id = :c ORDER BY seq"), {"c": case_id}
            )
        ).all()
        notifications = (
            await conn.execute(
                text(
                    "SELECT seq, audience, channel, recipient, count(*) FROM notifications WHERE case_id = :c "
                    "GROUP BY seq, audience, channel, recipient"
                ),
                {"c": case_id},
            )
        ).all()
    await engine.dispose()
    return list(events), list(notifications)


def test_case_survives_worker_sigkill(stack: Stack, database_url: str) -> None:
    add_user(stack.env, "officer-e2e", "--role", "officer")
    add_user(stack.env, "dopa-e2e", "--role", "agency", "--agency", "DOPA")
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.api_port}", timeout=60) as client:
        OFFICER, DOPA = sign_in(client, "officer-e2e"), sign_in(client, "dopa-e2e")
        receipt = post(
            client,
            "/api/v1/complaints",
            {
                "channel": "hotline",
                "description": "เจ้าหน้าที่ที่ว่าการอำเภอเรียกเก็บเงินค่าทำบัตรประชาชนเกินอัตรา",
                "complainant": {"name": "ประชา สุขใจ", "phone": "0899999999", "preferred_channels": ["sms"]},
                "location": {"province": "เชียงใหม่"},
            },
            OFFICER,
        ).json()
        case_id = receipt["case_id"]
        post(client, f"/api/v1/cases/{case_id}/actions/screen", {}, OFFICER)
        post(
            client,
            f"/api/v1/cases/{case_id}/actions/accept",
            {"category": "government.tax", "agencies": ["DOPA"]},
            OFFICER,
        )

        stack.group.stop("worker", sig=signal.SIGKILL)
        stack.start_worker()

        post(client, f"/api/v1/cases/{case_id}/actions/agency_accept", {}, DOPA)
        # The operator's command after a Cabinet holiday: finds the running case through Temporal visibility.
        recalc = subprocess.run(
            [sys.executable, "-m", "cli.main", "sla", "recalculate"],
            env={**os.environ, **stack.env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert recalc.returncode == 0, recalc.stderr
        assert "checked 1 running case(s): 0 moved" in recalc.stdout  # the calendar did not change
        board = client.get(
            "/api/v1/cases", params={"agency": "DOPA", "province": "เชียงใหม่", "page_size": 200}, headers=OFFICER
        ).json()
        assert case_id in [item["case_id"] for item in board["items"]]
        post(
            client,
            f"/api/v1/cases/{case_id}/actions/respond",
            {"outcome": "upheld", "response": "คืนเงินส่วนเกินและตักเตือนเจ้าหน้าที่แล้ว"},
            DOPA,
        )
        post(client, f"/api/v1/cases/{case_id}/actions/close", {}, OFFICER)
        tracked = client.get(f"/api/v1/track/{receipt['tracking_code']}").json()
    assert tracked["status"]["code"] == "closed"

    events, notifications = asyncio.run(read_rows(database_url, case_id))
    assert [e.event for e in events] == ["filed", "screen", "accept", "agency_accept", "respond", "close"]
    assert [e.actor_id for e in events[1:]] == ["officer-e2e", "officer-e2e", "dopa-e2e", "dopa-e2e", "officer-e2e"]
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    assert all(row[4] == 1 for row in notifications), "a notification was recorded twice"
    complainant_notices = sorted(row[0] for row in notifications if row[1] == "complainant")
    assert complainant_notices == [1, 2, 3, 4, 5, 6], "every transition tells the complainant exactly once"
    logs = "".join(p.read_text(errors="replace") for p in stack.tmp.glob("*.log"))
    assert not any(form in logs for form in written("0899999999", "+66899999999", "ประชา"))
