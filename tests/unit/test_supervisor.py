"""The dev supervisor's restart policy, on real short-lived child processes (no Temporal)."""

from __future__ import annotations

import sys
import time

from cli.devserver import Supervisor


def run_checks(supervisor: Supervisor, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        supervisor.check()
        time.sleep(0.01)


def test_a_dying_child_is_restarted_with_doubling_backoff_and_the_others_keep_running() -> None:
    said: list[str] = []
    supervisor = Supervisor(say=said.append, min_backoff=0.05, max_backoff=0.2, stable_after=60)
    steady = supervisor.start("steady", [sys.executable, "-c", "import time; time.sleep(60)"])
    supervisor.start("flaky", [sys.executable, "-c", "raise SystemExit(3)"])
    try:
        run_checks(supervisor, 3.0)
        exits = [line for line in said if line.startswith("flaky exited")]
        assert exits[:3] == [
            "flaky exited with 3; restarting in 0.05s",
            "flaky exited with 3; restarting in 0.1s",
            "flaky exited with 3; restarting in 0.2s",
        ]
        assert set(exits[3:]) <= {"flaky exited with 3; restarting in 0.2s"}
        assert steady.poll() is None
        assert [line for line in said if line.startswith("steady")] == [f"steady started (pid {steady.pid})"]
    finally:
        supervisor.stop()
    assert steady.poll() is not None


def test_backoff_starts_over_after_a_stable_run() -> None:
    said: list[str] = []
    supervisor = Supervisor(say=said.append, min_backoff=0.05, max_backoff=1.0, stable_after=0.0)
    supervisor.start("flaky", [sys.executable, "-c", "raise SystemExit(1)"])
    try:
        run_checks(supervisor, 2.0)
    finally:
        supervisor.stop()
    exits = [line for line in said if "exited" in line]
    assert len(exits) >= 2
    assert set(exits) == {"flaky exited with 1; restarting in 0.05s"}


def test_nothing_is_restarted_once_stopping() -> None:
    said: list[str] = []
    supervisor = Supervisor(say=said.append, min_backoff=0.0)
    child = supervisor.start("once", [sys.executable, "-c", "pass"])
    child.wait(30)
    supervisor.stop()
    supervisor.check()
    assert said == [f"once started (pid {child.pid})"]
