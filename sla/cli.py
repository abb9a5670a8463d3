"""Command-line tools for deadlines on the Thai working-day calendar (mounted as ``rongtuk sla``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import typer

from sla.calendar import BANGKOK, WorkingCalendar, explain, load_extra_holidays

app = typer.Typer(help="SLA and working-day calendar tools", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """SLA and working-day calendar tools."""
    # A callback keeps `due` a named subcommand; without one Typer collapses a single-command app.


def parse_received(value: str) -> datetime:
    """Parse an ISO 8601 receipt time; a value without an offset is taken as Asia/Bangkok."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 date-time, e.g. 2026-04-10T10:00+07:00") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=BANGKOK)
    return parsed


def parse_extra_holidays(values: list[str]) -> dict[date, str]:
    """Turn ``DATE=NAME`` option values into validated extra holidays."""
    raw: dict[str, str] = {}
    for value in values:
        day, sep, name = value.partition("=")
        if not sep or not day.strip() or not name.strip():
            raise typer.BadParameter(
                f"{value!r} must look like DATE=NAME, e.g. 2026-04-20=Cabinet-day",
                param_hint="'--extra-holiday'",
            )
        raw[day.strip()] = name
    try:
        return load_extra_holidays(raw)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--extra-holiday'") from None


@app.command()
def due(
    received: Annotated[
        datetime,
        typer.Option(
            "--received",
            parser=parse_received,
            help="When the complaint was received, ISO 8601 (no offset means Asia/Bangkok).",
            show_default=False,
        ),
    ],
    working_days: Annotated[int, typer.Option("--working-days", min=0, help="Number of working days allowed.")],
    show_explanation: Annotated[bool, typer.Option("--explain", help="Also list the days skipped and why.")] = False,
    extra_holiday: Annotated[
        list[str] | None,
        typer.Option(
            "--extra-holiday",
            help="An extra holiday as DATE=NAME (e.g. a Cabinet bridge day); repeatable.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print when a deadline of N working days from receipt expires (Asia/Bangkok, ISO 8601)."""
    calendar = WorkingCalendar(extra_holidays=parse_extra_holidays(extra_holiday or []))
    result = calendar.due(received, working_days)
    typer.echo(result.due_at.isoformat())
    if show_explanation:
        for line in explain(result):
            typer.echo(line)
