"""Substring search (``co``, ``sw``, ``ew``) on the directory's folded values: the SQL the
search index answers on each database (migration 0023, decision 0031).

The searched values are userName, displayName and emails.value of users and displayName of
groups; triggers keep the index in the transaction that writes the row. The index finds the
candidates, and the exact ``LIKE`` on them keeps SCIM's semantics (wildcards, case).

* SQLite: each value is a row of ``search_values``, indexed by the FTS5 table ``search_text``
  with the trigram tokenizer; a phrase of three characters or more finds the rows holding it.
  Shorter values scan the narrow ``search_values`` table; ``sw`` is a range of the folded
  column's B-tree (LIKE with a fixed prefix) and needs neither.
* PostgreSQL: ``search_trigrams`` holds each value's trigrams (the value between \\x02 and
  \\x03) in a B-tree: the owners holding every trigram of the searched value are the
  candidates. Not pg_trgm's GIN indexes: under row-level security PostgreSQL puts only
  leakproof operators into an index scan, and LIKE and the GIN operators are not. A ``co``
  shorter than three characters (``sw``/``ew``: two) has no trigram and scans.
"""

from __future__ import annotations

from typing import Any

from scim2_models.path import CompareOperator
from sqlalchemy import ColumnElement, Select, and_, column, func, literal_column, select, table

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
_MATCH: Any = literal_column("search_text")
trigrams_table = table(
    "search_trigrams", column("attribute"), column("trigram"), column("owner_id")
)
ATTRIBUTE_CODES = {USER_NAME: 1, USER_DISPLAY_NAME: 2, USER_EMAIL: 3, GROUP_DISPLAY_NAME: 4}
START, END = "\x02", "\x03"  # around a value in search_trigrams: sw and ew find its ends


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


def trigrams(op: CompareOperator, value: str) -> set[str]:
    """PostgreSQL: trigrams that every value matching ``value`` (folded) by ``op`` holds in
    search_trigrams — those that tile it (every third, and the last: each character is in
    one), nearly as selective as all of them for a third of the index entries; none when
    the value is too short (or cannot be stored)."""
    if unstorable(value) is not None:
        return set()
    wrapped = (START if op is CompareOperator.sw else "") + value
    wrapped += END if op is CompareOperator.ew else ""
    if len(wrapped) < 3:
        return set()
    starts = [*range(0, len(wrapped) - 2, 3), len(wrapped) - 3]
    return {wrapped[i : i + 3] for i in starts}


def trigram_owners(attribute: str, grams: set[str]) -> Select[Any]:
    """PostgreSQL: the ids of the users or groups whose ``attribute`` holds every one of
    ``grams`` (the candidates: the caller checks the value itself)."""
    st = trigrams_table
    return (
        select(st.c.owner_id)
        .where(st.c.attribute == ATTRIBUTE_CODES[attribute], st.c.trigram.in_(sorted(grams)))
        .group_by(st.c.owner_id)
        .having(func.count(st.c.trigram.distinct()) == len(grams))
    )
