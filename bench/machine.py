"""What a benchmark's figures were measured on: one description shared by every bench script."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import datetime
from pathlib import Path
from typing import Any


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, memory, platform and Python of this machine."""
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
