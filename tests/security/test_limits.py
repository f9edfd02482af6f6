"""Issue 13 item 7: no 500s and no unbounded work from one request, on SQLite and PostgreSQL.

Huge paging numbers, NUL characters, oversized filters and values, costly PATCH requests and
deep JSON get a clear 400 in the protocol's format; PostgreSQL cancels a runaway statement.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from provisor.errors import StorageError
from provisor.storage.database import Database
from tests.conftest import LiveServer
from tests.helpers import USER, create, patch, scim_error, user_body

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
PROBLEM = "application/problem+json"


def search(scim: httpx.Client, endpoint: str, **body: Any) -> httpx.Response:
    return scim.post(f"{endpoint}/.search", json={"schemas": [SEARCH], **body})


def emails_filter(terms: int) -> str:
    return " or ".join(f'emails[value eq "u{i}@example.com"]' for i in range(terms))


# -- paging ----------------------------------------------------------------------------------


@pytest.mark.parametrize("param", ["startIndex", "count"])
def test_huge_paging_numbers_are_a_clear_400(scim: httpx.Client, param: str) -> None:
    create(scim, "/Users", user_body())
    huge = "99999999999999999999"
    body = scim_error(scim.get("/Users", params={param: huge}), 400, "invalidValue")
    assert param in body["detail"]
    scim_error(search(scim, "/Users", **{param: int(huge)}), 400, "invalidValue")
    scim_error(search(scim, "", **{param: int(huge)}), 400, "invalidValue")


def test_large_but_valid_start_index_is_an_empty_page(scim: httpx.Client) -> None:
    create(scim, "/Users", user_body())
    page = scim.get("/Users", params={"startIndex": 2**31 - 1})
    assert page.status_code == 200, page.text
    assert page.json()["Resources"] == [] if "Resources" in page.json() else True


# -- characters no database can store --------------------------------------------------------


def test_nul_in_a_resource_is_the_same_400_on_both_databases(scim: httpx.Client) -> None:
    scim_error(scim.post("/Users", json=user_body("nul\x00name")), 400, "invalidValue")
    user = create(scim, "/Users", user_body())
    bad = {"op": "replace", "path": "displayName", "value": "a\x00b"}
    scim_error(scim.patch(f"/Users/{user['id']}", json=patch(bad)), 400, "invalidValue")
    replaced = user_body(user["userName"], displayName="a\x00b")
    scim_error(scim.put(f"/Users/{user['id']}", json=replaced), 400, "invalidValue")
    bulk = {
        "schemas": [BULK],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": user_body("b\x00ulk")}
        ],
    }
    scim_error(scim.post("/Bulk", json=bulk), 400, "invalidValue")
    assert (
        scim.get("/Users", params={"filter": f'userName eq "{user["userName"]}"'}).json()[
            "totalResults"
        ]
        == 1
    )


def test_nul_in_a_filter_or_an_id_is_a_400(scim: httpx.Client) -> None:
    response = scim.get("/Users", params={"filter": 'userName eq "a\\u0000b"'})
    scim_error(response, 400, "invalidFilter")
    scim_error(scim.get("/Users/%00"), 400, "invalidValue")
    scim_error(scim.delete("/Users/a%00b"), 400, "invalidValue")


def test_nul_in_an_admin_api_body_is_a_problem_400(server: LiveServer) -> None:
    body = {
        "name": "nul-system",
        "description": "a\x00b",
        "type": "csv",
        "role": "target",
        "properties": {"csv.user.file": "users.csv"},
    }
    with server.client(path="/api/v1") as api:
        response = api.post("/systems", json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "NUL" in response.json()["detail"]


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: b"\xef\xbb\xbf" + text.encode(),  # UTF-8 with a byte-order mark
        lambda text: text.encode("utf-16-le"),  # no mark: the standard library guesses it
        lambda text: text.encode("utf-32"),
    ],
    ids=["utf-8-bom", "utf-16-le", "utf-32"],
)
def test_json_that_is_not_utf8_cannot_slip_past_the_checks(server: LiveServer, encode: Any) -> None:
    """Review finding: orjson refused these, so the body check let them through, and the
    admin API's parser (json.loads) accepted them: NUL reached PostgreSQL (500)."""
    text = (
        '{"name": "bom", "type": "csv", "role": "target", "description": "a\\u0000b",'
        ' "properties": {"csv.user.file": "users.csv"}}'
    )
    with server.client(path="/api/v1") as api:
        response = api.post(
            "/systems", content=encode(text), headers={"content-type": "application/json"}
        )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "UTF-8" in response.json()["detail"]


# -- filters -----------------------------------------------------------------------------------


def test_filter_at_the_term_limit_runs_on_both_databases(scim: httpx.Client) -> None:
    create(scim, "/Users", user_body("u5", emails=[{"value": "u5@example.com"}]))
    found = search(scim, "/Users", filter=emails_filter(100))
    assert found.status_code == 200, found.text
    assert found.json()["totalResults"] == 1


