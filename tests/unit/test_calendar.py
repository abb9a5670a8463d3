"""Tests for the Thai working-day calendar and the `sla due` command.

Every expected date below was counted by hand on a 2025-2027 wall calendar, never computed with the code
under test.
Weekday anchors used: 2025-04-13 is a Sunday, 2026-01-01 a Thursday, 2026-03-09 a Monday, 2026-04-10 a Friday,
2026-12-05 a Saturday, 2027-01-01 a Friday.
"""

from __future__ import annotations

import base64
import os
from datetime import UTC, date, datetime, time, timedelta

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from config.settings import Settings
from sla.calendar import (
    BANGKOK,
    CompressedCalendar,
    DueDate,
    SkippedDay,
    WorkingCalendar,
    explain,
    load_extra_holidays,
)
from sla.cli import app


def bkk(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BANGKOK)


def end_of(year: int, month: int, day: int) -> datetime:
    """Midnight Bangkok starting the day after the given one, i.e. the end of that day."""
    return datetime(year, month, day, tzinfo=BANGKOK) + timedelta(days=1)


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    return WorkingCalendar()


# --- weekends ---------------------------------------------------------------------------------------------


def test_weekend_days_are_not_working_days(cal: WorkingCalendar) -> None:
    assert not cal.is_working_day(date(2026, 3, 14))  # Saturday
    assert not cal.is_working_day(date(2026, 3, 15))  # Sunday
    assert cal.is_working_day(date(2026, 3, 16))  # Monday
    assert cal.non_working_reason(date(2026, 3, 14)) == "Saturday"
    assert cal.non_working_reason(date(2026, 3, 15)) == "Sunday"
    assert cal.non_working_reason(date(2026, 3, 16)) is None
    assert cal.holiday_name(date(2026, 3, 14)) is None


def test_plain_week_skips_the_weekend(cal: WorkingCalendar) -> None:
    # Received Mon 9 Mar 2026 10:00. Day 1 Tue 10, 2 Wed 11, 3 Thu 12, 4 Fri 13, (Sat 14, Sun 15), 5 Mon 16.
    result = cal.due(bkk(2026, 3, 9), 5)
    assert result.start_day == date(2026, 3, 9)
    assert result.due_day == date(2026, 3, 16)
    assert result.due_at == datetime(2026, 3, 17, 0, 0, tzinfo=BANGKOK)
    assert result.skipped == (
        SkippedDay(date(2026, 3, 14), "Saturday"),
        SkippedDay(date(2026, 3, 15), "Sunday"),
    )


def test_due_at_is_aware_bangkok_midnight(cal: WorkingCalendar) -> None:
    due_at = cal.add_working_days(bkk(2026, 3, 9), 5)
    assert due_at == end_of(2026, 3, 16)
    assert due_at.tzinfo is BANGKOK
    assert due_at.isoformat() == "2026-03-17T00:00:00+07:00"


# --- Songkran ---------------------------------------------------------------------------------------------


def test_songkran_2026(cal: WorkingCalendar) -> None:
    # 13-15 April 2026 fall on Mon-Wed, so there is no substitution day: Thu 16 April is a working day.
    for day in (13, 14, 15):
        assert cal.holiday_name(date(2026, 4, day)) == "Songkran Festival"
        assert not cal.is_working_day(date(2026, 4, day))
    assert cal.holiday_name(date(2026, 4, 16)) is None
    assert cal.is_working_day(date(2026, 4, 16))


def test_songkran_2025_substitution_day(cal: WorkingCalendar) -> None:
    # In 2025, 13 April is a Sunday, so the library gives Wed 16 April 2025 as the day in lieu.
    assert cal.non_working_reason(date(2025, 4, 13)) == "Songkran Festival"
    assert cal.holiday_name(date(2025, 4, 16)) == "Songkran Festival (in lieu)"
    assert cal.is_working_day(date(2025, 4, 17))


