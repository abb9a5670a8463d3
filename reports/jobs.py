"""Export jobs: a long export runs in the background of the API process while its page shows progress.

A job belongs to the person who asked for it (nobody else can see or fetch it), writes to a file under
the data directory and is forgotten, with its file, an hour after it finished. Jobs live in the process
that runs them: behind several API replicas, send a user's requests to the same replica (sticky sessions)
or use the streamed download, which needs no job.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

__all__ = ["ExportJob", "ExportJobs"]

log = structlog.get_logger(__name__)


@dataclass
class ExportJob:
    """One export in progress or done."""

    id: str
    owner: str
    report: str
    fmt: str
    path: Path
    total: int
    done: int = 0
    status: str = "running"  # running | done | failed
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None

    @property
    def percent(self) -> int:
        if self.status == "done":
            return 100
        return min(99, int(100 * self.done / self.total)) if self.total else 0

    @property
    def filename(self) -> str:
        return f"rongtuk-{self.report}-{self.created_at:%Y%m%d-%H%M}.{self.fmt}"

    def progress(self, done: int) -> None:
        self.done = done


class ExportJobs:
    """The jobs of one API process."""

    def __init__(self, directory: Path, *, keep: timedelta = timedelta(hours=1)) -> None:
        self.directory = directory
        self.keep = keep
        self._jobs: dict[str, ExportJob] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def start(
        self, *, owner: str, report: str, fmt: str, total: int, produce: Callable[[ExportJob], Awaitable[None]]
    ) -> ExportJob:
        """Start ``produce(job)`` in the background; it writes ``job.path`` and reports ``job.progress``."""
        self._sweep()
        self.directory.mkdir(parents=True, exist_ok=True)
        job_id = secrets.token_urlsafe(12)
        job = ExportJob(
            id=job_id, owner=owner, report=report, fmt=fmt, path=self.directory / f"{job_id}.{fmt}", total=total
        )
        self._jobs[job_id] = job

        async def run() -> None:
            try:
                await produce(job)
                job.status = "done"
            except Exception:
                job.status = "failed"
                log.exception("report export failed", report=report, job=job_id)
                with contextlib.suppress(OSError):
                    job.path.unlink()
            finally:
                job.finished_at = datetime.now(UTC)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def get(self, job_id: str, owner: str) -> ExportJob | None:
        job = self._jobs.get(job_id)
        return job if job is not None and job.owner == owner else None

    async def wait(self) -> None:
        """Wait for the running jobs (tests, shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _sweep(self) -> None:
        limit = datetime.now(UTC) - self.keep
        for job_id, job in list(self._jobs.items()):
            if job.finished_at is not None and job.finished_at < limit:
                with contextlib.suppress(OSError):
                    job.path.unlink()
                del self._jobs[job_id]
