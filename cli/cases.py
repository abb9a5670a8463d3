"""Commands over cases' Temporal histories: replay them against today's code, rebuild the read model from them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from temporalio.client import Client, WorkflowHistory

from config.settings import Settings, get_settings


@dataclass
class ReplayOutcome:
    workflow_id: str
    run_id: str
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


def history_from_file(path: Path) -> WorkflowHistory:
    """A history as ``temporal workflow show --output json`` writes it, or inside an audit export bundle."""
    raw: Any = json.loads(path.read_text(encoding="utf-8"))
    workflow_id = path.stem
    if isinstance(raw, dict) and "history" in raw and "events" not in raw:
        # An audit bundle names its case; the file may have been renamed.
        workflow_id = f"complaint-{raw['case_id']}" if raw.get("case_id") else workflow_id
        raw = raw["history"]
    if not isinstance(raw, dict) or not isinstance(raw.get("events"), list) or not raw["events"]:
        raise typer.BadParameter(f"{path} holds no workflow history (expected a JSON object with 'events')")
    return WorkflowHistory.from_json(workflow_id, raw)


async def _histories_of_case(client: Client, case_id: str) -> AsyncIterator[WorkflowHistory]:
    """Every run of the case's workflow, then its agency tasks' histories."""
    from activities.rebuild import history_runs
    from workflows.models import workflow_id_for

    runs = await history_runs(client, workflow_id_for(case_id))
    children: list[str] = []
    for history in runs:
        yield history
        children += [
            e.start_child_workflow_execution_initiated_event_attributes.workflow_id
            for e in history.events
            if e.HasField("start_child_workflow_execution_initiated_event_attributes")
        ]
    for child in dict.fromkeys(children):
        yield await client.get_workflow_handle(child).fetch_history()


async def _histories_since(client: Client, since: datetime | None) -> AsyncIterator[WorkflowHistory]:
    query = "WorkflowType IN ('ComplaintWorkflow', 'AgencyTaskWorkflow')"
    if since is not None:
        query += f" AND StartTime >= '{since.isoformat()}'"
    async for execution in client.list_workflows(query):
        yield await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()


async def replay(
    histories: AsyncIterator[WorkflowHistory], settings: Settings, *, jobs: int = 1, share: int = 25
) -> list[ReplayOutcome]:
    """Replay each history with the workers' code; the first mismatch of each, if any.

    All histories go through one replay worker (``workflow_replay_iterator``), not one worker per history:
    1.3x the histories per CPU-second (bench/replay_bench.py), and fetching the next history from Temporal
    overlaps with replaying the last. With ``jobs`` > 1, ``jobs`` processes replay shares of ``share``
    histories each, one core each.
    """
    if jobs > 1:
        return await _replay_in_processes(histories, settings, jobs, share)
    from worker import build_replayer

    replayer = build_replayer(settings)
    outcomes = []
    async with replayer.workflow_replay_iterator(histories) as results:
        async for result in results:
            history = result.history
            run_id = history.events[0].workflow_execution_started_event_attributes.original_execution_run_id
            failure = result.replay_failure
            outcomes.append(
                ReplayOutcome(history.workflow_id, run_id, f"{type(failure).__name__}: {failure}" if failure else None)
            )
    return outcomes


async def _replay_in_processes(
    histories: AsyncIterator[WorkflowHistory], settings: Settings, jobs: int, share: int
) -> list[ReplayOutcome]:
    from activities.rebuild import ReplayProcesses

    processes = ReplayProcesses(settings, jobs)
    futures: list[asyncio.Future[list[tuple[str, str, str | None]]]] = []
    try:
        batch: list[WorkflowHistory] = []
        async for history in histories:
            batch.append(history)
            if len(batch) >= share:
                futures.append(asyncio.ensure_future(processes.check(batch)))
                batch = []
        if batch:
            futures.append(asyncio.ensure_future(processes.check(batch)))
        return [ReplayOutcome(*outcome) for done in await asyncio.gather(*futures) for outcome in done]
    finally:
        processes.close()


JOBS_HELP = "Replay in this many processes (default: one per core)"
REBUILD_JOBS_HELP = "Replay the histories that hold no records in this many processes (default: one per core)"


def register(app: typer.Typer, db_app: typer.Typer) -> None:
    """Add ``rongtuk replay`` and ``rongtuk db rebuild`` to the CLI."""

    @app.command("replay")
    def replay_command(
        case_id: Annotated[str | None, typer.Argument(help="A case number, e.g. RT-20261201-ABC123")] = None,
        history_file: Annotated[Path | None, typer.Option(help="A JSON history (temporal workflow show)")] = None,
        all_cases: Annotated[bool, typer.Option("--all", help="Every case Temporal still holds")] = False,
        since: Annotated[datetime | None, typer.Option(help="With --all: cases started since")] = None,
        jobs: Annotated[int | None, typer.Option(help=JOBS_HELP, min=1)] = None,
    ) -> None:
        """Replay case histories against this code: deterministic, or the first mismatch (exit 1 if any)."""
        if [case_id is not None, history_file is not None, all_cases].count(True) != 1:
            raise typer.BadParameter("give exactly one of CASE_ID, --history-file or --all")
        settings = get_settings()

        async def run() -> list[ReplayOutcome]:
            if history_file is not None:
                history = history_from_file(history_file)

                async def one() -> AsyncIterator[WorkflowHistory]:
                    yield history

                return await replay(one(), settings)
            from config.temporal import connect

            client = await connect(settings)
            from activities.rebuild import default_jobs

            source = _histories_of_case(client, case_id) if case_id else _histories_since(client, since)
            # One case's few histories replay faster in this process than processes start.
            return await replay(source, settings, jobs=1 if case_id else jobs or default_jobs())

        outcomes = asyncio.run(run())
        for o in outcomes:
            status = "deterministic" if o.ok else f"MISMATCH {o.error}"
            typer.echo(f"{o.workflow_id} {o.run_id}: {status}")
        bad = sum(not o.ok for o in outcomes)
        typer.echo(f"{len(outcomes)} history(ies) replayed, {bad} mismatch(es)", err=True)
        if not outcomes:
            typer.echo("nothing to replay", err=True)
        _exit(1 if bad or not outcomes else 0)

    @db_app.command("rebuild")
    def rebuild_command(
        case_id: Annotated[str | None, typer.Option("--case", help="Only this case")] = None,
        since: Annotated[datetime | None, typer.Option(help="Only cases started since")] = None,
        jobs: Annotated[int | None, typer.Option(help=REBUILD_JOBS_HELP, min=1)] = None,
        batch: Annotated[int, typer.Option(help="Cases written per transaction", min=1)] = 50,
    ) -> None:
        """Rebuild the read model (cases, tasks, timeline, outbox) from Temporal; safe while the system runs."""
        from activities.rebuild import HistoryReader, ReplayProcesses, default_jobs, rebuild
        from config.temporal import connect
        from store.db import open_database
        from worker import WORKFLOWS

        settings = get_settings()

        async def run() -> int:
            client = await connect(settings)
            db = open_database(settings, writer=True)
            workers = 1 if case_id else jobs or default_jobs()
            processes = ReplayProcesses(settings, workers) if workers > 1 else None
            try:
                report = await rebuild(
                    reader=HistoryReader(client, WORKFLOWS),
                    db=db,
                    case_id=case_id,
                    since=since,
                    progress=lambda found, n: typer.echo(f"{found}: {n} transition(s)"),
                    processes=processes,
                    batch_size=batch,
                )
            finally:
                if processes is not None:
                    processes.close()
                await db.dispose()
            typer.echo(f"rebuilt {report.cases} case(s), {report.transitions} transition(s)", err=True)
            for failed in report.failed:
                typer.echo(f"FAILED {failed}", err=True)
            return 1 if report.failed else 0

        _exit(asyncio.run(run()))


def _exit(code: int) -> None:
    from cli.main import _exit_skipping_finalisation

    _exit_skipping_finalisation(code)