def test_due_across_songkran(cal: WorkingCalendar) -> None:
    # Received Fri 10 Apr 2026 10:00. Skipped: Sat 11, Sun 12, Songkran Mon 13 - Wed 15.
    # Day 1 Thu 16, 2 Fri 17, (Sat 18, Sun 19), 3 Mon 20, 4 Tue 21, 5 Wed 22.
    result = cal.due(bkk(2026, 4, 10), 5)
    assert result.due_day == date(2026, 4, 22)
    assert result.due_at == end_of(2026, 4, 22)
    assert [s.day for s in result.skipped] == [
        date(2026, 4, 11),
        date(2026, 4, 12),
        date(2026, 4, 13),
        date(2026, 4, 14),
        date(2026, 4, 15),
        date(2026, 4, 18),
        date(2026, 4, 19),
    ]


# --- New Year ---------------------------------------------------------------------------------------------


def test_new_year_2026_with_bridge_day(cal: WorkingCalendar) -> None:
    # 31 Dec 2025 (Wed) and 1 Jan 2026 (Thu) are holidays; the Cabinet made Fri 2 Jan 2026 a bridge day,
    # which the library carries as "Bridge Public Holiday".
    assert cal.holiday_name(date(2025, 12, 31)) == "New Year's Eve"
    assert cal.holiday_name(date(2026, 1, 1)) == "New Year's Day"
    assert cal.holiday_name(date(2026, 1, 2)) == "Bridge Public Holiday"
    # Received Tue 30 Dec 2025 10:00. Skipped Wed 31, Thu 1, Fri 2, Sat 3, Sun 4.
    # Day 1 Mon 5 Jan, 2 Tue 6, 3 Wed 7.
    result = cal.due(bkk(2025, 12, 30), 3)
    assert result.due_at == end_of(2026, 1, 7)
    assert [s.reason for s in result.skipped] == [
        "New Year's Eve",
        "New Year's Day",
        "Bridge Public Holiday",
        "Saturday",
        "Sunday",
    ]


def test_new_year_2027_without_substitution(cal: WorkingCalendar) -> None:
    # 31 Dec 2026 is a Thursday and 1 Jan 2027 a Friday: both are weekdays, so no day in lieu.
    # Received Wed 30 Dec 2026 10:00. Skipped Thu 31, Fri 1, Sat 2, Sun 3; day 1 Mon 4 Jan 2027.
    assert cal.due(bkk(2026, 12, 30), 1).due_at == end_of(2027, 1, 4)
    assert cal.is_working_day(date(2027, 1, 4))


def test_weekend_holiday_reason_and_its_day_in_lieu(cal: WorkingCalendar) -> None:
    # 5 Dec 2026 (King Bhumibol's birthday, National Day, Father's Day) is a Saturday: the holiday name is the
    # reason, and Mon 7 Dec 2026 is the day in lieu.
    reason = cal.non_working_reason(date(2026, 12, 5))
    assert reason is not None and "National Day" in reason
    in_lieu = cal.holiday_name(date(2026, 12, 7))
    assert in_lieu is not None and "(in lieu)" in in_lieu


def test_government_only_holiday_is_included(cal: WorkingCalendar) -> None:
    # The Royal Ploughing Ceremony is a holiday for government offices only ("government" category);
    # in 2026 the library puts it on Wed 13 May.
    assert cal.holiday_name(date(2026, 5, 13)) == "Royal Ploughing Ceremony"
    assert not cal.is_working_day(date(2026, 5, 13))


# --- configured holidays ----------------------------------------------------------------------------------


def test_extra_holiday_moves_due_date_by_one_day() -> None:
    cal = WorkingCalendar(extra_holidays={date(2026, 4, 20): "Cabinet bridge day"})
    # As in test_due_across_songkran, but Mon 20 April is now off: day 3 Tue 21, 4 Wed 22, 5 Thu 23.
    result = cal.due(bkk(2026, 4, 10), 5)
    assert result.due_at == end_of(2026, 4, 23)
    assert SkippedDay(date(2026, 4, 20), "Cabinet bridge day") in result.skipped
    assert cal.holiday_name(date(2026, 4, 20)) == "Cabinet bridge day"


def test_extra_holiday_name_wins_over_library() -> None:
    cal = WorkingCalendar(extra_holidays={date(2026, 4, 13): "Songkran (Cabinet announcement)"})
    assert cal.holiday_name(date(2026, 4, 13)) == "Songkran (Cabinet announcement)"


