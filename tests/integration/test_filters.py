"""SCIM filters compiled to SQL, checked against an independent in-memory oracle.

A corpus of users is loaded once per backend; Hypothesis then generates filters (every
operator, and/or/not, grouping, value paths, extension URNs) and compares the ids the
server returns with the ids the oracle selects from the same users.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisor.settings import Settings
from tests.conftest import (
    BACKENDS,
    LiveServer,
    create_pg_database,
    drop_pg_database,
    pg_url,
    serve,
)
from tests.helpers import ENTERPRISE, SAP_USER, USER, create, scim_error

# attribute path -> (type, caseExact, multi-valued)
ATTRIBUTES: dict[str, tuple[str, bool, bool]] = {
    "userName": ("string", False, False),
    "displayName": ("string", False, False),
    "title": ("string", False, False),
    "externalId": ("string", True, False),
    "name.familyName": ("string", False, False),
    "active": ("boolean", False, False),
    "emails.value": ("string", False, True),
    "emails.type": ("string", False, True),
    "addresses.country": ("string", False, True),
    f"{ENTERPRISE}:department": ("string", False, False),
    f"{ENTERPRISE}:employeeNumber": ("string", False, False),
    f"{SAP_USER}:sourceSystem": ("integer", False, False),
    "meta.lastModified": ("dateTime", False, False),
}
STRING_OPS = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
NUMBER_OPS = ["eq", "ne", "gt", "ge", "lt", "le"]

WORDS = ["alpha", "Beta", "gamma", "ALPHABET", "délta", "Éclair", "x_y%z", "o'brien", "zeta"]


def _user(i: int) -> dict[str, Any]:
    word = WORDS[i % len(WORDS)]
    body: dict[str, Any] = {
        "schemas": [USER, ENTERPRISE],
        "userName": f"{word}.{i:03d}",
        "externalId": f"EXT-{word}-{i % 4}",
        "active": i % 3 != 0,
        "name": {"familyName": WORDS[(i * 7) % len(WORDS)], "givenName": "G"},
        "emails": [{"value": f"{word}{i}@Example.org", "type": "work", "primary": True}],
        ENTERPRISE: {"employeeNumber": f"{1000 + i * 37 % 500}"},
    }
    if i % 2:
        body["displayName"] = f"{word.upper()} {i}"
        body["emails"].append({"value": f"home{i}@mail.example", "type": "home"})
    if i % 5:
        body["title"] = ["Engineer", "manager", "CEO", "engineer II"][i % 4]
        body["addresses"] = [{"country": ["DE", "US", "fr"][i % 3], "type": "work"}]
    if i % 4 != 1:
        body[ENTERPRISE]["department"] = ["R&D", "Sales", "sales ops", "HR"][i % 4]
    if i % 3 == 1:
        body["schemas"].append(SAP_USER)
        body[SAP_USER] = {"sourceSystem": [39, 100, 101, 7][i % 4]}
    return body


# -- the oracle ---------------------------------------------------------------------------------


def _values(user: dict[str, Any], path: str) -> list[Any]:
    if ":" in path and path.startswith("urn:"):
        urn, _, attr = path.rpartition(":")
        container = user.get(urn, {})
        return [container[attr]] if attr in container else []
    head, _, sub = path.partition(".")
    value = user.get(head)
    if value is None:
        return []
    if isinstance(value, list):
        return [item[sub] for item in value if sub in item]
    if sub:
        return [value[sub]] if sub in value else []
    return [value]


def _compare(kind: str, exact: bool, value: Any, op: str, operand: Any) -> bool:
    if kind == "string" and not exact:
        value, operand = value.lower(), operand.lower()
    return {
        "eq": lambda: value == operand,
        "ne": lambda: value != operand,
        "co": lambda: operand in value,
        "sw": lambda: value.startswith(operand),
        "ew": lambda: value.endswith(operand),
        "gt": lambda: value > operand,
        "ge": lambda: value >= operand,
        "lt": lambda: value < operand,
        "le": lambda: value <= operand,
    }[op]()


def oracle(user: dict[str, Any], node: Any) -> bool:
    kind = node[0]
    if kind == "and":
        return oracle(user, node[1]) and oracle(user, node[2])
    if kind == "or":
        return oracle(user, node[1]) or oracle(user, node[2])
    if kind == "not":
        return not oracle(user, node[1])
    if kind == "emails[]":
        return any(oracle({"emails": [item]}, node[1]) for item in user.get("emails", []))
    _, path, op, operand = node
    attr_type, exact, _ = ATTRIBUTES[path]
    values = _values(user, path)
    if op == "pr":
        return any(v not in ("", None) for v in values)
    if not values:
        return op == "ne"
    return any(_compare(attr_type, exact, v, op, operand) for v in values)


def render(node: Any) -> str:
    kind = node[0]
    if kind in ("and", "or"):
        return f"({render(node[1])} {kind} {render(node[2])})"
    if kind == "not":
        return f"not ({render(node[1])})"
    if kind == "emails[]":
        return f"emails[{render(node[1]).replace('emails.', '')}]"
    _, path, op, operand = node
    if op == "pr":
        return f"{path} pr"
    return f"{path} {op} {json.dumps(operand)}"


# -- the generator --------------------------------------------------------------------------------


def comparisons(corpus: list[dict[str, Any]]) -> st.SearchStrategy[Any]:
    @st.composite
    def comparison(draw: st.DrawFn, paths: list[str] | None = None) -> Any:
        path = draw(st.sampled_from(paths or list(ATTRIBUTES)))
        attr_type = ATTRIBUTES[path][0]
        seen = [v for user in corpus for v in _values(user, path)]
        if attr_type == "boolean":
            return ("cmp", path, draw(st.sampled_from(["eq", "ne", "pr"])), draw(st.booleans()))
        if attr_type == "integer":
            op = draw(st.sampled_from([*NUMBER_OPS, "pr"]))
            return ("cmp", path, op, draw(st.sampled_from([7, 39, 50, 100, 101, 500])))
        ops = NUMBER_OPS if attr_type == "dateTime" else STRING_OPS
        op = draw(st.sampled_from([*ops, "pr"]))
        if attr_type == "dateTime":
            return ("cmp", path, op, draw(st.sampled_from(seen)))
        if seen:
            base = draw(st.sampled_from(seen))
            cut = draw(st.integers(0, len(base)))
            variant = draw(st.sampled_from(["whole", "head", "tail", "upper", "other"]))
            operand = {
                "whole": base,
                "head": base[:cut] or base,
                "tail": base[cut:] or base,
                "upper": base.upper(),
                "other": draw(st.sampled_from(WORDS)),
            }[variant]
        else:
            operand = draw(st.sampled_from(WORDS))
        return ("cmp", path, op, operand)

    email_paths = ["emails.value", "emails.type"]
    leaf = st.one_of(
        comparison(),
        st.tuples(st.just("emails[]"), comparison(email_paths)),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(st.just("and"), inner, inner),
            st.tuples(st.just("or"), inner, inner),
            st.tuples(st.just("not"), inner),
        ),
        max_leaves=4,
    )


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def corpus_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, list[dict[str, Any]]]]:
    data_dir: Path = tmp_path_factory.mktemp("corpus")
    database = None
    if request.param == "postgresql":
        template = request.getfixturevalue("pg_template")
        database = f"provisor_corpus_{uuid.uuid4().hex[:10]}"
        create_pg_database(database, template)
    settings_ = Settings(data_dir=data_dir, database_url=pg_url(database) if database else None)
    try:
        with serve(settings_) as live, live.client() as client:
            users = [create(client, "/scim/Users", _user(i)) for i in range(60)]
            yield live, users
    finally:
        if database:
            drop_pg_database(database)


_STRATEGIES: dict[int, st.SearchStrategy[Any]] = {}


def _ids(client: httpx.Client, text: str) -> set[str]:
    response = client.get("/scim/Users", params={"filter": text, "count": 1000})
    assert response.status_code == 200, (text, response.text)
    body = response.json()
    assert body["totalResults"] == len(body["Resources"])
    return {r["id"] for r in body["Resources"]}


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_filters_match_the_oracle(
    corpus_server: tuple[LiveServer, list[dict[str, Any]]], data: st.DataObject
) -> None:
    live, users = corpus_server
    strategy = _STRATEGIES.setdefault(id(users), comparisons(users))
    node = data.draw(strategy)
    text = render(node)
    with live.client() as client:
        got = _ids(client, text)
    expected = {u["id"] for u in users if oracle(u, node)}
    assert got == expected, text


def test_each_operator_by_example(
    corpus_server: tuple[LiveServer, list[dict[str, Any]]],
) -> None:
    live, users = corpus_server
    by_name = {u["userName"]: u["id"] for u in users}
    with live.client() as client:
        assert _ids(client, 'userName eq "ALPHA.000"') == {by_name["alpha.000"]}
        assert _ids(client, 'externalId eq "ext-alpha-0"') == set()  # caseExact
        assert len(_ids(client, 'userName ne "alpha.000"')) == len(users) - 1
        assert _ids(client, 'userName sw "délta"') == {
            i for n, i in by_name.items() if n.startswith("délta")
        }
        assert _ids(client, 'userName sw "DÉLTA"') == _ids(client, 'userName sw "délta"')
        assert _ids(client, 'emails co "x_y%z"') == {
            i for n, i in by_name.items() if n.startswith("x_y%z")
        }
        assert _ids(client, 'userName co "_"') == _ids(client, 'userName sw "x_y"')
        assert _ids(client, 'emails[type eq "home" and value ew "MAIL.EXAMPLE"]') == {
            u["id"] for u in users if len(u["emails"]) == 2
        }
        assert _ids(client, "title pr") == {u["id"] for u in users if "title" in u}
        assert _ids(client, f"{SAP_USER}:sourceSystem ge 100") == {
            u["id"] for u in users if u.get(SAP_USER, {}).get("sourceSystem", 0) >= 100
        }
        assert _ids(client, 'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "alpha.000"')
        stamp = users[30]["meta"]["lastModified"]
        assert _ids(client, f'meta.lastModified gt "{stamp}"') == {u["id"] for u in users[31:]}
        assert _ids(client, 'not (active eq true) and title eq "engineer"') == {
            u["id"] for u in users if not u["active"] and u.get("title", "").lower() == "engineer"
        }


def test_invalid_filters(corpus_server: tuple[LiveServer, list[dict[str, Any]]]) -> None:
    live, _ = corpus_server
    with live.client() as client:
        for text in [
            "userName eq",
            'userName xx "a"',
            "shoeSize eq 42",
            "active gt true",
            "userName eq 42",
            f'{SAP_USER}:sourceSystem co "3"',
            'meta.lastModified gt "yesterday"',
            'emails[type eq "work"',
            '(userName eq "a"',
        ]:
            response = client.get("/scim/Users", params={"filter": text})
            scim_error(response, 400, "invalidFilter")


def test_sorting_and_paging(corpus_server: tuple[LiveServer, list[dict[str, Any]]]) -> None:
    live, users = corpus_server
    with live.client() as client:

        def names(**params: Any) -> list[str]:
            body = client.get("/scim/Users", params=params).json()
            return [r["userName"] for r in body["Resources"]]

        expected = sorted((u["userName"] for u in users), key=str.lower)
        assert names(sortBy="userName", count=1000) == expected
        assert names(sortBy="userName", sortOrder="descending", count=1000) == expected[::-1]
        page = client.get(
            "/scim/Users", params={"sortBy": "userName", "startIndex": 11, "count": 5}
        ).json()
        assert page["startIndex"] == 11 and page["itemsPerPage"] == 5
        assert page["totalResults"] == len(users)
        assert [r["userName"] for r in page["Resources"]] == expected[10:15]
        # sort on a sub-attribute and on a multi-valued attribute (primary value)
        families = names(sortBy="name.familyName", count=1000)
        assert len(families) == len(users)
        by_email = names(sortBy="emails", count=1000)
        assert len(by_email) == len(users)
        zero = client.get("/scim/Users", params={"count": 0}).json()
        assert zero["totalResults"] == len(users) and zero["Resources"] == []
        beyond = client.get("/scim/Users", params={"startIndex": 1000}).json()
        assert beyond["totalResults"] == len(users) and beyond["Resources"] == []


def test_cursor_paging_reads_everything_once(
    corpus_server: tuple[LiveServer, list[dict[str, Any]]],
) -> None:
    live, users = corpus_server
    seen: list[str] = []
    with live.client() as client:
        start = "initial"
        while start != "end":
            page = client.get("/scim/Users", params={"startId": start, "count": 7}).json()
            assert page["startId"] == start
            assert page["totalResults"] == len(users)
            seen += [r["id"] for r in page["Resources"]]
            start = page["nextId"]
        filtered = client.get(
            "/scim/Users", params={"startId": "initial", "count": 100, "filter": "active eq true"}
        ).json()
    assert sorted(seen) == sorted(u["id"] for u in users)
    assert len(seen) == len(set(seen))
    assert filtered["nextId"] == "end"
    assert filtered["totalResults"] == sum(1 for u in users if u["active"])


def test_value_path_with_a_sub_attribute(
    corpus_server: tuple[LiveServer, list[dict[str, Any]]],
) -> None:
    live, users = corpus_server
    target = users[3]["emails"][0]["value"]
    with live.client() as client:
        hit = _ids(client, f'emails[type eq "work" and primary eq true].value eq "{target}"')
        assert hit == {users[3]["id"]}
        present = _ids(client, 'emails[type eq "home"].value pr')
    assert present == {u["id"] for u in users if len(u["emails"]) == 2}


def test_sorting_by_an_unknown_attribute(
    corpus_server: tuple[LiveServer, list[dict[str, Any]]],
) -> None:
    live, _ = corpus_server
    with live.client() as client:
        scim_error(client.get("/scim/Users", params={"sortBy": "shoeSize"}), 400, "invalidValue")
        scim_error(client.get("/scim/Users", params={"sortBy": "name"}), 400, "invalidValue")
