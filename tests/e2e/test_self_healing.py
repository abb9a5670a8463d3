"""End to end: `rongtuk dev` restarts what dies, and every process stops promptly whatever state Temporal is in.

Real processes on 127.0.0.1 (the `temporal` binary from the venv, the worker, the API, the dev supervisor);
every wait is bounded.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from cli.devserver import PortLost, ProcessGroup, free_port, start_listening, temporal_command, wait_for_port
from tests.e2e.test_separate_processes import post

pytestmark = pytest.mark.e2e

STOP_WITHIN = 8.0  # seconds a process may take to exit after SIGTERM (grace 2 s here; the worker is bound to 4 s)


def wait_until(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def env_for(tmp: Path, database_url: str, temporal_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "RONGTUK_ENV": "test",
        "RONGTUK_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "RONGTUK_DATABASE_URL": database_url,
        "RONGTUK_DATA_DIR": str(tmp),
        "RONGTUK_TASK_QUEUE": f"rongtuk-heal-{uuid.uuid4().hex[:8]}",
        "RONGTUK_LOG_FORMAT": "json",
        "RONGTUK_SHUTDOWN_GRACE_SECONDS": "2",
        "PYTHONUNBUFFERED": "1",
    }


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def start_api(env: dict[str, str], log: Path, attempts: int = 5) -> subprocess.Popen[bytes]:
    """The API on a free port, listening; started again on another port if it lost its own (free_port's port
    was free a moment ago: the Temporal dev server, started just before, binds ports of its own)."""
    for attempt in range(1, attempts + 1):
        port = free_port()
        api = start([sys.executable, "-m", "cli.main", "api", "--port", str(port)], env, log)
        try:
            wait_for_port(port, proc=api)
            return api
        except PortLost:
            if attempt == attempts:
                raise
        except BaseException:
            api.kill()
            raise
    raise AssertionError("unreachable")


def stop_within(proc: subprocess.Popen[bytes], seconds: float, sig: int = signal.SIGTERM) -> int:
    """Signal ``proc`` and return its exit code; fail (and kill it) if it is still running after ``seconds``."""
    proc.send_signal(sig)
    try:
        return proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"still running {seconds:.0f}s after signal {sig}") from None


def lifecycle(client: httpx.Client, officer: dict[str, str], bma: dict[str, str]) -> str:
    """File a case and take it to closed over the API; its tracked status code."""
    receipt = post(
        client,
        "/api/v1/complaints",
        {
            "channel": "hotline",
            "description": "ไฟถนนหน้าโรงเรียนดับมาสองสัปดาห์ เด็กเดินกลับบ้านในที่มืด",
            "complainant": {"name": "สมหญิง ใจดี", "phone": "0812345678", "preferred_channels": ["sms"]},
            "location": {"province": "ขอนแก่น"},
        },
        officer,
    ).json()
    case = f"/api/v1/cases/{receipt['case_id']}/actions"
    post(client, f"{case}/screen", {}, officer)
    post(client, f"{case}/accept", {"category": "government.tax", "agencies": ["BMA"]}, officer)
    post(client, f"{case}/agency_accept", {}, bma)
    post(client, f"{case}/respond", {"outcome": "upheld", "response": "ซ่อมไฟถนนเรียบร้อยแล้ว"}, bma)
    post(client, f"{case}/close", {}, officer)
    return str(client.get(f"/api/v1/track/{receipt['tracking_code']}").json()["status"]["code"])


class Dev:
    """`rongtuk dev` as a child process, read through its console."""

    def __init__(self, tmp: Path, database_url: str) -> None:
        self.temporal_port, self.ui_port, self.api_port = free_port(), free_port(), free_port()
        self.email_port = free_port()
        self.console = tmp / "console.log"
        self.proc = start(
            [
                sys.executable,
                "-m",
                "cli.main",
                "dev",
                "--temporal-port",
                str(self.temporal_port),
                "--ui-port",
                str(self.ui_port),
                "--api-port",
                str(self.api_port),
                "--email-port",
                str(self.email_port),
            ],
            env_for(tmp, database_url, self.temporal_port),
            self.console,
        )

    def text(self) -> str:
        return self.console.read_text(errors="replace")

    def pids(self, name: str) -> list[int]:
        # Not anchored at the line start: a child's log line may still lack its newline when the supervisor
        # speaks (the console is shared), and a restarted child missed here would outlive the test.
        return [int(pid) for pid in re.findall(rf"\b{name} started \(pid (\d+)\)$", self.text(), re.MULTILINE)]

    def sign_in(self, client: httpx.Client, demo_user: str) -> dict[str, str]:
        """Sign in as one of the demo users whose password `rongtuk dev` printed on its console."""
        found = re.search(rf"^\s+{demo_user}\s+(\S+)\s", self.text(), re.MULTILINE)
        assert found, self.text()
        response = client.post("/api/v1/auth/login", json={"username": demo_user, "password": found.group(1)})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def kill_and_wait_for_restart(self, name: str) -> int:
        """SIGKILL the child called ``name``; its new pid once the supervisor has started it again."""
        before = self.pids(name)
        os.kill(before[-1], signal.SIGKILL)
        wait_until(f"{name} to be restarted", lambda: len(self.pids(name)) > len(before), 30)
        assert re.search(rf"\b{name} exited with -9; restarting in [\d.]+s$", self.text(), re.MULTILINE)
        return self.pids(name)[-1]


@pytest.fixture
def dev(tmp_path: Path, database_url: str) -> Iterator[Dev]:
    d = Dev(tmp_path, database_url)
    try:
        wait_until("rongtuk dev to be ready", lambda: "Rongtuk is running" in d.text() or d.proc.poll() is not None, 90)
        assert d.proc.poll() is None, d.text()
        yield d
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        for name in ("api", "worker", "temporal", "email"):
            for pid in d.pids(name):
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


def test_dev_restarts_a_killed_worker_api_and_temporal_and_stops_on_sigterm(dev: Dev) -> None:
    api, temporal = dev.pids("api")[-1], dev.pids("temporal")[-1]
    worker = dev.kill_and_wait_for_restart("worker")
    assert alive(worker)
    assert alive(api) and alive(temporal), "the others keep running while the worker is restarted"
    api = dev.kill_and_wait_for_restart("api")
    wait_for_port(dev.api_port, timeout=60)
    assert dev.pids("worker")[-1] == worker and alive(worker) and alive(temporal)
    with httpx.Client(base_url=f"http://127.0.0.1:{dev.api_port}", timeout=60) as client:
        officer, bma = dev.sign_in(client, "demo-officer"), dev.sign_in(client, "demo-bma")
        assert lifecycle(client, officer, bma) == "closed"

        # The dev server comes back on its SQLite file; the worker and the API reconnect by themselves.
        temporal = dev.kill_and_wait_for_restart("temporal")
        wait_for_port(dev.temporal_port, timeout=30)
        assert dev.pids("worker")[-1] == worker and dev.pids("api")[-1] == api
        assert lifecycle(client, officer, bma) == "closed"

    assert stop_within(dev.proc, 3 * STOP_WITHIN) == 0
    children = [pid for name in ("api", "worker", "temporal") for pid in dev.pids(name)]
    assert not [pid for pid in children if alive(pid)], "a child outlived the supervisor"
    assert "0812345678" not in dev.text() and "สมหญิง" not in dev.text()


def test_dev_stops_promptly_on_ctrl_c_while_temporal_is_down(dev: Dev) -> None:
    """Ctrl-C while the dev server is dead and being restarted: the worker and the API are retrying."""
    os.kill(dev.pids("temporal")[-1], signal.SIGKILL)
    wait_until("the supervisor to notice", lambda: "temporal exited with -9" in dev.text(), 30)
    assert stop_within(dev.proc, 3 * STOP_WITHIN, signal.SIGINT) == 0
    children = [pid for name in ("api", "worker", "temporal", "email") for pid in dev.pids(name)]
    assert not [pid for pid in children if alive(pid)], "a child outlived the supervisor"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_worker_stops_promptly_while_temporal_is_unreachable(tmp_path: Path, database_url: str, sig: int) -> None:
    """A standalone worker that never reached Temporal (it once ignored Ctrl-C for 18 s in this state)."""
    closed = free_port()  # nothing listens here
    log = tmp_path / "worker.log"
    proc = start([sys.executable, "-m", "cli.main", "worker"], env_for(tmp_path, database_url, closed), log)
    try:
        # Still alive and retrying, not crashed: the SIGTERM below meets a worker waiting for Temporal.
        wait_until("the worker's first retry", lambda: "temporal_unreachable" in log.read_text(), 60)
        assert proc.poll() is None, log.read_text()
        assert stop_within(proc, STOP_WITHIN, sig) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(
    ("fate", "sig"),
    [("killed", signal.SIGINT), ("killed", signal.SIGTERM), ("frozen", signal.SIGTERM)],
    ids=["killed-SIGINT", "killed-SIGTERM", "frozen-SIGTERM"],
)
def test_worker_and_api_stop_promptly_when_temporal_goes(
    tmp_path: Path, database_url: str, fate: str, sig: int
) -> None:
    """Killed: connections refused. Frozen (SIGSTOP): connections open, nothing answers, the SDK's shutdown
    call hangs, so the worker's own bound is what stops it."""
    group = ProcessGroup()
    started: list[subprocess.Popen[bytes]] = []
    try:
        server, port = start_listening(
            group,
            "temporal",
            lambda p: temporal_command(db_file=None, port=p, ui_port=None),
            log=tmp_path / "temporal.log",
        )
        env = env_for(tmp_path, database_url, port)
        worker_log = tmp_path / "worker.log"
        worker = start([sys.executable, "-m", "worker"], env, worker_log)
        started.append(worker)
        api = start_api(env, tmp_path / "api.log")
        started.append(api)
        wait_until("the worker to connect", lambda: "worker_started" in worker_log.read_text(), 60)
        if fate == "killed":
            group.stop("temporal", sig=signal.SIGKILL)
        else:
            os.kill(server.pid, signal.SIGSTOP)
        time.sleep(1)  # the worker's pollers now retry against a closed port, or wait on a silent one
        assert worker.poll() is None and api.poll() is None
        assert stop_within(worker, STOP_WITHIN, sig) == 0
        stopped = [line for line in worker_log.read_text().splitlines() if '"worker_stopped"' in line]
        assert stopped and ('"clean": false' in stopped[-1]) == (fate == "frozen"), stopped
        # uvicorn re-raises the signal after its own shutdown, hence its code.
        code = stop_within(api, STOP_WITHIN, sig)
        assert code in (0, -sig), code
    finally:
        group.stop(sig=signal.SIGKILL)  # a frozen server ignores SIGTERM
        for proc in started:
            if proc.poll() is None:
                proc.kill()
