"""The ``rongtuk`` command line: run the pieces, manage the database, check the calendar."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from cli.devserver import ProcessGroup, temporal_command, wait_for_port
from config.settings import get_settings
from screening.cli import ref_app, screen_app
from sla.cli import app as sla_app
from workflows.export import ExportFormat, export

app = typer.Typer(help="Rongtuk: durable complaint handling on Temporal.", no_args_is_help=True)
db_app = typer.Typer(help="The SQL read model.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(sla_app, name="sla")
process_app = typer.Typer(help="The complaint process table.", no_args_is_help=True)
app.add_typer(process_app, name="process")
app.add_typer(ref_app, name="ref")
app.add_typer(screen_app, name="screen")


@sla_app.command("recalculate")
def sla_recalculate() -> None:
    """Move the deadlines of every running case after a calendar or policy change (restart workers first)."""
    from config.temporal import connect
    from workflows.complaint import ComplaintWorkflow

    async def run() -> int:
        client = await connect(get_settings())
        count = 0
        query = "WorkflowType = 'ComplaintWorkflow' AND ExecutionStatus = 'Running'"
        async for execution in client.list_workflows(query):
            await client.get_workflow_handle(execution.id).signal(ComplaintWorkflow.recalculate)
            count += 1
        return count

    typer.echo(f"asked {asyncio.run(run())} running case(s) to recalculate their deadlines")
    _exit_skipping_finalisation(0)


def _exit_skipping_finalisation(code: int) -> None:
    """End a short-lived Temporal client process without interpreter teardown: the SDK's Rust threads can
    abort it with "PyGILState_Release" during finalisation (temporalio/sdk-python#300, still open)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to the configured database."""
    from store.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url)
    typer.echo("database is up to date")


@process_app.command("export")
def process_export(
    fmt: Annotated[ExportFormat, typer.Option("--format", help="What to render the table as")] = ExportFormat.JSON,
    output: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout")] = None,
) -> None:
    """Print the process table as BPMN 2.0 XML, a Mermaid state diagram or JSON."""
    text = export(fmt)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


@process_app.command("docs")
def process_docs(
    check: Annotated[bool, typer.Option(help="Only check that the docs match the table (exit 1 if not)")] = False,
) -> None:
    """Regenerate docs/process.md (diagram and tables) and docs/process.bpmn from the table."""
    from workflows.export import render_docs, to_bpmn

    docs = Path(__file__).resolve().parent.parent / "docs"
    wanted = {
        docs / "process.md": render_docs((docs / "process.md").read_text(encoding="utf-8")),
        docs / "process.bpmn": to_bpmn(),
    }
    stale = [path.name for path, text in wanted.items() if path.read_text(encoding="utf-8") != text]
    if check:
        if stale:
            typer.echo(f"out of date: {', '.join(stale)}; run `rongtuk process docs`", err=True)
            raise typer.Exit(1)
        typer.echo("docs match the process table")
        return
    for path, text in wanted.items():
        path.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {', '.join(p.name for p in wanted)}")


@app.command()
def worker() -> None:
    """Run a worker (connects to RONGTUK_TEMPORAL_ADDRESS; run as many as you like)."""
    import worker as worker_module

    asyncio.run(worker_module.main())


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    workers: Annotated[int, typer.Option(help="Uvicorn worker processes")] = 1,
) -> None:
    """Serve the HTTP API (and console)."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        log_level="warning",
    )


@app.command()
def dev(
    temporal_port: Annotated[int, typer.Option(help="Temporal frontend port")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal Web UI port")] = 8233,
    api_port: Annotated[int, typer.Option(help="API port")] = 8000,
) -> None:
    """Start the embedded set: Temporal dev server (SQLite file under data/), a worker and the API."""
    from store.migrate import upgrade

    settings = get_settings()
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    env = {
        "RONGTUK_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "RONGTUK_DATA_DIR": str(data),
        "RONGTUK_DATABASE_URL": settings.database_url,
    }
    group = ProcessGroup()
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        server = group.start(
            "temporal",
            temporal_command(db_file=data / "temporal.db", port=temporal_port, ui_port=ui_port),
            log=data / "temporal.log",
        )
        wait_for_port(temporal_port, proc=server)
        group.start("worker", [sys.executable, "-m", "worker"], env=env)
        api_proc = group.start("api", [sys.executable, "-m", "cli.main", "api", "--port", str(api_port)], env=env)
        wait_for_port(api_port, proc=api_proc)
        typer.echo(
            "\nRongtuk is running:\n"
            f"  API docs     http://127.0.0.1:{api_port}/docs\n"
            f"  Temporal UI  http://127.0.0.1:{ui_port}\n"
            f"  Data         {Path(data).resolve()} (cases survive restarts)\n"
            "Press Ctrl-C to stop.\n"
        )
        while not stopping:
            for name, proc in group.procs:
                if proc.poll() is not None:
                    typer.echo(f"{name} exited with {proc.returncode}; stopping", err=True)
                    stopping = True
            time.sleep(0.5)
    finally:
        typer.echo("stopping...")
        group.stop()


if __name__ == "__main__":
    app()
