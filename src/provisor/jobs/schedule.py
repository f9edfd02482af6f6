"""When a source's READ jobs start on their own (spec §3.7): a schedule and its ticks.

A schedule runs every N minutes (N > 30) on a grid that starts when it was saved, or on
days of the week at a local time in an IANA time zone. Ticks never move: ``next_run(after)``
is the first tick strictly after ``after``, so a run that overruns skips the ticks it
covered and nothing is caught up.

Local times follow the zone's clock changes: a time that does not exist (clocks jump
forward) runs at the first instant after the jump; a time that happens twice (clocks go
back) runs once, at its first occurrence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from provisor.errors import InputError

DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")  # index = date.weekday()
MIN_INTERVAL_MINUTES = 30  # exclusive: SAP requires "larger than 30"
MAX_INTERVAL_MINUTES = 366 * 24 * 60
DEFAULT_TIME_ZONE = "UTC"
_HH_MM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_FIELDS = {"enabled", "intervalMinutes", "daysOfWeek", "time", "timeZone"}
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Interval:
    """Every ``minutes`` minutes."""

    minutes: int

    def to_dict(self) -> dict[str, Any]:
        return {"intervalMinutes": self.minutes}


@dataclass(frozen=True, slots=True, kw_only=True)
class Weekly:
    """On ``days`` (0 = Monday) at the local time ``at`` in ``zone``."""

    days: tuple[int, ...]
    at: time
    zone: ZoneInfo

    def to_dict(self) -> dict[str, Any]:
        return {
            "daysOfWeek": [DAYS[d] for d in self.days],
            "time": self.at.strftime("%H:%M"),
            "timeZone": self.zone.key,
        }

    def next_run(self, after: datetime) -> datetime:
        first_day = after.astimezone(self.zone).date()
        for offset in range(8):  # the same weekday a week later is always after ``after``
            day = first_day + timedelta(days=offset)
            if day.weekday() in self.days:
                tick = local_instant(datetime.combine(day, self.at), self.zone)
                if tick > after:
                    return tick
        raise AssertionError("a weekly schedule has at least one day")


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """A source's schedule. ``anchor`` is when it was saved (UTC, whole seconds): the grid
    of an interval starts there."""

    enabled: bool
    rule: Interval | Weekly
    anchor: datetime

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, anchor: datetime) -> Schedule:
        """Read the admin API's JSON; InputError says what is wrong with it."""
        unknown = sorted(set(data) - _FIELDS)
        if unknown:
            raise InputError(f"Unknown schedule field(s): {', '.join(unknown)}.")
        enabled = data.get("enabled", True)
        if not isinstance(enabled, bool):
            raise InputError("enabled is true or false.")
        weekly = {"daysOfWeek", "time", "timeZone"} & set(data)
        if "intervalMinutes" in data and weekly:
            raise InputError(
                "A schedule runs every N minutes (intervalMinutes) or on days of the week "
                "(daysOfWeek, time, timeZone), not both."
            )
        rule: Interval | Weekly
        if "intervalMinutes" in data:
            rule = Interval(minutes=_minutes(data["intervalMinutes"]))
        elif weekly:
            rule = Weekly(
                days=_days(data.get("daysOfWeek")),
                at=_time(data.get("time")),
                zone=_zone(data.get("timeZone", DEFAULT_TIME_ZONE)),
            )
        else:
            raise InputError("A schedule needs intervalMinutes, or daysOfWeek and time.")
        return cls(enabled=enabled, rule=rule, anchor=_utc(anchor).replace(microsecond=0))

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, **self.rule.to_dict()}

    def next_run(self, after: datetime) -> datetime:
        """The first tick strictly after ``after`` (an aware datetime), in UTC."""
        moment = _utc(after)
        if isinstance(self.rule, Weekly):
            return self.rule.next_run(moment).astimezone(UTC)
        step = timedelta(minutes=self.rule.minutes)
        return self.anchor + ((moment - self.anchor) // step + 1) * step


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceSchedule:
    """A source system's schedule with its next and last run (ISO text, UTC)."""

    source_id: str
    source_name: str
    schedule: Schedule
    next_run: str | None
    last_run: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "systemId": self.source_id,
            "systemName": self.source_name,
            **self.schedule.to_dict(),
            "nextRun": self.next_run,
            "lastRun": self.last_run,
        }


def local_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant (UTC) a naive local ``wall`` time names in ``zone``: its first occurrence
    when it happens twice, the end of the gap when it does not exist."""
    first = wall.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall:
        return first.astimezone(UTC)
    # In a gap, fold=1 reads the wall time with the offset after the jump (an instant
    # before it) and fold=0 with the offset before (an instant after it).
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    after = first.astimezone(UTC)
    while after - before > _MICROSECOND:
        middle = before + (after - before) / 2
        if middle.astimezone(zone).replace(tzinfo=None) < wall:
            before = middle
        else:
            after = middle
    return after


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("schedule times are timezone-aware")
    return moment.astimezone(UTC)


def _minutes(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"intervalMinutes is a whole number of minutes, not {value!r}.")
    if value <= MIN_INTERVAL_MINUTES:
        raise InputError(
            f"The interval must be larger than {MIN_INTERVAL_MINUTES} minutes, not {value}."
        )
    if value > MAX_INTERVAL_MINUTES:
        raise InputError(f"The interval is at most {MAX_INTERVAL_MINUTES} minutes (a year).")
    return value


def _days(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise InputError("Choose at least one day of the week in daysOfWeek (MON to SUN).")
    days = set()
    for name in value:
        key = name.strip().upper() if isinstance(name, str) else name
        if key not in DAYS:
            raise InputError(
                f"Unknown day of the week {name!r}: use {', '.join(DAYS[:-1])} or {DAYS[-1]}."
            )
        days.add(DAYS.index(key))
    return tuple(sorted(days))


def _time(value: Any) -> time:
    match = _HH_MM.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InputError(f"time is required as HH:MM (00:00 to 23:59), not {value!r}.")
    return time(int(match[1]), int(match[2]))


def _zone(value: Any) -> ZoneInfo:
    try:
        if not isinstance(value, str) or value == "localtime":  # the server's own zone
            raise ValueError(value)
        return ZoneInfo(value)
    except (ValueError, ZoneInfoNotFoundError):
        raise InputError(
            f"Unknown time zone {value!r}: use an IANA name such as Europe/Berlin."
        ) from None
