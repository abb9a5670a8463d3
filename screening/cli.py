"""``rongtuk ref check``, ``rongtuk screen --json`` and ``rongtuk screen retrain`` (added to cli/main.py)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from config.settings import Settings, get_settings

ref_app = typer.Typer(help="Reference data: categories, the agency directory, regions.", no_args_is_help=True)
screen_app = typer.Typer(help="Screen complaints: completeness, category, agencies, duplicates.")


@ref_app.command("check")
def ref_check() -> None:
    """Check categories.yaml, agencies.yaml, regions.yaml and centres.yaml together; list every problem (exit 1
    if any)."""
    from config.centres import check_centres
    from config.reference import check_reference

    settings = get_settings()
    data, problems = check_reference(
        categories_file=settings.categories_file,
        agencies_file=settings.agencies_file,
        regions_file=settings.regions_file,
    )
    centres, centre_problems = check_centres(settings.centres_file)
    problems += centre_problems
    if centres is not None and data is not None:
        problems += [
            f"centres.yaml: centre {c.code}: unknown agency {c.agency}"
            for c in centres.by_code.values()
            if c.agency is not None and c.agency not in data.agencies
        ]
    for problem in problems:
        typer.echo(problem)
    if problems or data is None:
        typer.echo(f"{len(problems)} problem(s) found", err=True)
        raise typer.Exit(1)
    kinds: dict[str, int] = {}
    for agency in data.agencies.values():
        kinds[agency.kind.value] = kinds.get(agency.kind.value, 0) + 1
    typer.echo(
        f"ok: {len(data.groups)} groups, {len(data.categories)} categories, {len(data.agencies)} agencies "
        f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}), regions for {len(data.region6)} provinces, "
        f"{len(centres.by_code) if centres else 0} receiving centres"
    )


def _records(text: str) -> list[Any]:
    """One JSON document, or JSON lines."""
    text = text.strip()
    if not text:
        return []
    try:
        return [json.loads(text)]
    except json.JSONDecodeError:
        out: list[Any] = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append(None)
        return out


def _read(settings: Settings, query: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run one read against the configured database, opened and closed for it."""
    from store.db import open_database

    async def run() -> Any:
        db = open_database(settings)
        try:
            async with db.sessions() as session:
                return await query(session)
        finally:
            await db.dispose()

    return asyncio.run(run())


def _database_configured(settings: Settings) -> bool:
    """A database was named, or the default SQLite file exists (a fresh checkout has none: no duplicates)."""
    return "RONGTUK_DATABASE_URL" in os.environ or not settings.is_sqlite or (settings.data_dir / "rongtuk.db").exists()


@screen_app.callback(invoke_without_command=True)
def screen(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="Read JSON (or JSON lines) on stdin, print JSON lines")
    ] = False,
    duplicates: Annotated[bool, typer.Option(help="Look for duplicates in the configured database")] = True,
) -> None:
    """Screen complaints read from standard input; works without the server."""
    if ctx.invoked_subcommand is not None:
        return
    if not as_json:
        typer.echo(ctx.get_help())
        raise typer.Exit(2)
    from config.logging import configure_logging
    from screening.completeness import Facts
    from screening.service import Screener

    settings = get_settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)  # to stderr: stdout is the JSON
    screener = Screener.from_settings(settings)
    if screener.model_source == "keywords":
        typer.echo("no trained model (rongtuk screen retrain): suggesting from the categories' keywords", err=True)
    index = None
    if duplicates and _database_configured(settings):
        try:
            from screening.duplicates import load_index

            now, window = datetime.now(UTC), settings.duplicate_window_days
            index = _read(settings, lambda session: load_index(session, now=now, window_days=window))
        except Exception as exc:
            typer.echo(f"duplicates skipped: the database could not be read ({type(exc).__name__})", err=True)
    failures = 0
    for record in _records(sys.stdin.read()):
        if not isinstance(record, dict):
            failures += 1
            typer.echo(
                json.dumps(
                    {
                        "error": "each input must be a JSON object (a complaint)",
                        "error_th": "ข้อมูลแต่ละรายการต้องเป็นออบเจกต์ JSON ของเรื่องร้องทุกข์",
                    },
                    ensure_ascii=False,
                )
            )
            continue
        result = screener.screen(Facts.from_json(record), index=index)
        typer.echo(json.dumps(result, ensure_ascii=False))
    if failures:
        raise typer.Exit(1)


@screen_app.command("retrain")
def screen_retrain(
    traffy_limit: Annotated[int | None, typer.Option(help="Use at most this many Traffy rows")] = None,
) -> None:
    """Retrain from officers' decisions (read model) and the Traffy sample; report held-out accuracy."""
    from config.logging import configure_logging
    from screening.examples import decided_examples
    from screening.service import model_path, reference_from_settings
    from screening.training import gather, retrain

    settings = get_settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    reference = reference_from_settings(settings)

    try:
        decided = _read(settings, decided_examples) if _database_configured(settings) else []
    except Exception as exc:
        typer.echo(f"officers' decisions skipped: the database could not be read ({type(exc).__name__})", err=True)
        decided = []
    examples, missing = gather(reference, traffy_csv=settings.traffy_csv, decided=decided, traffy_limit=traffy_limit)
    if missing:
        typer.echo(missing, err=True)
    if not examples:
        typer.echo("nothing to learn from: no decisions in the database and no Traffy sample", err=True)
        raise typer.Exit(1)
    model, report = retrain(reference, examples=examples, traffy_missing=missing)
    path = model_path(settings)
    model.save(path)
    acc = report.held_out
    typer.echo(f"trained on {report.sources} in {report.seconds:.0f} s; saved to {path}")
    typer.echo(
        f"held-out: {acc.examples} complaints, category top-1 {acc.category_top1:.1%}, top-3 {acc.category_top3:.1%}"
    )
    typer.echo(
        f"held-out: {acc.organisation_examples} with an organisation, top-1 {acc.organisation_top1:.1%}, "
        f"top-3 {acc.organisation_top3:.1%}"
    )
