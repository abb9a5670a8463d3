"""Reporting periods: the month, quarter or year a timestamp falls in, in Bangkok time, as SQL and as labels.

The read model stores UTC. Thailand keeps no daylight saving, but the conversion is spelled per dialect
anyway (``AT TIME ZONE`` on PostgreSQL, a ``+7 hours`` modifier on SQLite, which stores naive UTC text), so
a case filed at 23:30 UTC on 31 March counts in April, as the centre that received it sees it.
Labels are Thai Buddhist-era in Thai ("ไตรมาส 1/2569") and Gregorian in English ("Q1 2026").
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from delivery.templates import THAI_MONTHS
from sla.calendar import BANGKOK

__all__ = ["BE_OFFSET", "Grain", "bounds_utc", "local_day", "local_minutes", "period_label", "period_of", "period_sql"]

BE_OFFSET = 543  # Buddhist era = Gregorian + 543
EPOCH = date(1970, 1, 1)
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Grain(StrEnum):
    """How long a reporting period is. The Thai government's fiscal year runs from 1 October: fiscal year
    2026 (ปีงบประมาณ 2569) is October 2025 to September 2026."""

    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"
    FISCAL_YEAR = "fiscal_year"


# --- SQL ------------------------------------------------------------------------------------------------------


class _Period(FunctionElement[str]):
    """The period key of a UTC timestamp column in Bangkok time: '2026-03', '2026-Q1' or '2026'."""

    type = String()
    inherit_cache = True
    grain: Grain


# One class per grain, so that SQLAlchemy's statement cache (keyed by class) never mixes them up.
class _Month(_Period):
    grain = Grain.MONTH
    name = "period_month"
    inherit_cache = True


class _Quarter(_Period):
    grain = Grain.QUARTER
    name = "period_quarter"
    inherit_cache = True


class _Year(_Period):
    grain = Grain.YEAR
    name = "period_year"
    inherit_cache = True


class _FiscalYear(_Period):
    grain = Grain.FISCAL_YEAR
    name = "period_fiscal_year"
    inherit_cache = True


_PERIODS: dict[Grain, type[_Period]] = {
    Grain.MONTH: _Month,
    Grain.QUARTER: _Quarter,
    Grain.YEAR: _Year,
    Grain.FISCAL_YEAR: _FiscalYear,
}


def period_sql(column: Any, grain: Grain) -> _Period:
    """SQL for the period key of ``column`` (a UTC timestamp) in Bangkok time."""
    return _PERIODS[grain](column)


class local_day(FunctionElement[int]):
    """The Bangkok calendar day of a UTC timestamp, as days since 1970-01-01 (an integer on both dialects)."""

    type = Integer()
    inherit_cache = True
    name = "local_day"


class local_minutes(FunctionElement[int]):
    """Minutes after Bangkok midnight of a UTC timestamp (for s.193/3's opening-of-work rule)."""

    type = Integer()
    inherit_cache = True
    name = "local_minutes"


def _arg(compiler: SQLCompiler, element: FunctionElement[Any], **kw: Any) -> str:
    return compiler.process(next(iter(element.clauses)), **kw)


@compiles(_Period)
def _period_sqlite(element: _Period, compiler: SQLCompiler, **kw: Any) -> str:
    col = _arg(compiler, element, **kw)
    if element.grain is Grain.MONTH:
        return f"strftime('%Y-%m', {col}, '+7 hours')"
    if element.grain is Grain.YEAR:
        return f"strftime('%Y', {col}, '+7 hours')"
    if element.grain is Grain.FISCAL_YEAR:
        return f"('FY' || strftime('%Y', {col}, '+7 hours', '+3 months'))"
    return (
        f"(strftime('%Y', {col}, '+7 hours') || '-Q' || ((CAST(strftime('%m', {col}, '+7 hours') AS INTEGER) + 2) / 3))"
    )


@compiles(_Period, "postgresql")
def _period_pg(element: _Period, compiler: SQLCompiler, **kw: Any) -> str:
    local = f"({_arg(compiler, element, **kw)} AT TIME ZONE 'Asia/Bangkok')"
    if element.grain is Grain.FISCAL_YEAR:
        return f"to_char({local} + INTERVAL '3 months', '\"FY\"YYYY')"
    fmt = {Grain.MONTH: "YYYY-MM", Grain.YEAR: "YYYY", Grain.QUARTER: 'YYYY-"Q"Q'}[element.grain]
    return f"to_char({local}, '{fmt}')"


@compiles(local_day)
def _day_sqlite(element: local_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(julianday({_arg(compiler, element, **kw)}, '+7 hours') - 2440587.5 AS INTEGER)"


@compiles(local_day, "postgresql")
def _day_pg(element: local_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(CAST(({_arg(compiler, element, **kw)} AT TIME ZONE 'Asia/Bangkok') AS DATE) - DATE '1970-01-01')"


@compiles(local_minutes)
def _minutes_sqlite(element: local_minutes, compiler: SQLCompiler, **kw: Any) -> str:
    col = _arg(compiler, element, **kw)
    hours = f"CAST(strftime('%H', {col}, '+7 hours') AS INTEGER)"
    return f"({hours} * 60 + CAST(strftime('%M', {col}, '+7 hours') AS INTEGER))"


@compiles(local_minutes, "postgresql")
def _minutes_pg(element: local_minutes, compiler: SQLCompiler, **kw: Any) -> str:
    local = f"({_arg(compiler, element, **kw)} AT TIME ZONE 'Asia/Bangkok')"
    return f"CAST(EXTRACT(HOUR FROM {local}) * 60 + EXTRACT(MINUTE FROM {local}) AS INTEGER)"


# --- Python side ------------------------------------------------------------------------------------------------


def day_of(epoch_day: int) -> date:
    """The date of a :class:`local_day` value."""
    return EPOCH + timedelta(days=int(epoch_day))


def period_of(day: date, grain: Grain) -> str:
    """The period key of a Bangkok calendar day, as :class:`period_sql` writes it."""
    if grain is Grain.MONTH:
        return f"{day.year:04d}-{day.month:02d}"
    if grain is Grain.YEAR:
        return f"{day.year:04d}"
    if grain is Grain.FISCAL_YEAR:
        return f"FY{day.year + (day.month >= 10):04d}"
    return f"{day.year:04d}-Q{(day.month + 2) // 3}"


def period_label(key: str, lang: str) -> str:
    """A period key for people: Buddhist era in Thai, Gregorian in English."""
    if key.startswith("FY"):
        year = int(key[2:])
        return f"ปีงบประมาณ {year + BE_OFFSET}" if lang == "th" else f"FY {year}"
    year = int(key[:4])
    rest = key[5:]
    if lang == "th":
        be = year + BE_OFFSET
        if not rest:
            return f"พ.ศ. {be}"
        if rest.startswith("Q"):
            return f"ไตรมาส {rest[1:]}/{be}"
        return f"{THAI_MONTHS[int(rest) - 1]} {be}"
    if not rest:
        return str(year)
    if rest.startswith("Q"):
        return f"{rest} {year}"
    return f"{_EN_MONTHS[int(rest) - 1]} {year}"


def bounds_utc(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    """UTC instants for Bangkok days ``since`` (from its start) to ``until`` (through its end)."""
    start = datetime.combine(since, time(0), tzinfo=BANGKOK).astimezone(UTC) if since else None
    end = datetime.combine(until + timedelta(days=1), time(0), tzinfo=BANGKOK).astimezone(UTC) if until else None
    return start, end
