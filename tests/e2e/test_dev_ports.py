"""Servers the tests and benchmarks start on a free port: when another process binds that port first, the server
is started again on another one instead of the caller waiting for a listener that never comes.

The race is made certain here: the first port handed out is already bound and listening by this process.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.devserver import PortLost, ProcessGroup, free_port, listens, start_listening, temporal_command, wait_for_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def taken() -> Iterator[int]:
    """A port another process has bound and listens on (here: this test's own socket)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_the_temporal_dev_server_moves_to_another_port_when_its_own_is_taken(tmp_path: Path, taken: int) -> None:
    ports = iter([taken])
    group = ProcessGroup()
    try:
        proc, port = start_listening(
            group,
            "temporal",
            lambda p: temporal_command(db_file=None, port=p, ui_port=None),
            log=tmp_path / "temporal.log",
            pick_port=lambda: next(ports, None) or free_port(),
        )
        assert port != taken
        assert proc.poll() is None and listens(proc.pid, port)
        # The first server did fail on the taken port (and is gone from the group): this was a retry.
        assert "address already in use" in (tmp_path / "temporal.log").read_text().lower()
        assert [name for name, _ in group.procs] == ["temporal"]
    finally:
        group.stop()


def test_a_listener_that_is_not_the_server_does_not_count(tmp_path: Path, taken: int) -> None:
    """``wait_for_port`` with the process: the port answers (the other listener) yet the server never listened."""
    group = ProcessGroup()
    try:
        # Python's http.server exits at once with "Address already in use".
        proc = group.start("http", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(taken)])
        with pytest.raises(PortLost):
            wait_for_port(taken, proc=proc, timeout=30)
        assert not listens(proc.pid, taken)
    finally:
        group.stop()


def test_start_listening_gives_up_after_its_attempts(tmp_path: Path, taken: int) -> None:
    group = ProcessGroup()
    with pytest.raises(PortLost):
        start_listening(
            group,
            "http",
            lambda p: [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(p)],
            attempts=2,
            pick_port=lambda: taken,
        )
    assert group.procs == []