def test_removed_holiday_becomes_a_working_day() -> None:
    cal = WorkingCalendar(removed_holidays=[date(2026, 4, 14)])
    assert cal.is_working_day(date(2026, 4, 14))
    assert cal.holiday_name(date(2026, 4, 14)) is None
    # Received Fri 10 Apr 2026 10:00. Skipped Sat 11, Sun 12, Mon 13; day 1 Tue 14, (Wed 15 still Songkran),
    # 2 Thu 16, 3 Fri 17, (Sat 18, Sun 19), 4 Mon 20, 5 Tue 21.
    assert cal.add_working_days(bkk(2026, 4, 10), 5) == end_of(2026, 4, 21)


def test_removed_weekend_holiday_is_still_a_weekend() -> None:
    cal = WorkingCalendar(removed_holidays=[date(2026, 12, 5)])
    assert cal.holiday_name(date(2026, 12, 5)) is None
    assert cal.non_working_reason(date(2026, 12, 5)) == "Saturday"


def test_date_both_added_and_removed_is_rejected() -> None:
    with pytest.raises(ValueError, match="2026-04-20"):
        WorkingCalendar(extra_holidays={date(2026, 4, 20): "x"}, removed_holidays=[date(2026, 4, 20)])


def test_load_extra_holidays_accepts_strings_and_dates() -> None:
    loaded = load_extra_holidays({"2026-12-07": "Cabinet bridge day", date(2026, 12, 30): " Year end "})
    assert loaded == {date(2026, 12, 7): "Cabinet bridge day", date(2026, 12, 30): "Year end"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"2026-13-01": "x"}, "'2026-13-01': not a valid date"),
        ({"7 Dec 2026": "x"}, "not a valid date"),
        ({"2026-12-07": ""}, "non-empty name"),
        ({datetime(2026, 12, 7, 9, 0): "x"}, "date and time"),
        ({20261207.0: "x"}, "expected a YYYY-MM-DD string"),
        ({"2026-12-07": "a", date(2026, 12, 7): "b"}, "listed twice"),
    ],
)
def test_load_extra_holidays_rejects_bad_entries(data: dict[object, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_extra_holidays(data)


# --- receipt time -----------------------------------------------------------------------------------------


def test_receipt_during_or_after_office_hours_counts_from_the_next_working_day(cal: WorkingCalendar) -> None:
    # Tue 10 Mar 2026: whatever the hour after opening, the day of receipt is not counted; day 1 is Wed 11.
    for hour, minute in ((8, 30), (16, 29), (16, 30), (23, 0)):
        assert cal.counting_from(bkk(2026, 3, 10, hour, minute)) == date(2026, 3, 10)
        assert cal.add_working_days(bkk(2026, 3, 10, hour, minute), 1) == end_of(2026, 3, 11)


def test_a_complaint_waiting_when_the_office_opens_counts_that_day(cal: WorkingCalendar) -> None:
    # s.193/3's exception: filed online Tue 10 Mar 2026 at 02:00 or 08:29, the period starts at the opening of
    # work at 08:30 on Tue 10, which is day 1.
    for hour, minute in ((2, 0), (8, 29)):
        assert cal.counting_from(bkk(2026, 3, 10, hour, minute)) == date(2026, 3, 9)
        assert cal.add_working_days(bkk(2026, 3, 10, hour, minute), 1) == end_of(2026, 3, 10)


def test_after_hours_on_friday_before_songkran(cal: WorkingCalendar) -> None:
    # Fri 10 Apr 2026 17:00: Fri 10 is not counted; Sat 11, Sun 12 and Songkran Mon 13 - Wed 15 are days off;
    # day 1 is Thu 16.
    assert cal.counting_from(bkk(2026, 4, 10, 17, 0)) == date(2026, 4, 10)
    assert cal.add_working_days(bkk(2026, 4, 10, 17, 0), 1) == end_of(2026, 4, 16)


def test_receipt_time_is_read_in_bangkok(cal: WorkingCalendar) -> None:
    utc = UTC
    # 01:29Z is 08:29 in Bangkok (before opening: Tue 10 is day 1); 01:30Z is 08:30 (Tue 10 is not counted).
    assert cal.counting_from(datetime(2026, 3, 10, 1, 29, tzinfo=utc)) == date(2026, 3, 9)
    assert cal.counting_from(datetime(2026, 3, 10, 1, 30, tzinfo=utc)) == date(2026, 3, 10)
    # 20:00Z on Tue 10 Mar is 03:00 Wed 11 Mar in Bangkok, before opening on a working day: day 1 is Wed 11.
    assert cal.add_working_days(datetime(2026, 3, 10, 20, 0, tzinfo=utc), 1) == end_of(2026, 3, 11)


def test_configurable_office_opening() -> None:
    cal = WorkingCalendar(office_open=time(9, 0))
    assert cal.office_open == time(9, 0)
    assert cal.counting_from(bkk(2026, 3, 10, 8, 45)) == date(2026, 3, 9)
    assert cal.counting_from(bkk(2026, 3, 10, 9, 0)) == date(2026, 3, 10)


def test_saturday_receipt_has_monday_as_day_1(cal: WorkingCalendar) -> None:
    # Sat 14 Mar 2026 at 09:00 or 20:00: Sat 14 is not counted, Sun 15 is a day off; day 1 is Mon 16.
    for hour in (9, 20):
        result = cal.due(bkk(2026, 3, 14, hour), 1)
        assert result.start_day == date(2026, 3, 14)
        assert result.due_at == end_of(2026, 3, 16)
        assert result.skipped == (
            SkippedDay(date(2026, 3, 14), "Saturday"),
            SkippedDay(date(2026, 3, 15), "Sunday"),
        )


def test_holiday_receipt_has_the_next_working_day_as_day_1(cal: WorkingCalendar) -> None:
    # Mon 13 Apr 2026 (Songkran) 09:00: Tue 14 and Wed 15 are Songkran too; day 1 is Thu 16.
    assert cal.counting_from(bkk(2026, 4, 13, 9)) == date(2026, 4, 13)
    assert cal.add_working_days(bkk(2026, 4, 13, 9), 1) == end_of(2026, 4, 16)


@pytest.mark.parametrize(
    ("received", "days", "due_day", "why"),
    [
        # Friday evening, Fri 13 Mar 2026 18:00: day 1 Mon 16, 2 Tue 17, 3 Wed 18, 4 Thu 19, 5 Fri 20.
        (bkk(2026, 3, 13, 18), 5, date(2026, 3, 20), "Friday evening"),
        # Saturday, Sat 14 Mar 2026 11:00: the same five days, Mon 16 to Fri 20.
        (bkk(2026, 3, 14, 11), 5, date(2026, 3, 20), "Saturday"),
        # Public holiday, Chakri Day Mon 6 Apr 2026 10:00: day 1 Tue 7, 2 Wed 8, 3 Thu 9.
        (bkk(2026, 4, 6, 10), 3, date(2026, 4, 9), "public holiday"),
        # Over Songkran, Thu 9 Apr 2026 15:00: day 1 Fri 10; Sat 11 - Wed 15 off; 2 Thu 16, 3 Fri 17,
        # 4 Mon 20, 5 Tue 21.
        (bkk(2026, 4, 9, 15), 5, date(2026, 4, 21), "over Songkran"),
        # Over New Year, Tue 30 Dec 2025 19:00: Wed 31, Thu 1 Jan, the Cabinet's bridge day Fri 2 and the weekend
        # are off; day 1 Mon 5 Jan 2026, 2 Tue 6, 3 Wed 7.
        (bkk(2025, 12, 30, 19), 3, date(2026, 1, 7), "New Year and bridge day"),
        # Filed online at 02:00 on Mon 5 Jan 2026: waiting when the office opens, so Mon 5 is day 1; 2 Tue 6.
        (bkk(2026, 1, 5, 2), 2, date(2026, 1, 6), "before opening"),
    ],
)
def test_worked_examples_of_section_193_3(
    cal: WorkingCalendar, received: datetime, days: int, due_day: date, why: str
) -> None:
    assert cal.due(received, days).due_day == due_day, why
    assert cal.add_working_days(received, days) == end_of(due_day.year, due_day.month, due_day.day), why


# --- argument checks --------------------------------------------------------------------------------------


def test_zero_working_days_is_end_of_effective_receipt_day(cal: WorkingCalendar) -> None:
    result = cal.due(bkk(2026, 3, 10), 0)  # Tue 10 Mar, 10:00
    assert result.due_day == result.start_day == date(2026, 3, 10)
    assert result.due_at == end_of(2026, 3, 10)
    assert result.skipped == ()
    # Nothing to count: 0 days ends with the day of receipt, whatever day it is (Sat 14 Mar).
    assert cal.add_working_days(bkk(2026, 3, 14), 0) == end_of(2026, 3, 14)


def test_negative_working_days_rejected(cal: WorkingCalendar) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        cal.due(bkk(2026, 3, 10), -1)


def test_naive_datetimes_rejected(cal: WorkingCalendar) -> None:
    naive = datetime(2026, 3, 10, 10, 0)
    with pytest.raises(ValueError, match="naive"):
        cal.due(naive, 5)
    with pytest.raises(ValueError, match="naive"):
        cal.counting_from(naive)
    with pytest.raises(ValueError, match="naive"):
        cal.working_days_between(naive, bkk(2026, 3, 20))


def test_datetime_passed_as_date_rejected(cal: WorkingCalendar) -> None:
    with pytest.raises(TypeError):
        cal.is_working_day(bkk(2026, 3, 14))


# --- working_days_between ---------------------------------------------------------------------------------


def test_working_days_between(cal: WorkingCalendar) -> None:
    # After Fri 10 Apr up to Wed 22 Apr 2026: Thu 16, Fri 17, Mon 20, Tue 21, Wed 22.
    assert cal.working_days_between(bkk(2026, 4, 10), bkk(2026, 4, 22, 9)) == 5
    # Only weekend and Songkran between Fri 10 and Wed 15.
    assert cal.working_days_between(bkk(2026, 4, 10), bkk(2026, 4, 15, 18)) == 0
    # Mon 9 to Mon 16 Mar 2026: Tue 10 - Fri 13 and Mon 16.
    assert cal.working_days_between(bkk(2026, 3, 9), bkk(2026, 3, 16)) == 5
    assert cal.working_days_between(bkk(2026, 3, 9, 9), bkk(2026, 3, 9, 17)) == 0
    assert cal.working_days_between(bkk(2026, 3, 16), bkk(2026, 3, 9)) == 0


# --- explain ----------------------------------------------------------------------------------------------


def test_explain_lines(cal: WorkingCalendar) -> None:
    assert explain(cal.due(bkk(2026, 4, 10), 5)) == [
        "received: 2026-04-10 Fri 10:00 (Asia/Bangkok), the day of receipt is not counted: day 1 is the next "
        "working day (Civil and Commercial Code s.193/3)",
        "2026-04-11 Sat: weekend",
        "2026-04-12 Sun: weekend",
        "2026-04-13 Mon: Songkran Festival",
        "2026-04-14 Tue: Songkran Festival",
        "2026-04-15 Wed: Songkran Festival",
        "2026-04-18 Sat: weekend",
        "2026-04-19 Sun: weekend",
        "due: end of 2026-04-22 (working day 5)",
    ]


def test_explain_says_which_rule_applied(cal: WorkingCalendar) -> None:
    late = explain(cal.due(bkk(2026, 3, 10, 16, 30), 1))
    assert late[0] == (
        "received: 2026-03-10 Tue 16:30 (Asia/Bangkok), the day of receipt is not counted: day 1 is the next "
        "working day (Civil and Commercial Code s.193/3)"
    )
    assert late[-1] == "due: end of 2026-03-11 (working day 1)"
    early = explain(cal.due(bkk(2026, 3, 10, 2, 0), 1))
    assert "before the office opened" in early[0] and early[-1] == "due: end of 2026-03-10 (working day 1)"
    saturday = explain(cal.due(bkk(2026, 3, 14, 9), 1))
    assert saturday == [
        "received: 2026-03-14 Sat 09:00 (Asia/Bangkok), not a working day: day 1 is the first working day after it "
        "(Civil and Commercial Code s.193/3)",
        "2026-03-14 Sat: weekend",
        "2026-03-15 Sun: weekend",
        "due: end of 2026-03-16 (working day 1)",
    ]


def test_explain_weekend_holiday_shows_holiday_name(cal: WorkingCalendar) -> None:
    # Thu 3 Dec 2026 10:00: day 1 Fri 4 Dec; skipped Sat 5 (holiday), Sun 6, Mon 7 (in lieu); day 2 Tue 8.
    result: DueDate = cal.due(bkk(2026, 12, 3), 2)
    assert result.due_at == end_of(2026, 12, 8)
    lines = explain(result)
    assert lines[1].startswith("2026-12-05 Sat: HM King Bhumibol")
    assert lines[2] == "2026-12-06 Sun: weekend"
    assert lines[3].startswith("2026-12-07 Mon: ") and "(in lieu)" in lines[3]


# --- CLI --------------------------------------------------------------------------------------------------

runner = CliRunner()


def _flat(text: str) -> str:
    # Typer draws errors in a box that wraps at the terminal width; compare the words only.
    return " ".join(text.replace("│", " ").split())


def test_cli_due_with_explain() -> None:
    result = runner.invoke(app, ["due", "--received", "2026-04-10T10:00+07:00", "--working-days", "5", "--explain"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # Fri 10 Apr 2026 10:00: day 1 Thu 16 (after the weekend and Songkran 13-15), 2 Fri 17, 3 Mon 20,
    # 4 Tue 21, 5 Wed 22 -> due at the end of Wed 22 April = 2026-04-23 00:00 Bangkok.
    assert lines[0] == "2026-04-23T00:00:00+07:00"
    assert "2026-04-13 Mon: Songkran Festival" in lines
    assert "2026-04-18 Sat: weekend" in lines
    assert lines[-1] == "due: end of 2026-04-22 (working day 5)"


def test_cli_due_without_offset_is_bangkok_and_extra_holiday() -> None:
    result = runner.invoke(
        app,
        [
            "due",
            "--received",
            "2026-04-10T10:00",
            "--working-days",
            "5",
            "--extra-holiday",
            "2026-04-20=Cabinet-day",
        ],
    )
    assert result.exit_code == 0, result.output
    # As above with Mon 20 April off: day 3 Tue 21, 4 Wed 22, 5 Thu 23 -> end of Thu 23 April.
    assert result.output.strip() == "2026-04-24T00:00:00+07:00"


def test_cli_bad_received_is_a_usage_error() -> None:
    result = runner.invoke(app, ["due", "--received", "10/04/2026", "--working-days", "5"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "Invalid value for '--received': '10/04/2026' is not an ISO 8601 date-time" in _flat(result.output)


def test_cli_bad_extra_holiday_is_a_usage_error() -> None:
    result = runner.invoke(
        app,
        [
            "due",
            "--received",
            "2026-04-10T10:00+07:00",
            "--working-days",
            "5",
            "--extra-holiday",
            "2026-02-30=Nope",
        ],
    )
    assert result.exit_code == 2
    assert "'2026-02-30': not a valid date" in _flat(result.output)


def test_the_test_calendar_counts_every_day_as_a_fixed_number_of_seconds() -> None:
    calendar = Settings(env="test", test_working_day_seconds=1.5).calendar()
    assert isinstance(calendar, CompressedCalendar)
    start = bkk(2026, 4, 13, 23, 59)  # Songkran, at night: the real calendar would skip days
    assert calendar.add_working_days(start, 2) == start + timedelta(seconds=3)
    assert calendar.add_working_days(start, 0) == start
    assert calendar.working_days_between(start, start + timedelta(seconds=4)) == 2
    assert calendar.working_days_between(start, start - timedelta(seconds=4)) == 0
    # Unset, whatever the environment: the real calendar.
    assert not isinstance(Settings(env="test").calendar(), CompressedCalendar)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_test_calendar_is_refused_outside_tests(env: str) -> None:
    strong = {"payload_key": base64.b64encode(os.urandom(32)).decode(), "jwt_secret": os.urandom(32).hex()}
    secrets = strong if env == "prod" else {}
    with pytest.raises(ValidationError, match="for tests only"):
        Settings(env=env, test_working_day_seconds=1.0, **secrets)
