"""The ``rongtuk`` command run as its users run it: a process of its own, on the test's dev server and database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from config.settings import Settings

BIN = Path(sys.executable).parent


def run_cli(
    dev_env: WorkflowEnvironment, settings: Settings, *args: str, **overrides: str
) -> subprocess.CompletedProcess[str]:
    """``rongtuk *args``; ``overrides``: environment variables set otherwise (``RONGTUK_TEMPORAL_ADDRESS=...``)."""
    env = {
        **os.environ,
        "RONGTUK_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "RONGTUK_DATABASE_URL": settings.database_url,
        "RONGTUK_ENV": "test",
        **overrides,
    }
    return subprocess.run(
        [str(BIN / "rongtuk"), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
