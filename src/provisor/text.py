"""Characters a text value may not hold because a database cannot store them."""

from __future__ import annotations

import re

# PostgreSQL refuses NUL in text (and \u0000 in JSON); a lone surrogate has no UTF-8 form.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(value: str) -> str | None:
    """What is wrong with ``value`` (e.g. "a NUL character"), or None when it can be stored."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    return "a NUL character" if found.group() == "\x00" else "a lone surrogate character"


def storable(value: str) -> str:
    """``value`` with each character no database can store replaced by U+FFFD (for records
    of what a caller sent, such as the audit log's: kept, never refused)."""
    return _UNSTORABLE.sub("\ufffd", value)
