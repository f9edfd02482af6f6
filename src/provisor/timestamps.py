"""Times as provisor stores and sends them: ISO 8601, UTC, microseconds, 'Z'.

Written this way, times sort and compare as text, in SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import UTC, datetime


def format_datetime(moment: datetime) -> str:
    """A dateTime as provisor writes it: UTC, microseconds, 'Z' (sorts as text)."""
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def now() -> str:
    """The current time as provisor writes it (see format_datetime)."""
    return format_datetime(datetime.now(UTC))


def parse_datetime(raw: str) -> datetime:
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment
