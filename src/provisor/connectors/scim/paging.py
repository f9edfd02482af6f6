"""Reading a SCIM list endpoint to its end, whatever paging the server does.

The first request asks for SAP cursor paging (``startId=initial``, spec §7.2); a server
without it ignores the parameter and answers the first page by index. A server answering
``nextId`` is read by cursor (``startId=<nextId>`` until ``nextId`` is ``end``); any other
by index (RFC 7644 §3.4.2.4). Index paging does not trust the server blindly: it goes on
past a ``totalResults`` that equals the page (a common bug), stops on an empty page, and
stops when a server ignoring ``startIndex`` sends the same page again. Servers may return
fewer or more resources than ``count``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from provisor.connectors.base import BackendError, Entity, InvalidEntity
from provisor.connectors.http import HTTPClient

END = "end"


@dataclass(frozen=True, slots=True)
class ListPage:
    resources: list[Entity]
    last: bool  # no page follows


def _resources(body: Any, what: str) -> tuple[list[Entity], dict[str, Any]]:
    if not isinstance(body, dict):
        raise BackendError(f"{what}: the answer is not a SCIM ListResponse")
    raw = body.get("Resources", body.get("resources", []))
    if raw is None:
        raw = []
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise BackendError(f"{what}: Resources is not a list of objects")
    return raw, body


def resources_of(body: Any, what: str) -> tuple[list[Entity], dict[str, Any]]:
    """The resources of a ListResponse and the response; BackendError when it is none."""
    return _resources(body, what)


def integer(value: Any) -> int | None:
    """An integer member of a response (a string of digits counts), else None."""
    return _int(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


async def pages(
    http: HTTPClient,
    url: str,
    params: Mapping[str, str | int],
    *,
    count: int,
    cursor: bool = True,
) -> AsyncIterator[ListPage]:
    """Every page of a list request; the last one says so (it may be empty)."""
    what = f"GET {url}"
    query: dict[str, str | int] = {**params, "count": count}
    if cursor:
        # startId alone: a server without cursor paging ignores it and starts at index 1
        try:
            body = await http.json("GET", url, params={**query, "startId": "initial"})
        except InvalidEntity:  # a strict server refusing the SAP parameter
            body = await http.json("GET", url, params=query)
    else:
        body = await http.json("GET", url, params=query)
    resources, body = _resources(body, what)
    next_id = body.get("nextId")
    if cursor and isinstance(next_id, str):
        async for page in _cursor_pages(http, url, query, resources, next_id, what):
            yield page
        return
    async for page in _index_pages(http, url, query, resources, body, count, what):
        yield page


async def _cursor_pages(
    http: HTTPClient,
    url: str,
    query: dict[str, str | int],
    resources: list[Entity],
    next_id: str | None,
    what: str,
) -> AsyncIterator[ListPage]:
    start = "initial"
    while True:
        last = not resources or not next_id or next_id == END or next_id == start
        yield ListPage(resources, last)
        if last:
            return
        assert next_id is not None
        start = query["startId"] = next_id
        body = await http.json("GET", url, params=query)
        resources, body = _resources(body, what)
        value = body.get("nextId")
        next_id = value if isinstance(value, str) else None


async def _index_pages(
    http: HTTPClient,
    url: str,
    query: dict[str, str | int],
    resources: list[Entity],
    body: dict[str, Any],
    count: int,
    what: str,
) -> AsyncIterator[ListPage]:
    seen = 0
    previous_ids: set[Any] = set()
    while True:
        if resources and resources[0].get("id") in previous_ids:
            yield ListPage([], True)  # the server ignores startIndex: this page came before
            return
        seen += len(resources)
        total = _int(body.get("totalResults"))
        last = not resources or (
            total is not None
            and seen >= total
            # a totalResults equal to a full page may be the size of the page (a known bug)
            and (len(resources) < count or total != len(resources))
        )
        yield ListPage(resources, last)
        if last:
            return
        previous_ids = {r.get("id") for r in resources} - {None}
        query["startIndex"] = seen + 1
        body_any = await http.json("GET", url, params=query)
        resources, body = _resources(body_any, what)