@pytest.mark.parametrize("terms", [101, 2000])
def test_filter_over_the_term_limit_is_invalid_filter(scim: httpx.Client, terms: int) -> None:
    body = scim_error(search(scim, "/Users", filter=emails_filter(terms)), 400, "invalidFilter")
    assert "100" in body["detail"]
    body = scim_error(search(scim, "", filter=emails_filter(terms)), 400, "invalidFilter")
    assert "100" in body["detail"]


def test_deeply_nested_filter_is_invalid_filter(scim: httpx.Client) -> None:
    parenthesised = "(" * 40 + 'userName eq "x"' + ")" * 40  # brackets alone nest nothing
    assert scim.get("/Users", params={"filter": parenthesised}).status_code == 200
    alternating = 'userName eq "x"'
    for level in range(20):
        alternating = f'userName eq "{level}" {"and" if level % 2 else "or"} ({alternating})'
    negated = "not (" * 20 + 'userName eq "x"' + ")" * 20
    for text in (alternating, negated):
        body = scim_error(scim.get("/Users", params={"filter": text}), 400, "invalidFilter")
        assert "16 levels" in body["detail"]


def test_long_filter_value_is_invalid_filter(scim: httpx.Client) -> None:
    # SQLite: "LIKE pattern too complex" (503) on main; both databases: a 400 naming the limit.
    text = f'userName co "{"%_" * 30_000}"'
    body = scim_error(search(scim, "/Users", filter=text), 400, "invalidFilter")
    assert "1024" in body["detail"] or "10000" in body["detail"]


# -- values and PATCH --------------------------------------------------------------------------


def test_attribute_value_size_is_limited(scim: httpx.Client) -> None:
    big = "x" * (64 * 1024 + 1)
    body = scim_error(scim.post("/Users", json=user_body(displayName=big)), 400, "invalidValue")
    assert "65536" in body["detail"]
    assert scim.post("/Users", json=user_body(displayName="x" * 64 * 1024)).status_code == 201


def test_costly_patch_is_refused_not_run(scim: httpx.Client) -> None:
    emails = [{"value": f"m{i}-{uuid.uuid4().hex[:6]}@example.com"} for i in range(1000)]
    user = create(scim, "/Users", user_body(emails=emails))
    remove = {"op": "remove", "path": "emails", "value": emails}  # 1,000 x 1,000 comparisons
    body = scim_error(scim.patch(f"/Users/{user['id']}", json=patch(remove)), 400, "tooMany")
    assert "200000" in body["detail"]
    small = {"op": "remove", "path": "emails", "value": emails[:100]}  # 100,000: allowed
    assert scim.patch(f"/Users/{user['id']}", json=patch(small)).status_code == 200


def test_patch_operation_count_is_limited(scim: httpx.Client) -> None:
    user = create(scim, "/Users", user_body())
    ops = [{"op": "replace", "path": "displayName", "value": f"n{i}"} for i in range(1001)]
    body = scim_error(scim.patch(f"/Users/{user['id']}", json=patch(*ops)), 400, "tooMany")
    assert "1000" in body["detail"]


# -- JSON nesting --------------------------------------------------------------------------------


def test_deep_json_is_refused_everywhere(server: LiveServer, scim: httpx.Client) -> None:
    deep: Any = "x"
    for _ in range(40):
        deep = {"a": deep}
    body = scim_error(scim.post("/Users", json={"schemas": [USER], "x": deep}), 400)
    assert "32" in body["detail"]
    with server.client(path="/api/v1") as api:
        response = api.post("/systems", json={"name": "deep", "properties": deep})
    assert response.status_code == 400, response.text
    assert "32" in response.json()["detail"]


# -- 405 -----------------------------------------------------------------------------------------


def test_405_names_the_allowed_methods(scim: httpx.Client, server: LiveServer) -> None:
    response = scim.delete("/Users")
    assert response.status_code == 405
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["Allow"].split(",")}
    empty = scim.post("/Schemas", content=b"", headers={"Content-Type": "application/scim+json"})
    assert empty.status_code == 405
    assert "GET" in empty.headers["Allow"]
    with server.client(path="/api/v1") as api:
        response = api.put("/systems")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"] and "POST" in response.headers["Allow"]


# -- PostgreSQL statement timeout ----------------------------------------------------------------


def test_postgresql_cancels_a_runaway_statement(pg_database: str) -> None:
    db = Database(pg_database, statement_timeout=0.2)
    try:
        with pytest.raises(StorageError, match="PROVISOR_STATEMENT_TIMEOUT_SECONDS"):
            with db.unscoped_read() as conn:
                conn.exec_driver_sql("SELECT pg_sleep(30)")
        with db.unscoped_read() as conn:  # the connection is usable again
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        db.dispose()


def test_admin_listings_refuse_offsets_no_database_takes(server: LiveServer) -> None:
    """Fuzz finding: `offset=3.8e31` on /api/v1/realtime-logs was a 500 (SQLite: Python int
    too large to convert to SQLite INTEGER); every admin listing bounds its offset."""
    huge = "38082344248097045786575096512512"
    with server.client(path="/api/v1") as api:
        for path in ("/realtime-logs", "/systems", "/jobs"):
            answer = api.get(path, params={"offset": huge})
            assert answer.status_code == 400, (path, answer.text)
            assert answer.headers["content-type"].startswith(PROBLEM)
