"""The ``rongtuk`` command line: run the pieces, manage the database, check the calendar."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from cli import archive, cases
from cli.audit import app as audit_app
from cli.devserver import Supervisor, first_training, stop_training, temporal_command, wait_for_port
from cli.users import app as users_app
from cli.users import print_demo_users
from config.settings import get_settings
from processdoc import ExportFormat, export
from screening.cli import ref_app, screen_app
from sla.cli import app as sla_app

app = typer.Typer(help="Rongtuk: durable complaint handling on Temporal.", no_args_is_help=True)
db_app = typer.Typer(help="The SQL read model.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(sla_app, name="sla")
process_app = typer.Typer(help="The complaint process table.", no_args_is_help=True)
app.add_typer(process_app, name="process")
cases.register(app, db_app)
archive.register(db_app)
app.add_typer(ref_app, name="ref")
app.add_typer(screen_app, name="screen")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")


@sla_app.command("recalculate")
def sla_recalculate(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would move (computed here, nothing is changed)")
    ] = False,
    case_ids: Annotated[
        list[str] | None, typer.Option("--case", help="Only this case (repeatable); default: every running case")
    ] = None,
) -> None:
    """Move the deadlines of running cases after a calendar or policy change (restart the workers first), and
    report every date that moved."""
    from activities.sla import SlaActivities
    from cli.recalculate import recalculate_cases, report_lines
    from config.reference import category_classes
    from config.temporal import connect
    from sla.policy import load_policy

    settings = get_settings()
    sla = SlaActivities(settings.calendar(), load_policy(settings.sla_policy_file), category_classes(settings))

    async def run() -> int:
        client = await connect(settings)
        report = await recalculate_cases(client, sla, dry_run=dry_run, case_ids=case_ids)
        for line in report_lines(report, dry_run=dry_run):
            typer.echo(line)
        return 1 if report.failed else 0

    _exit_skipping_finalisation(asyncio.run(run()))


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
    upgrade(settings.database_url, pooler=settings.database_pooler)
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
    from processdoc import render_docs, to_bpmn

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

    worker_module.run()


@app.command()
def deliver(
    once: Annotated[bool, typer.Option(help="Deliver what is due now, then exit")] = False,
) -> None:
    """Drain the notifications outbox to SMS, LINE, email and the web inbox (every worker does this too)."""
    from config.heap import after_start_up
    from config.logging import configure_logging
    from delivery.dispatcher import build_dispatcher, run_dispatcher
    from store.db import open_database

    settings = get_settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)

    async def run() -> int:
        db = open_database(settings, writer=True)
        try:
            if once:
                dispatcher = build_dispatcher(settings, db)
                try:
                    return await dispatcher.drain()
                finally:
                    await dispatcher.aclose()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            after_start_up(settings)
            await run_dispatcher(settings, db, stop)
            return 0
        finally:
            await db.dispose()

    handled = asyncio.run(run())
    if once:
        typer.echo(f"handled {handled} outbox row(s)")


@app.command("email-intake")
def email_intake() -> None:
    """Receive complaints by email: the SMTP listener (RONGTUK_EMAIL_INTAKE_SMTP_PORT) and/or IMAP polling
    (RONGTUK_IMAP_HOST), as configured."""
    from config.heap import after_start_up
    from config.logging import configure_logging
    from intake_channels.email import serve

    settings = get_settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    if not settings.email_intake_smtp_port and not settings.imap_host:
        typer.echo("set RONGTUK_EMAIL_INTAKE_SMTP_PORT or RONGTUK_IMAP_HOST to receive complaints by email", err=True)
        raise typer.Exit(2)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        after_start_up(settings)
        await serve(settings, stop)

    asyncio.run(run())


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
        # With --workers, each process imports the whole app before it answers the supervisor's health check;
        # on a busy machine that takes longer than uvicorn's 5 s, and it then kills and restarts them forever.
        timeout_worker_healthcheck=60,
        log_level="warning",
        # Requests waiting on an absent Temporal must not hold up SIGINT/SIGTERM.
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
    )


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(
    ctx: typer.Context,
    quick: Annotated[bool, typer.Option(help="Smaller runs, about 2 minutes on 2 cores")] = False,
) -> None:
    """Run every benchmark (bench/), print one table and write bench/results/*.json (from a source checkout)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "bench" / "__main__.py").exists():
        typer.echo("the benchmarks run from a source checkout (bench/ is not installed)", err=True)
        raise typer.Exit(2)
    # Its own process, so the benchmarks' servers and signal handling are theirs alone.
    command = [sys.executable, "-m", "bench", *(["--quick"] if quick else []), *ctx.args]
    raise typer.Exit(subprocess.run(command, cwd=root, check=False).returncode)


@app.command()
def dev(
    temporal_port: Annotated[int, typer.Option(help="Temporal frontend port")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal Web UI port")] = 8233,
    api_port: Annotated[int, typer.Option(help="API port")] = 8000,
    email_port: Annotated[int, typer.Option(help="SMTP port of the email intake (0: none)")] = 2525,
) -> None:
    """Start the embedded set: Temporal dev server (SQLite file under data/), a worker, the API and the email
    intake's SMTP listener."""
    from store.migrate import upgrade

    settings = get_settings()
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url, pooler=settings.database_pooler)
    print_demo_users(settings.env.value)
    env = {
        "RONGTUK_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "RONGTUK_DATA_DIR": str(data),
        "RONGTUK_DATABASE_URL": settings.database_url,
    }
    supervisor = Supervisor(say=lambda line: typer.echo(line, err=True))

    def _stop(*_: object) -> None:
        supervisor.stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    trainer: subprocess.Popen[bytes] | None = None
    try:
        # A restarted dev server reopens the same SQLite file, so cases carry on where they were.
        server = supervisor.start(
            "temporal",
            temporal_command(db_file=data / "temporal.db", port=temporal_port, ui_port=ui_port),
            log=data / "temporal.log",
        )
        wait_for_port(temporal_port, proc=server, cancelled=lambda: supervisor.stopping)
        # The worker retries its connection and the API connects lazily, so neither needs a restart when
        # the dev server comes back.
        supervisor.start("worker", [sys.executable, "-m", "worker"], env=env)
        api_proc = supervisor.start("api", [sys.executable, "-m", "cli.main", "api", "--port", str(api_port)], env=env)
        if email_port:
            mail_env = env | {
                "RONGTUK_EMAIL_INTAKE_SMTP_PORT": str(email_port),
                "RONGTUK_EMAIL_INTAKE_ADDRESS": settings.email_intake_address or "complaints@rongtuk.localhost",
            }
            supervisor.start("email", [sys.executable, "-m", "cli.main", "email-intake"], env=mail_env)
        wait_for_port(api_port, proc=api_proc, cancelled=lambda: supervisor.stopping)
        trainer = first_training(settings, env)
        if not supervisor.stopping:
            typer.echo(
                "\nRongtuk is running:\n"
                f"  Consoles     http://127.0.0.1:{api_port}/login (staff, demo users above)\n"
                f"  Citizens     http://127.0.0.1:{api_port}/file  and  /track\n"
                f"  Status       http://127.0.0.1:{api_port}/status  (/readyz for probes)\n"
                f"  API docs     http://127.0.0.1:{api_port}/docs\n"
                f"  Temporal UI  http://127.0.0.1:{ui_port}\n"
                + (
                    f"  Email intake smtp://127.0.0.1:{email_port} "
                    f"(to {settings.email_intake_address or 'complaints@rongtuk.localhost'})\n"
                    if email_port
                    else ""
                )
                + f"  Data         {Path(data).resolve()} (cases survive restarts)\n"
                "A piece that dies is restarted. Press Ctrl-C to stop.\n"
            )
            if trainer is not None:
                typer.echo(
                    "Screening: training the category model on the Traffy sample in the background (a few "
                    f"minutes; {Path(data).resolve() / 'screening-training.log'}); until then suggestions come "
                    "from the categories' keywords alone.",
                    err=True,
                )
        while not supervisor.stopping:
            supervisor.check()
            if trainer is not None and (code := trainer.poll()) is not None:
                typer.echo(
                    "Screening: the trained model is saved; the API takes it up within a minute."
                    if code == 0
                    else f"Screening: training failed (exit {code}); see screening-training.log. The keywords "
                    "model stays in use.",
                    err=True,
                )
                trainer = None
            time.sleep(0.5)
    finally:
        typer.echo("stopping...", err=True)
        if trainer is not None:
            stop_training(trainer)
        supervisor.stop()


if __name__ == "__main__":
    app()
