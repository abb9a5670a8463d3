"""A real PgBouncer in transaction mode in front of the suite's PostgreSQL, for the tests of
``RONGTUK_DATABASE_POOLER`` (tests/store/test_pooler.py, tests/e2e/test_replicas.py). It hands each transaction
whichever of its ``SERVER_CONNECTIONS`` server connections is free, as a production pooler in front of many
workers and API replicas does."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from config.settings import Pooler
from tests.conftest import POOLER

# Fewer server connections than clients, so that transactions of different clients share them.
SERVER_CONNECTIONS = 2


def _pgbouncer() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if Path(p).exists()), None
    )


@contextmanager
def pgbouncer(database_url: str, here: Path) -> Iterator[str]:
    """Start PgBouncer in front of ``database_url`` (files in ``here``); its URL. Skips when the suite is not on
    PostgreSQL, is already behind a pooler, or (outside CI) PgBouncer is not installed."""
    if not database_url.startswith("postgresql") or POOLER is not Pooler.NONE:
        pytest.skip("a pooler in front of PostgreSQL: the suite is not on PostgreSQL, or already behind one")
    binary = _pgbouncer()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("pgbouncer is not installed: .ci/run installs it with apt-get")
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")
    target = make_url(database_url)
    here.mkdir(parents=True, exist_ok=True)
    here.chmod(0o777)  # PgBouncer will not run as root: as root, it runs as nobody, who must read and write here
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    user = target.username or "postgres"
    (here / "users.txt").write_text(f'"{user}" ""\n')
    (here / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{target.database} = host={target.host or '127.0.0.1'} port={target.port or 5432} "
        f"dbname={target.database} user={user}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {here / 'users.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {SERVER_CONNECTIONS}\nmax_client_conn = 500\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    for name in ("users.txt", "pgbouncer.ini"):
        (here / name).chmod(0o644)
    command = [binary, str(here / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "nobody"]
    with open(here / "pgbouncer.log", "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, (here / "pgbouncer.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "pgbouncer did not listen within 10 s"
                time.sleep(0.05)
        yield target.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
