"""Substring search (``co``, ``sw``, ``ew``) served by an index gives exactly what a scan gives.

On SQLite the index is the FTS5 trigram table kept by triggers (search_values / search_text);
on PostgreSQL the B-tree of trigrams search_trigrams, kept by triggers too. Hypothesis
generates stored values and searched values (wildcards, quotes, backslashes, unicode, one or
two characters) and compares, on both databases, the ids found through the index, by a scan,
and by Python.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from provisor.directory import store
from provisor.directory.service import ListQuery
from provisor.runtime import Services
from provisor.storage import tables as t
from provisor.storage.database import Database
from provisor.storage.filters import FilterCompiler, parse_filter
from provisor.types import EntityType
from tests.conftest import CTX

BASE = "https://provisor.example/scim"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
# Characters that matter: LIKE's wildcards and escape, JSON's quote and backslash, FTS5's
# quote, letters whose case folds (one to two characters, final sigma), a space, the @.
ALPHABET = list("abcAB%_/\\\"' .@-éÉß\u0130\u0131\u03a3\u03c3\u03c2Жж1")
stored = st.text(alphabet=ALPHABET, min_size=0, max_size=10)
ATTRIBUTES = ("userName", "displayName", "emails.value")


def _create_user(services: Services, user_name: str, display: str, emails: list[str]) -> str:
    body: dict[str, Any] = {"schemas": [USER], "userName": user_name}
    if display:
        body["displayName"] = display
    if emails:
        body["emails"] = [{"value": e, "type": "work"} for e in emails]
    created = services.directory.create(CTX, EntityType.USER, body, BASE)
    return str(orjson.loads(created.body or b"{}")["id"])


def _values(user: dict[str, Any], attribute: str) -> list[str]:
    if attribute == "emails.value":
        return [e["value"] for e in user.get("emails", [])]
    value = user.get(attribute)
    return [value] if value else []


def _matches(value: str, op: str, needle: str) -> bool:
    value, needle = value.lower(), needle.lower()
    if op == "co":
        return needle in value
    return value.startswith(needle) if op == "sw" else value.endswith(needle)


def _found(services: Services, kind: EntityType, filter_text: str, *, indexed: bool) -> set[str]:
    """The ids matching the filter through the index, or by a scan (SQLite: the compiler
    without its search index; PostgreSQL: the planner without index or bitmap scans)."""
    db = services.directory.db
    with db.write(CTX) as tx:
        rt = services.directory.catalog.tools(tx).filters[kind].rt
        where = FilterCompiler(rt, db.dialect, indexed=indexed).compile(parse_filter(filter_text))
        if db.dialect == "postgresql":
            off = ("seqscan",) if indexed else ("indexscan", "bitmapscan", "indexonlyscan")
            for name in off:
                tx.execute(text(f"SET LOCAL enable_{name} = off"))
        return {res.id for res in store.query(tx, kind, where)}


def _search_rows(services: Services) -> int:
    """The rows of the search index (SQLite: values; PostgreSQL: trigrams)."""
    db = services.directory.db
    name = "search_values" if db.dialect == "sqlite" else "search_trigrams"
    with db.unscoped_read() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one())


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    users=st.lists(st.tuples(stored, stored, st.lists(stored, max_size=2)), min_size=1, max_size=4),
    data=st.data(),
)
def test_indexed_search_finds_what_a_scan_finds(
    services: Services, users: list[tuple[str, str, list[str]]], data: st.DataObject
) -> None:
    docs: dict[str, dict[str, Any]] = {}
    try:
        for i, (name, display, emails) in enumerate(users):
            user_name = f"{name}#{i}"  # unique, and never empty
            unique = [f"{e}#{i}.{j}" for j, e in enumerate(emails)]  # e-mails are unique too
            uid = _create_user(services, user_name, display, unique)
            docs[uid] = {
                "userName": user_name,
                "displayName": display,
                "emails": [{"value": e} for e in unique],
            }
        for _ in range(5):
            attribute = data.draw(st.sampled_from(ATTRIBUTES))
            op = data.draw(st.sampled_from(["co", "sw", "ew"]))
            held = [v for doc in docs.values() for v in _values(doc, attribute)]
            piece = data.draw(st.booleans())
            if held and piece:  # a piece of a stored value, case swapped
                value = data.draw(st.sampled_from(held))
                start = data.draw(st.integers(0, len(value)))
                end = data.draw(st.integers(start, len(value)))
                needle = value[start:end].swapcase()
            else:
                needle = data.draw(st.text(alphabet=ALPHABET, max_size=5))
            filter_text = f"{attribute} {op} {json.dumps(needle)}"
            expected = {
                uid
                for uid, doc in docs.items()
                if any(_matches(v, op, needle) for v in _values(doc, attribute))
            }
            indexed = _found(services, EntityType.USER, filter_text, indexed=True)
            scanned = _found(services, EntityType.USER, filter_text, indexed=False)
            assert indexed == scanned == expected, filter_text
    finally:
        for uid in docs:
            services.directory.delete(CTX, EntityType.USER, uid)
    assert _search_rows(services) == 0  # deleting a user deletes what the index holds of it


def test_renaming_and_changing_emails_moves_the_searched_values(services: Services) -> None:
    uid = _create_user(services, "Alice.Original", "First Display", ["one@Old.example"])
    ops = [
        {"op": "replace", "path": "userName", "value": "Bob.Renamed"},
        {"op": "replace", "path": "displayName", "value": "Second Display"},
        {"op": "replace", "path": "emails", "value": [{"value": "two@New.example"}]},
    ]
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}
    services.directory.patch(CTX, EntityType.USER, uid, body, BASE)
    user = EntityType.USER
    for gone in ('userName co "original"', 'displayName co "first"', 'emails.value co "old."'):
        assert _found(services, user, gone, indexed=True) == set(), gone
    for found in ('userName co "renamed"', 'displayName ew "display"', 'emails.value co "new."'):
        assert _found(services, user, found, indexed=True) == {uid}, found
    held = "bob.renamed", "second display", "two@new.example"
    if services.directory.db.dialect == "sqlite":
        assert _search_rows(services) == len(held)
    else:  # every trigram of each value, between \x02 and \x03
        assert _search_rows(services) == sum(len(v) for v in held)


def _postings(values: list[str]) -> int:
    """PostgreSQL's postings for these values: each value's distinct trigrams, \x02 ... \x03."""
    return sum(len({f"\x02{v}\x03"[i : i + 3] for i in range(len(v))}) for v in values)


def test_removing_one_of_emails_sharing_trigrams_keeps_the_others_found(
    services: Services,
) -> None:
    """Two e-mails of one user share trigrams ("@example.com"); removing one, or many out of
    many, leaves each remaining e-mail found and the index holding exactly their values."""
    emails = [f"m{i}@example.com" for i in range(60)]
    uid = _create_user(services, "shared.trigrams", "", emails)
    patch_op = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    gone, kept = emails[:45], emails[45:]
    remove = {"op": "remove", "path": "emails", "value": [{"value": e} for e in gone]}
    services.directory.patch(
        CTX, EntityType.USER, uid, {"schemas": [patch_op], "Operations": [remove]}, BASE
    )
    user = EntityType.USER
    for e in kept:
        assert _found(services, user, f'emails.value co "{e[:4]}"', indexed=True) == {uid}, e
    assert _found(services, user, 'emails.value co "@example.com"', indexed=True) == {uid}
    assert _found(services, user, 'emails.value sw "m1@"', indexed=True) == set()
    replace = {"op": "replace", "path": "emails", "value": [{"value": "solo@example.com"}]}
    services.directory.patch(CTX, user, uid, {"schemas": [patch_op], "Operations": [replace]}, BASE)
    assert _found(services, user, 'emails.value co "example.com"', indexed=True) == {uid}
    assert _found(services, user, 'emails.value co "m45"', indexed=True) == set()
    if services.directory.db.dialect == "postgresql":
        assert _search_rows(services) == _postings(["shared.trigrams", "solo@example.com"])
    else:
        assert _search_rows(services) == 2


def test_group_display_names_are_searched(services: Services) -> None:
    made = services.directory.create(
        CTX, EntityType.GROUP, {"schemas": [GROUP], "displayName": "Finance Ops"}, BASE
    )
    gid = str(orjson.loads(made.body or b"{}")["id"])
    _create_user(services, "finance.user", "Finance Person", [])  # a user: not a group
    group = EntityType.GROUP
    assert _found(services, group, 'displayName co "NANCE"', indexed=True) == {gid}
    assert _found(services, group, 'displayName co "xyz"', indexed=True) == set()
    ops = [{"op": "replace", "path": "displayName", "value": "Treasury"}]
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}
    services.directory.patch(CTX, group, gid, body, BASE)
    assert _found(services, group, 'displayName co "nance"', indexed=True) == set()
    assert _found(services, group, 'displayName co "asur"', indexed=True) == {gid}


# -- combinations, paging, sorting and counting through the directory's search ---------------


@pytest.fixture
def people(services: Services) -> Iterator[dict[str, dict[str, Any]]]:
    """30 users: userName person.NN@<domain>, displayName by team, two e-mails for some."""
    docs: dict[str, dict[str, Any]] = {}
    for i in range(30):
        domain = ["example.com", "Example.org", "mail.test"][i % 3]
        name = f"Person.{i:02d}@{domain}"
        display = ["Blue Team", "Red team", "green TEAM"][i % 3] if i % 4 else ""
        emails = [f"p{i}@{domain}"] + ([f"private{i}@home.test"] if i % 2 else [])
        uid = _create_user(services, name, display, emails)
        docs[uid] = {"userName": name, "displayName": display, "emails": emails}
    yield docs


def _search(services: Services, **query: Any) -> dict[str, Any]:
    page = services.directory.search(CTX, EntityType.USER, ListQuery(**query), BASE)
    found: dict[str, Any] = orjson.loads(page)
    return found


@pytest.mark.parametrize(
    ("filter_text", "wanted"),
    [
        ('userName co "example" and emails.value ew ".test"', lambda d: _ex(d) and _home(d)),
        (
            'userName co "example" or displayName co "RED"',
            lambda d: _ex(d) or "red" in _dn(d).lower(),
        ),
        ('not (userName co "example")', lambda d: not _ex(d)),
        (
            'displayName co "team" and not (displayName sw "blue")',
            lambda d: _dn(d) and not _dn(d).lower().startswith("blue"),
        ),
        (
            'emails.value co "e1" or userName ew ".org"',
            lambda d: _e1(d) or d["userName"].endswith(".org"),
        ),
        (
            'userName co "on.1" and (emails.value co "iv" or userName sw "p")',
            lambda d: "on.1" in d["userName"],
        ),
    ],
)
def test_combinations_page_sort_and_count_like_the_oracle(
    services: Services, people: dict[str, dict[str, Any]], filter_text: str, wanted: Any
) -> None:
    expected = sorted((d["userName"].lower() for d in people.values() if wanted(d)), reverse=True)
    names: list[str] = []
    start = 1
    while True:
        page = _search(
            services,
            filter=filter_text,
            sort_by="userName",
            sort_order="descending",
            start_index=start,
            count=4,
        )
        assert page["totalResults"] == len(expected)
        names += [r["userName"].lower() for r in page.get("Resources", [])]
        start += 4
        if start > page["totalResults"]:
            break
    assert names == expected


def _ex(doc: dict[str, Any]) -> bool:
    return "example" in doc["userName"].lower()


def _dn(doc: dict[str, Any]) -> str:
    return str(doc["displayName"])


def _home(doc: dict[str, Any]) -> bool:
    return any(e.endswith(".test") for e in doc["emails"])


def _e1(doc: dict[str, Any]) -> bool:
    return any("e1" in e for e in doc["emails"])


# -- the index serves them ----------------------------------------------------------------------

_MANY_USERS = """INSERT INTO users (tenant, id, user_name, user_name_key, display_name,
    display_name_key, created, last_modified, version, doc)
    SELECT 'default', 'gen-' || g, 'gen' || g || '@example.com', 'gen' || g || '@example.com',
        'Team ' || (g % 50), 'team ' || (g % 50), '2026-01-01T00:00:00.000000Z',
        '2026-01-01T00:00:00.000000Z', 1, '{"pad": "PAD"}'
    FROM numbers"""
_MANY_USERS = _MANY_USERS.replace("PAD", "x" * 1200)  # a user's document is ~1 KB
_MANY_EMAILS = """INSERT INTO user_emails (tenant, user_id, value_key)
    SELECT 'default', 'gen-' || g, 'gen' || g || '@mail.example' FROM numbers"""


@pytest.mark.parametrize(
    "filter_text",
    ['userName co "n123@"', 'emails.value ew "77@mail.example"', 'displayName co "team 42"'],
)
def test_the_plan_uses_the_index(services: Services, filter_text: str) -> None:
    """With 5,000 users (made by SQL: fast), the database's own planner takes the index."""
    db = services.directory.db
    numbers = (
        "WITH RECURSIVE numbers(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM numbers "
        "WHERE g < 5000) "
    )
    with db.unscoped_write() as conn:
        for statement in (_MANY_USERS, _MANY_EMAILS):
            insert, _, rest = statement.partition("SELECT")
            conn.execute(text(f"{insert} {numbers} SELECT{rest}"))
        conn.execute(text("ANALYZE users"))
        conn.execute(text("ANALYZE user_emails"))
    with db.read(CTX) as tx:
        rt = services.directory.catalog.tools(tx).filters[EntityType.USER].rt
        where = FilterCompiler(rt, db.dialect).compile(parse_filter(filter_text))
        stmt = tx.scoped(select(t.users.c.id).where(where), t.users)
        compiled = stmt.compile(tx.conn, compile_kwargs={"render_postcompile": True})
        if db.dialect == "sqlite":
            params = tuple(compiled.params[name] for name in compiled.positiontup or ())
            rows = tx.conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params)
            plan = " ".join(str(row[3]) for row in rows)
            assert "search_text VIRTUAL TABLE" in plan, plan
        else:
            rows = tx.conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
            plan = " ".join(row[0] for row in rows)
            assert "search_trigrams_lookup" in plan, (
                plan
            )  # under row-level security, as provisor_app
        assert len(store.query(tx, EntityType.USER, where)) >= 1


def test_the_trigrams_are_under_row_level_security(pg_database: str) -> None:
    db = Database(pg_database)
    try:
        with db.unscoped_read() as conn:
            row = conn.execute(
                text(
                    "SELECT relrowsecurity, relforcerowsecurity, "
                    "(SELECT count(*) FROM pg_policy WHERE polrelid = c.oid) "
                    "FROM pg_class AS c WHERE relname = 'search_trigrams'"
                )
            ).one()
    finally:
        db.dispose()
    assert tuple(row) == (True, True, 1)
