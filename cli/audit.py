"""``rongtuk audit``: check the case event log's hash chain, export a case's evidence bundle."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from config.settings import get_settings
from store import audit
from store.audit import ChainReport
from store.db import open_database

app = typer.Typer(help="Audit tools: the event log's hash chain and evidence bundles.", no_args_is_help=True)


async def _verify(case_id: str | None, *, history: bool) -> list[ChainReport]:
    """Each case's chain, and with ``history`` its rows against Temporal's history: one read of its rows for
    both."""
    from api.history import check_against_history, fetch_runs
    from config.temporal import connect

    settings = get_settings()
    db = open_database(settings)
    try:
        async with db.sessions() as session:
            client = await connect(settings) if history else None
            reports = []
            for i in [case_id] if case_id else await audit.all_case_ids(session):
                rows = await audit.case_events(session, case_id=i)
                report = audit.chain_report(i, rows)
                if client is not None and report.ok:
                    runs = await fetch_runs(client, case_id=i)
                    report = await check_against_history(report, rows, runs, client.data_converter)
                reports.append(report)
            return reports
    finally:
        await db.dispose()


@app.command("verify")
def verify(
    case_id: Annotated[str | None, typer.Argument(help="The case to check")] = None,
    all_cases: Annotated[bool, typer.Option("--all", help="Check every case")] = False,
    history: Annotated[
        bool,
        typer.Option(
            "--history", help="Also check every row, field by field, against what the Temporal history records"
        ),
    ] = False,
) -> None:
    """Recompute the hash chain of a case (or --all); exit 1 naming the first bad row of each broken case."""
    if (case_id is None) == (not all_cases):
        typer.echo("name one CASE_ID or pass --all", err=True)
        raise typer.Exit(2)
    reports = asyncio.run(_verify(None if all_cases else case_id, history=history))
    bad = [r for r in reports if not r.ok]
    for r in bad:
        where = f"row seq {r.bad_seq}: " if r.bad_seq is not None else ""
        typer.echo(f"FAILED {r.case_id}: {where}{r.problem}")
    typer.echo(f"{len(reports) - len(bad)} of {len(reports)} case(s) verified")
    if history:
        from cli.main import _exit_skipping_finalisation

        _exit_skipping_finalisation(1 if bad else 0)
    if bad:
        raise typer.Exit(1)


def _row(event: Any) -> dict[str, Any]:
    row = audit.chain_row(event)
    row["at"] = event.at.isoformat()
    return row | {"prev_hash": event.prev_hash, "hash": event.hash}


async def _export(case_id: str) -> dict[str, Any]:
    from api.history import entries_of_runs, fetch_runs
    from config.temporal import connect

    settings = get_settings()
    db = open_database(settings)
    try:
        async with db.sessions() as session:
            events = await audit.case_events(session, case_id=case_id)
            report = audit.check_chain(case_id, events) if events else ChainReport(case_id, 0, None, "no event rows")
    finally:
        await db.dispose()
    client = await connect(settings)
    runs = await fetch_runs(client, case_id=case_id)
    history = runs[-1]
    entries = await entries_of_runs(runs, client.data_converter)
    return {
        "case_id": case_id,
        "exported_at": datetime.now(UTC).isoformat(),
        # As `temporal workflow show --output json` writes it; payloads stay encrypted (replay needs none).
        "history": history.to_json_dict(),
        # A case that continued as new: its earlier runs, oldest first (each replays on its own).
        "earlier_runs": [run.to_json_dict() for run in runs[:-1]],
        "timeline": [
            {"event_id": e.event_id, "at": e.at.isoformat(), "kind": e.kind, "detail": e.detail, "state": e.state}
            for e in entries
        ],
        "chain": {
            "ok": report.ok,
            "bad_seq": report.bad_seq,
            "problem": report.problem,
            "rows": [_row(e) for e in events],
        },
    }


@app.command("export")
def export(
    case_id: str,
    output: Annotated[
        Path | None, typer.Option(help="Write the bundle here (default: complaint-<CASE_ID>.json, the workflow id)")
    ] = None,
) -> None:
    """Write a self-contained bundle of a case: Temporal history JSON, decoded timeline and the hash chain."""
    from cli.main import _exit_skipping_finalisation
    from workflows.complaint import workflow_id_for

    bundle = asyncio.run(_export(case_id))
    # Named after the workflow id: `rongtuk replay --history-file` takes the id from the file name.
    target = output or Path(f"{workflow_id_for(case_id)}.json")
    target.write_text(json.dumps(bundle, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    typer.echo(
        f"wrote {target} ({len(bundle['history'].get('events', []))} history events, chain ok: {bundle['chain']['ok']})"
    )
    _exit_skipping_finalisation(0)
