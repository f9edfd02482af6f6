"""Schedules: reading the API's JSON, and the ticks of intervals and weekly times (spec §3.7)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisor.errors import InputError
from provisor.jobs.schedule import DAYS, Interval, Schedule, Weekly, local_instant

SAVED = datetime(2024, 5, 6, 8, 15, 42, 987654, tzinfo=UTC)  # a Monday


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def weekly(days: list[str], at: str, zone: str = "UTC") -> Schedule:
    return Schedule.from_dict({"daysOfWeek": days, "time": at, "timeZone": zone}, anchor=SAVED)


def every(minutes: int, anchor: datetime = SAVED) -> Schedule:
    return Schedule.from_dict({"enabled": True, "intervalMinutes": minutes}, anchor=anchor)


# -- reading and writing the API's JSON -----------------------------------------------------------


def test_interval_round_trips() -> None:
    schedule = every(40)
    assert schedule.rule == Interval(minutes=40)
    assert schedule.to_dict() == {"enabled": True, "intervalMinutes": 40}
    assert Schedule.from_dict(schedule.to_dict(), anchor=SAVED) == schedule


def test_weekly_is_normalised_and_round_trips() -> None:
    data = {
        "enabled": False,
        "daysOfWeek": ["fri", "MON", " Fri "],
        "time": "02:30",
        "timeZone": "Europe/Berlin",
    }
    schedule = Schedule.from_dict(data, anchor=SAVED)
    assert schedule.rule == Weekly(days=(0, 4), at=time(2, 30), zone=ZoneInfo("Europe/Berlin"))
    assert schedule.to_dict() == {
        "enabled": False,
        "daysOfWeek": ["MON", "FRI"],
        "time": "02:30",
        "timeZone": "Europe/Berlin",
    }
    assert Schedule.from_dict(schedule.to_dict(), anchor=SAVED) == schedule


def test_defaults_enabled_and_utc() -> None:
    schedule = Schedule.from_dict({"daysOfWeek": ["SUN"], "time": "23:59"}, anchor=SAVED)
    assert schedule.enabled
    assert schedule.to_dict()["timeZone"] == "UTC"


def test_anchor_is_utc_whole_seconds() -> None:
    berlin = SAVED.astimezone(ZoneInfo("Europe/Berlin"))
    assert every(40, berlin).anchor == utc(2024, 5, 6, 8, 15, 42)
    assert every(40, berlin).anchor.tzinfo is UTC


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"intervalMinutes": 30}, "larger than 30 minutes, not 30"),
        ({"intervalMinutes": 0}, "larger than 30 minutes"),
        ({"intervalMinutes": -40}, "larger than 30 minutes"),
        ({"intervalMinutes": 10**9}, "at most"),
        ({"intervalMinutes": "40"}, "whole number"),
        ({"intervalMinutes": 40.0}, "whole number"),
        ({"intervalMinutes": True}, "whole number"),
        ({"daysOfWeek": [], "time": "02:30"}, "at least one day"),
        ({"daysOfWeek": "MON", "time": "02:30"}, "at least one day"),
        ({"daysOfWeek": ["MONDAY"], "time": "02:30"}, "Unknown day of the week 'MONDAY'"),
        ({"daysOfWeek": [1], "time": "02:30"}, "Unknown day of the week 1"),
        ({"daysOfWeek": ["MON"]}, "time is required as HH:MM"),
        ({"daysOfWeek": ["MON"], "time": "24:00"}, "not '24:00'"),
        ({"daysOfWeek": ["MON"], "time": "2:30"}, "HH:MM"),
        ({"daysOfWeek": ["MON"], "time": "02:60"}, "HH:MM"),
        ({"daysOfWeek": ["MON"], "time": "02:30:00"}, "HH:MM"),
        ({"time": "02:30"}, "at least one day"),
        ({"daysOfWeek": ["MON"], "time": "02:30", "timeZone": "Mars/Olympus"}, "Unknown time zone"),
        ({"daysOfWeek": ["MON"], "time": "02:30", "timeZone": "../etc/x"}, "Unknown time zone"),
        ({"daysOfWeek": ["MON"], "time": "02:30", "timeZone": "localtime"}, "Unknown time zone"),
        ({"daysOfWeek": ["MON"], "time": "02:30", "timeZone": 1}, "Unknown time zone"),
        ({"intervalMinutes": 40, "daysOfWeek": ["MON"]}, "not both"),
        ({"intervalMinutes": 40, "timeZone": "UTC"}, "not both"),
        ({"enabled": True}, "needs intervalMinutes, or daysOfWeek and time"),
        ({"enabled": "yes", "intervalMinutes": 40}, "enabled is true or false"),
        ({"intervalMinutes": 40, "every": 3}, "Unknown schedule field(s): every"),
    ],
)
def test_invalid_schedules_say_why(data: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as caught:
        Schedule.from_dict(data, anchor=SAVED)
    assert message in caught.value.message


def test_times_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        every(40).next_run(datetime(2024, 5, 6, 9, 0))


# -- intervals ------------------------------------------------------------------------------------


def test_interval_ticks_on_the_grid_from_the_anchor() -> None:
    schedule = every(40)
    assert schedule.next_run(SAVED) == utc(2024, 5, 6, 8, 55, 42)
    assert schedule.next_run(utc(2024, 5, 6, 8, 55, 42)) == utc(2024, 5, 6, 9, 35, 42)
    assert schedule.next_run(utc(2024, 5, 6, 8, 55, 41)) == utc(2024, 5, 6, 8, 55, 42)
    assert schedule.next_run(utc(2024, 5, 6, 7, 0)) == utc(2024, 5, 6, 7, 35, 42)  # before


def test_an_overrun_skips_the_ticks_it_covered() -> None:
    schedule = every(60)
    ran_until = utc(2024, 5, 6, 11, 30)  # started 09:15:42, overran 10:15:42 and 11:15:42
    assert schedule.next_run(ran_until) == utc(2024, 5, 6, 12, 15, 42)


def test_interval_ignores_clock_changes() -> None:
    schedule = every(60, utc(2024, 3, 30, 22, 0))
    berlin = ZoneInfo("Europe/Berlin")
    ticks = [utc(2024, 3, 31, 0, 30)]
    for _ in range(3):
        ticks.append(schedule.next_run(ticks[-1]))
    assert [t.astimezone(berlin).hour for t in ticks[1:]] == [2 + 1, 4, 5]  # 02:00 is gone


# -- weekly ---------------------------------------------------------------------------------------


def test_weekly_picks_the_next_chosen_day() -> None:
    schedule = weekly(["MON", "FRI"], "02:30")
    assert schedule.next_run(utc(2024, 5, 6, 2, 29)) == utc(2024, 5, 6, 2, 30)  # Monday
    assert schedule.next_run(utc(2024, 5, 6, 2, 30)) == utc(2024, 5, 10, 2, 30)  # Friday
    assert schedule.next_run(utc(2024, 5, 10, 3, 0)) == utc(2024, 5, 13, 2, 30)


def test_weekly_once_a_week_is_a_week_later() -> None:
    schedule = weekly(["WED"], "12:00", "Asia/Kolkata")
    assert schedule.next_run(utc(2024, 5, 8, 6, 30)) == utc(2024, 5, 15, 6, 30)


def test_weekly_uses_the_local_day_of_the_zone() -> None:
    # Monday 23:00 UTC is already Tuesday 08:00 in Tokyo.
    schedule = weekly(["TUE"], "09:00", "Asia/Tokyo")
    assert schedule.next_run(utc(2024, 5, 6, 23, 0)) == utc(2024, 5, 7, 0, 0)


def test_spring_gap_runs_when_the_clock_jumps() -> None:
    # Berlin, 31 March 2024: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
    schedule = weekly(["SUN"], "02:30", "Europe/Berlin")
    tick = schedule.next_run(utc(2024, 3, 30, 12, 0))
    assert tick == utc(2024, 3, 31, 1, 0)
    assert tick.astimezone(ZoneInfo("Europe/Berlin")).time() == time(3, 0)
    assert schedule.next_run(tick) == utc(2024, 4, 7, 0, 30)  # 02:30 CEST again


def test_autumn_repeat_runs_once_at_the_first_occurrence() -> None:
    # Berlin, 27 October 2024: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
    schedule = weekly(["SUN"], "02:30", "Europe/Berlin")
    first = schedule.next_run(utc(2024, 10, 26, 12, 0))
    assert first == utc(2024, 10, 27, 0, 30)  # 02:30 CEST
    assert schedule.next_run(first) == utc(2024, 11, 3, 1, 30)  # not 02:30 CET that night
    assert schedule.next_run(utc(2024, 10, 27, 1, 0)) == utc(2024, 11, 3, 1, 30)


@pytest.mark.parametrize(
    ("zone", "days", "at", "after", "expected"),
    [
        # New York: 02:00 EST -> 03:00 EDT on 10 March 2024.
        ("America/New_York", ["SUN"], "02:15", utc(2024, 3, 9), utc(2024, 3, 10, 7, 0)),
        # New York: 02:00 EDT -> 01:00 EST on 3 November 2024; 01:30 EDT comes first.
        ("America/New_York", ["SUN"], "01:30", utc(2024, 11, 2), utc(2024, 11, 3, 5, 30)),
        # Lord Howe: half an hour forward, 02:00 (15:30 UTC) -> 02:30 on 6 October 2024.
        ("Australia/Lord_Howe", ["SUN"], "02:10", utc(2024, 10, 5), utc(2024, 10, 5, 15, 30)),
        # Sydney: 03:00 AEDT -> 02:00 AEST on 7 April 2024; 02:30 AEDT comes first.
        ("Australia/Sydney", ["SUN"], "02:30", utc(2024, 4, 6), utc(2024, 4, 6, 15, 30)),
        # Havana: midnight does not exist on 10 March 2024 (00:00 -> 01:00).
        ("America/Havana", ["SUN"], "00:30", utc(2024, 3, 9), utc(2024, 3, 10, 5, 0)),
        # Chatham: 02:45 -> 03:45 on 29 September 2024.
        ("Pacific/Chatham", ["SUN"], "03:00", utc(2024, 9, 28), utc(2024, 9, 28, 14, 0)),
    ],
)
def test_clock_changes_around_the_world(
    zone: str, days: list[str], at: str, after: datetime, expected: datetime
) -> None:
    assert weekly(days, at, zone).next_run(after) == expected


def test_local_instant() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert local_instant(datetime(2024, 3, 31, 2, 0), berlin) == utc(2024, 3, 31, 1, 0)
    assert local_instant(datetime(2024, 3, 31, 2, 59, 59), berlin) == utc(2024, 3, 31, 1, 0)
    assert local_instant(datetime(2024, 3, 31, 3, 0), berlin) == utc(2024, 3, 31, 1, 0)
    assert local_instant(datetime(2024, 10, 27, 2, 0), berlin) == utc(2024, 10, 27, 0, 0)
    assert local_instant(datetime(2024, 10, 27, 3, 0), berlin) == utc(2024, 10, 27, 2, 0)


# -- properties -----------------------------------------------------------------------------------

MOMENTS = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)
)
# Zones whose clocks change by at most an hour and never skip a day in these years.
ZONES = [
    "UTC",
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Havana",
    "America/Santiago",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "Asia/Tehran",
]
WEEKLY = st.builds(
    lambda days, hour, minute, zone: weekly(
        [DAYS[d] for d in days], f"{hour:02}:{minute:02}", zone
    ),
    st.sets(st.integers(0, 6), min_size=1),
    st.integers(0, 23),
    st.integers(0, 59),
    st.sampled_from(ZONES),
)


@given(anchor=MOMENTS, minutes=st.integers(31, 366 * 24 * 60), after=MOMENTS)
def test_interval_properties(anchor: datetime, minutes: int, after: datetime) -> None:
    schedule = every(minutes, anchor)
    step = timedelta(minutes=minutes)
    tick = schedule.next_run(after)
    assert after < tick <= after + step
    assert (tick - schedule.anchor) % step == timedelta(0)


@settings(deadline=None)
@given(schedule=WEEKLY, after=MOMENTS)
def test_weekly_properties(schedule: Schedule, after: datetime) -> None:
    rule = schedule.rule
    assert isinstance(rule, Weekly)
    tick = schedule.next_run(after)
    assert after < tick <= after + timedelta(weeks=1, hours=1)
    # On the grid: the moment the local clock first reaches the chosen time of a chosen day.
    local = tick.astimezone(rule.zone)
    wanted = datetime.combine(local.date(), rule.at)
    just_before = (tick - timedelta(microseconds=1)).astimezone(rule.zone)
    assert local.weekday() in rule.days
    assert just_before.replace(tzinfo=None) < wanted <= local.replace(tzinfo=None)
    assert local.fold == 0 or local.replace(tzinfo=None) > wanted  # never a second occurrence
    # Nothing chosen was left out between ``after`` and the tick.
    day = after.astimezone(rule.zone).date()
    while day < local.date():
        if day.weekday() in rule.days:
            assert local_instant(datetime.combine(day, rule.at), rule.zone) <= after
        day += timedelta(days=1)


@settings(deadline=None)
@given(
    zone=st.sampled_from(sorted(available_timezones() - {"localtime"})),
    days=st.sets(st.integers(0, 6), min_size=1),
    at=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    after=MOMENTS,
)
def test_weekly_is_always_later_in_any_zone(
    zone: str, days: set[int], at: time, after: datetime
) -> None:
    schedule = weekly([DAYS[d] for d in days], at.strftime("%H:%M"), zone)
    assert schedule.next_run(after) > after
