"""Thai working-day calendar for complaint deadlines.

A working day is Monday to Friday, except Thai public holidays and Thai government-office holidays as the
`holidays` package knows them (its ``public`` and ``government`` categories for Thailand, which include
substitution "in lieu" days and Cabinet bridge days), plus holidays added by configuration (new Cabinet
announcements, which win over the package), minus holidays removed by configuration (a cancelled holiday).

Counting follows Thai law (Civil and Commercial Code, section 193/3): a period in days does not count its
first day, so day 1 is the first working day after the date of receipt, whether the complaint came in during
or after office hours, on a working day or a day off (a Friday-evening complaint has Monday as day 1, a
Saturday one too). The section's one exception: a period that starts at the customary opening of work on a
day counts that day, so a complaint already waiting when the office opens on a working day (filed online at
02:00, say) has that very day as day 1. The opening time is 08:30 Bangkok time by default.

All times are Asia/Bangkok. Naive datetimes are rejected, because guessing their zone would silently move
deadlines by a day for anything recorded in UTC.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays

__all__ = [
    "BANGKOK",
    "CompressedCalendar",
    "DueDate",
    "SkippedDay",
    "WorkingCalendar",
    "explain",
    "load_extra_holidays",
]

BANGKOK = ZoneInfo("Asia/Bangkok")

# Public holidays are days off for everyone; "government" adds days off for government offices only
# (e.g. the Royal Ploughing Ceremony). "bank" and "workday" (observances that are not days off) are left out.
HOLIDAY_CATEGORIES: tuple[str, ...] = (holidays.PUBLIC, holidays.GOVERNMENT)

_WEEKDAY_ABBR = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WEEKEND_NAMES = {5: "Saturday", 6: "Sunday"}
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class SkippedDay:
    """A non-working day passed over while counting, with the reason it is not a working day."""

    day: date
    reason: str


@dataclass(frozen=True)
class DueDate:
    """A computed deadline and the facts needed to explain it."""

    received_at: datetime  # the receipt time, converted to Asia/Bangkok
    working_days: int  # N, the number of working days allowed
    start_day: date  # the effective day of receipt: day 1 is the first working day after it
    due_day: date  # working day N (start_day itself when N is 0)
    due_at: datetime  # end of due_day: 00:00 Asia/Bangkok of the following calendar day
    skipped: tuple[SkippedDay, ...]  # non-working days from the receipt date to due_day, in order


class WorkingCalendar:
    """Thai working days with configurable extra and removed holidays."""

    def __init__(
        self,
        *,
        extra_holidays: Mapping[date, str] | None = None,
        removed_holidays: Iterable[date] = (),
        office_open: time = time(8, 30),
    ) -> None:
        extra = dict(extra_holidays or {})
        removed = frozenset(removed_holidays)
        for d in (*extra, *removed):
            _require_date(d)
        conflicting = sorted(set(extra) & removed)
        if conflicting:
            listed = ", ".join(d.isoformat() for d in conflicting)
            raise ValueError(f"dates both added and removed as holidays: {listed}")
        for d, name in extra.items():
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"extra holiday {d.isoformat()} needs a non-empty name")
        if office_open.tzinfo is not None:
            raise ValueError("office_open must be a naive local time (it is always Asia/Bangkok)")

        self._extra = extra
        self._removed = removed
        self._office_open = office_open
        self._library = holidays.country_holidays("TH", categories=HOLIDAY_CATEGORIES, language="en_US", years=())
        # year -> {non-working date: reason}, weekends included, so counting costs one lookup per day.
        self._closed_days: dict[int, dict[date, str]] = {}
        self._closed_ordinals: dict[int, tuple[int, ...]] = {}  # the same days as sorted ordinals
        self._lock = threading.Lock()

    @property
    def office_open(self) -> time:
        """Local time before which a receipt on a working day makes that day day 1 (s.193/3's exception)."""
        return self._office_open

    def holiday_name(self, d: date) -> str | None:
        """Return the name of the holiday on ``d`` (library or configured), or None if it is not one."""
        _require_date(d)
        if d in self._extra:
            return self._extra[d]
        if d in self._removed:
            return None
        reason = self._closed_days_of(d.year).get(d)
        if reason is None or reason == _WEEKEND_NAMES.get(d.weekday()):
            return None
        return reason

    def is_working_day(self, d: date) -> bool:
        """Tell whether ``d`` is a working day: Monday to Friday and not a holiday."""
        _require_date(d)
        return d not in self._closed_days_of(d.year)

    def non_working_reason(self, d: date) -> str | None:
        """Say why ``d`` is not a working day (holiday name, else "Saturday"/"Sunday"), or None if it is."""
        _require_date(d)
        return self._closed_days_of(d.year).get(d)

    def counting_from(self, received_at: datetime) -> date:
        """Return the day counting starts from: day 1 of any deadline is the first working day after it."""
        local = _to_bangkok(received_at)
        return self._effective_receipt_day(local, None)

    def due(self, received_at: datetime, working_days: int) -> DueDate:
        """Compute the deadline ``working_days`` working days after receipt, with the days skipped."""
        if working_days < 0:
            raise ValueError(f"working_days must be >= 0, got {working_days}")
        local = _to_bangkok(received_at)
        skipped: list[SkippedDay] = []
        start = self._effective_receipt_day(local, skipped)
        day = start
        counted = 0
        while counted < working_days:
            day += _ONE_DAY
            reason = self._closed_days_of(day.year).get(day)
            if reason is None:
                counted += 1
            else:
                skipped.append(SkippedDay(day, reason))
        if working_days == 0:  # nothing to count: the end of the day it came in
            day = local.date()
        return DueDate(
            received_at=local,
            working_days=working_days,
            start_day=start,
            due_day=day,
            due_at=datetime.combine(day + _ONE_DAY, time(0), tzinfo=BANGKOK),
            skipped=tuple(skipped),
        )

    def add_working_days(self, received_at: datetime, working_days: int) -> datetime:
        """Return the moment the deadline expires: the end of working day ``working_days`` after receipt."""
        return self.due(received_at, working_days).due_at

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Count working days after ``start``'s local date up to and including ``end``'s local date."""
        start_local = _to_bangkok(start)
        end_local = _to_bangkok(end)
        if end_local <= start_local:
            return 0
        first = start_local.date().toordinal()
        last = end_local.date().toordinal()
        # The days after the first up to the last, less the non-working ones among them (counted by bisection
        # in each year's sorted list: the board computes this for every overdue row of a page).
        closed = 0
        for year in range(start_local.year, end_local.year + 1):
            ordinals = self._closed_ordinals_of(year)
            closed += bisect_right(ordinals, last) - bisect_right(ordinals, first)
        return last - first - closed

    def _effective_receipt_day(self, local: datetime, skipped: list[SkippedDay] | None) -> date:
        day = local.date()
        reason = self._closed_days_of(day.year).get(day)
        if reason is None and local.time() < self._office_open:
            # s.193/3's exception: the period starts at the opening of work, so this day is day 1.
            return day - _ONE_DAY
        if reason is not None and skipped is not None:
            skipped.append(SkippedDay(day, reason))
        return day

    def _closed_ordinals_of(self, year: int) -> tuple[int, ...]:
        ordinals = self._closed_ordinals.get(year)
        if ordinals is None:
            ordinals = tuple(sorted(d.toordinal() for d in self._closed_days_of(year)))
            self._closed_ordinals[year] = ordinals
        return ordinals

    def _closed_days_of(self, year: int) -> dict[date, str]:
        closed = self._closed_days.get(year)
        if closed is None:
            with self._lock:
                closed = self._closed_days.get(year)
                if closed is None:
                    closed = self._build_year(year)
                    self._closed_days[year] = closed
        return closed

    def _build_year(self, year: int) -> dict[date, str]:
        # Any lookup expands the library object to that year. Neighbouring years too, in case the library
        # files an in-lieu day that crosses New Year under the year of the original holiday.
        for y in (year - 1, year, year + 1):
            self._library.get(date(y, 1, 1))
        closed: dict[date, str] = {}
        day = date(year, 1, 1)
        while day.year == year:
            if day.weekday() >= 5:
                closed[day] = _WEEKEND_NAMES[day.weekday()]
            day += _ONE_DAY
        for d, name in self._library.items():
            if d.year == year and d not in self._removed:
                closed[d] = name
        for d, name in self._extra.items():
            if d.year == year:
                closed[d] = name
        return closed


class CompressedCalendar(WorkingCalendar):
    """A test-only calendar in which a working day lasts ``seconds`` and every day is one.

    The fault tests need deadlines that fall due while a worker is dead or the Temporal server restarts, and
    real ones are working days away. With this calendar a deadline of N working days is the receipt plus
    exactly N x ``seconds``, so an alarm's due time follows from the deadline recorded on the timeline. It is
    chosen by ``RONGTUK_TEST_WORKING_DAY_SECONDS``, which the settings refuse outside ``RONGTUK_ENV=test``.
    """

    def __init__(self, seconds: float, **kwargs: Any) -> None:
        if seconds <= 0:
            raise ValueError(f"a working day must last a positive number of seconds, got {seconds}")
        super().__init__(**kwargs)
        self.day = timedelta(seconds=seconds)

    def due(self, received_at: datetime, working_days: int) -> DueDate:
        if working_days < 0:
            raise ValueError(f"working_days must be >= 0, got {working_days}")
        local = _to_bangkok(received_at)
        due_at = local + working_days * self.day
        return DueDate(local, working_days, local.date(), due_at.date(), due_at, ())

    def working_days_between(self, start: datetime, end: datetime) -> int:
        if end <= start:
            return 0
        return int((_to_bangkok(end) - _to_bangkok(start)) / self.day)


def load_extra_holidays(data: Mapping[Any, Any]) -> dict[date, str]:
    """Validate configured extra holidays (``{"2026-12-07": "Cabinet bridge day"}``) into dates and names.

    Keys may be ISO date strings or ``date`` objects (YAML loads unquoted dates as ``date``).
    """
    result: dict[date, str] = {}
    for key, name in data.items():
        if isinstance(key, datetime):
            raise ValueError(f"extra holiday {key!r}: expected a date, got a date and time")
        if isinstance(key, date):
            day = key
        elif isinstance(key, str):
            try:
                day = date.fromisoformat(key.strip())
            except ValueError:
                raise ValueError(
                    f"extra holiday {key!r}: not a valid date, expected YYYY-MM-DD (e.g. 2026-12-07)"
                ) from None
        else:
            raise ValueError(f"extra holiday {key!r}: expected a YYYY-MM-DD string, got {type(key).__name__}")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"extra holiday {day.isoformat()}: needs a non-empty name, got {name!r}")
        if day in result:
            raise ValueError(f"extra holiday {day.isoformat()} is listed twice")
        result[day] = name.strip()
    return result


def explain(due: DueDate) -> list[str]:
    """Describe a deadline in readable lines: the receipt, each day skipped and why, and the due day."""
    received = due.received_at
    received_day = received.date()
    lines = [f"received: {_fmt_day(received_day)} {received:%H:%M} (Asia/Bangkok)"]
    if due.start_day != received_day:
        lines[0] += ", before the office opened: the period starts at the opening of work, so this day is day 1"
    elif due.skipped and due.skipped[0].day == received_day:
        lines[0] += ", not a working day: day 1 is the first working day after it"
    else:
        lines[0] += ", the day of receipt is not counted: day 1 is the next working day"
    lines[0] += " (Civil and Commercial Code s.193/3)"
    for skipped in due.skipped:
        reason = skipped.reason
        if reason == _WEEKEND_NAMES.get(skipped.day.weekday()):
            reason = "weekend"
        lines.append(f"{_fmt_day(skipped.day)}: {reason}")
    lines.append(f"due: end of {due.due_day.isoformat()} (working day {due.working_days})")
    return lines


def _fmt_day(d: date) -> str:
    # Fixed English abbreviations: strftime("%a") depends on the process locale.
    return f"{d.isoformat()} {_WEEKDAY_ABBR[d.weekday()]}"


def _require_date(d: date) -> None:
    # A datetime is a date subclass but never equals a date key, so it would silently look like a working day.
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"expected a date, got {type(d).__name__}")


def _to_bangkok(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()} rejected: give a time zone offset")
    return moment.astimezone(BANGKOK)
