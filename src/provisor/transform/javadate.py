"""Dates for ``manipulateDate`` and ``currentDate``: Java DateTimeFormatter patterns.

Supports the pattern letters SAP's transformations use (``y u M L d D E a h H k K m s S n
z Z X x V``, quoted literals with ``'``), and ``Date(milliseconds)``: epoch milliseconds, as
a number or as OData's ``/Date(1700000000000)/`` (an offset in it is ignored; output is UTC).
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

EPOCH_MS = "Date(milliseconds)"
_ODATA = re.compile(r"^/?Date\((-?\d+)(?:[+-]\d{4})?\)/?$")
_MONTHS = list(calendar.month_name)[1:]
_DAYS = list(calendar.day_name)


@lru_cache(maxsize=256)
def tokens(pattern: str) -> tuple[tuple[str, int] | str, ...]:
    """(letter, count) pairs and literal strings."""
    out: list[tuple[str, int] | str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "'":
            end = pattern.find("'", i + 1)
            if end == i + 1:  # '' is a quote
                out.append("'")
                i += 2
                continue
            if end < 0:
                raise ValueError(f"unclosed quote in date pattern {pattern!r}")
            out.append(pattern[i + 1 : end].replace("''", "'"))
            i = end + 1
        elif char.isascii() and char.isalpha():
            j = i
            while j < len(pattern) and pattern[j] == char:
                j += 1
            if char not in "yuMLdDEahHkKmsSnzZXxVG":
                raise ValueError(f"unsupported letter {char!r} in date pattern {pattern!r}")
            out.append((char, j - i))
            i = j
        else:
            out.append(char)
            i += 1
    return tuple(out)


def _offset(moment: datetime, count: int, letter: str) -> str:
    delta = moment.utcoffset() or timedelta(0)
    if letter == "X" and delta == timedelta(0):
        return "Z"
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    if letter == "Z":
        return f"{sign}{hours:02d}{mins:02d}" if count < 4 else f"GMT{sign}{hours:02d}:{mins:02d}"
    if count == 1:
        return f"{sign}{hours:02d}" + (f"{mins:02d}" if mins else "")
    return f"{sign}{hours:02d}{':' if count in (3, 5) else ''}{mins:02d}"


def format_java(moment: datetime, pattern: str) -> str:
    if pattern == EPOCH_MS:
        return f"/Date({int(moment.timestamp() * 1000)})/"
    out: list[str] = []
    for token in tokens(pattern):
        if isinstance(token, str):
            out.append(token)
            continue
        letter, n = token
        if letter in "yu":
            out.append(f"{moment.year % 100:02d}" if n == 2 else f"{moment.year:0{n}d}")
        elif letter in "ML":
            out.append(
                _MONTHS[moment.month - 1]
                if n >= 4
                else _MONTHS[moment.month - 1][:3]
                if n == 3
                else f"{moment.month:0{n}d}"
            )
        elif letter == "d":
            out.append(f"{moment.day:0{n}d}")
        elif letter == "D":
            out.append(f"{moment.timetuple().tm_yday:0{n}d}")
        elif letter == "E":
            out.append(_DAYS[moment.weekday()] if n >= 4 else _DAYS[moment.weekday()][:3])
        elif letter == "a":
            out.append("AM" if moment.hour < 12 else "PM")
        elif letter == "H":
            out.append(f"{moment.hour:0{n}d}")
        elif letter == "k":
            out.append(f"{moment.hour or 24:0{n}d}")
        elif letter == "h":
            out.append(f"{(moment.hour % 12) or 12:0{n}d}")
        elif letter == "K":
            out.append(f"{moment.hour % 12:0{n}d}")
        elif letter == "m":
            out.append(f"{moment.minute:0{n}d}")
        elif letter == "s":
            out.append(f"{moment.second:0{n}d}")
        elif letter == "S":
            out.append(f"{moment.microsecond:06d}{'0' * 3}"[:n])
        elif letter == "n":
            out.append(str(moment.microsecond * 1000))
        elif letter in "ZXx":
            out.append(_offset(moment, n, letter))
        elif letter in "zV":
            out.append(moment.tzname() or "UTC")
        elif letter == "G":
            out.append("AD")
    return "".join(out)


_PARTS = {
    "y": r"(?P<y>-?\d{1,9})",
    "u": r"(?P<y>-?\d{1,9})",
    "d": r"(?P<d>\d{1,2})",
    "D": r"(?P<D>\d{1,3})",
    "H": r"(?P<H>\d{1,2})",
    "k": r"(?P<H>\d{1,2})",
    "h": r"(?P<h>\d{1,2})",
    "K": r"(?P<h>\d{1,2})",
    "m": r"(?P<m>\d{1,2})",
    "s": r"(?P<s>\d{1,2})",
    "a": r"(?P<a>(?i:AM|PM))",
    "n": r"(?P<n>\d{1,9})",
    "E": r"(?:[A-Za-z]+)",
    "G": r"(?:AD|BC)",
}


_GROUPS = {"u": "y", "k": "H", "K": "h"}


def _numeric(token: str | tuple[str, int]) -> bool:
    """Whether a pattern token is a number field (``yyyy``, ``MM``, ``HH``, ...)."""
    if isinstance(token, str):
        return False
    letter, n = token
    return letter in "yuDdHkhKmsSn" or (letter in "ML" and n < 3)


@lru_cache(maxsize=256)
def _parser(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    parts = list(tokens(pattern))
    for i, token in enumerate(parts):
        if isinstance(token, str):
            out.append(re.escape(token))
            continue
        letter, n = token
        if _numeric(token) and i + 1 < len(parts) and _numeric(parts[i + 1]):
            # adjacent value parsing (Java): a number followed by a number has its width
            name = "yy" if letter == "y" and n == 2 else _GROUPS.get(letter, letter)
            out.append(rf"(?P<{name}>\d{{{n}}})")
        elif letter in "ML":
            out.append(r"(?P<M>[A-Za-z]+)" if n >= 3 else r"(?P<M>\d{1,2})")
        elif letter == "y" and n == 2:
            out.append(r"(?P<yy>\d{2})")
        elif letter == "S":
            out.append(rf"(?P<S>\d{{{n}}})")
        elif letter in "ZXx":
            out.append(r"(?P<z>Z|GMT[+-]\d{2}:?\d{2}|[+-]\d{2}(?::?\d{2})?)")
        elif letter in "zV":
            out.append(r"(?P<zone>[A-Za-z_/+-]+)")
        else:
            out.append(_PARTS[letter])
    return re.compile("".join(out) + r"\Z")


def parse_java(text: Any, pattern: str | None) -> datetime:
    """A datetime (UTC when the text has no offset); ValueError if it does not fit."""
    if pattern == EPOCH_MS or (pattern is None and isinstance(text, int | float)):
        if isinstance(text, int | float) and not isinstance(text, bool):
            millis = int(text)
        else:
            match = _ODATA.match(str(text).strip())
            if match is None:
                raise ValueError(f"{text!r} is not epoch milliseconds or /Date(...)/")
            millis = int(match.group(1))
        return datetime.fromtimestamp(millis / 1000, tz=UTC)
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a date")
    if pattern is None:
        iso = text.strip().replace("Z", "+00:00")
        moment = datetime.fromisoformat(iso)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    match = _parser(pattern).match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} does not match the date pattern {pattern!r}")
    parts = match.groupdict()
    year = (
        int(parts["y"])
        if parts.get("y")
        else (2000 + int(parts["yy"]) if parts.get("yy") else 1970)
    )
    month_text = parts.get("M")
    month = 1
    if month_text:
        month = (
            int(month_text)
            if month_text.isdigit()
            else next(
                i + 1
                for i, name in enumerate(_MONTHS)
                if name.lower().startswith(month_text.lower())
            )
        )
    day = int(parts.get("d") or 1)
    hour = int(parts.get("H") or 0)
    if parts.get("h"):
        hour = int(parts["h"]) % 12 + (12 if (parts.get("a") or "").upper() == "PM" else 0)
    micro = int((parts.get("S") or "0").ljust(6, "0")[:6]) if parts.get("S") else 0
    if parts.get("n"):
        micro = int(parts["n"]) // 1000
    moment = datetime(
        year, month, day, hour, int(parts.get("m") or 0), int(parts.get("s") or 0), micro
    )
    if parts.get("D"):
        moment = moment.replace(month=1, day=1) + timedelta(days=int(parts["D"]) - 1)
    return moment.replace(tzinfo=_zone(parts.get("z")))


def _zone(text: str | None) -> timezone:
    if not text or text == "Z":
        return UTC
    raw = text.removeprefix("GMT").replace(":", "")
    sign = -1 if raw.startswith("-") else 1
    digits = raw[1:]
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def shift(
    moment: datetime,
    *,
    years: int = 0,
    months: int = 0,
    days: int = 0,
    hours: int = 0,
    minutes: int = 0,
    seconds: int = 0,
) -> datetime:
    """Add calendar years and months (clamping the day) and then a duration."""
    total = moment.year * 12 + moment.month - 1 + years * 12 + months
    year, month = divmod(total, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    moved = moment.replace(year=year, month=month + 1, day=day)
    return moved + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
