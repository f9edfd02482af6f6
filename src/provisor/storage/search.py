"""Substring search (``co``, ``sw``, ``ew``) on the directory's folded values, and the SQL
that SQLite's search index answers (decision 0031).

On PostgreSQL the folded columns themselves have pg_trgm GIN indexes (migration 0023): a
``LIKE`` on them is served by the index, nothing more to say. On SQLite triggers copy each
searched value (userName, displayName, emails.value of users; displayName of groups) into a
row of ``search_values``, indexed by the FTS5 table ``search_text`` with the trigram
tokenizer; a phrase of three characters or more finds the rows holding it, and the exact
``LIKE`` on those rows keeps SCIM's semantics. Shorter values have no trigram: they scan the
narrow ``search_values`` table (``sw`` is a range of the column's B-tree instead).
"""

from __future__ import annotations

from typing import Any

from scim2_models.path import CompareOperator
from sqlalchemy import ColumnElement, Select, and_, column, literal_column, select, table

from provisor.text import unstorable

ESCAPE = "/"
# The attributes search_values holds: one column each (the others are NULL in its row).
USER_NAME = "user_name"
USER_DISPLAY_NAME = "user_display_name"
USER_EMAIL = "user_email"
GROUP_DISPLAY_NAME = "group_display_name"

values = table(
    "search_values",
    column("id"),
    column("owner_id"),
    *(column(name) for name in (USER_NAME, USER_DISPLAY_NAME, USER_EMAIL, GROUP_DISPLAY_NAME)),
)
_text = table("search_text", column("rowid"))
_MATCH = literal_column("search_text")


def like(expr: Any, op: CompareOperator, value: str) -> ColumnElement[bool]:
    """``expr`` contains (co), starts with (sw) or ends with (ew) ``value``: one LIKE whose
    pattern is one bound value, wildcards in ``value`` escaped (a B-tree serves ``sw`` on
    SQLite, a trigram index every one on PostgreSQL)."""
    escaped = (
        value.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")
    )
    pattern = {
        CompareOperator.co: f"%{escaped}%",
        CompareOperator.sw: f"{escaped}%",
        CompareOperator.ew: f"%{escaped}",
    }[op]
    return expr.like(pattern, escape=ESCAPE)  # type: ignore[no-any-return]


def has_trigrams(value: str) -> bool:
    """Whether the trigram index can find ``value``: three characters or more, all storable
    (a key never holds NUL or a lone surrogate, which FTS5's query text cannot carry)."""
    return len(value) >= 3 and unstorable(value) is None


def owners(attribute: str, op: CompareOperator, value: str) -> Select[Any]:
    """SQLite: the ids of the users or groups whose ``attribute`` (a column of
    search_values) matches ``value`` (folded) by ``op``; through search_text when ``value``
    has trigrams, else by a scan of search_values' rows."""
    held = values.c[attribute]
    cond = like(held, op, value)
    if has_trigrams(value):
        phrase = '"' + value.replace('"', '""') + '"'
        hits = select(_text.c.rowid).where(_MATCH.op("MATCH")(f"{{{attribute}}}: {phrase}"))
        cond = and_(values.c.id.in_(hits), cond)
    else:
        cond = and_(held.is_not(None), cond)
    return select(values.c.owner_id).where(cond)
