"""Tracing: one real-time call followed through every target. Its request span continues the
caller's trace (``traceparent``) and holds the change's span, whose children are the writes
to each target; a job's pages have spans of their own with their target writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from provisor import tracing
from provisor.settings import Settings
from provisor.types import EntityType
from tests.conftest import CTX, serve
from tests.jobs.conftest import add_users, lid_source, run_job, system

BASE = "/ipsproxy/service/api/v1/systems"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure(None, exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.configure(None)


def _csv(services: object, name: str, source: str, folder: Path) -> None:
    folder.mkdir()
    system(
        services,  # type: ignore[arg-type]
        name=name,
        type="csv",
        role="target",
        sourceSystemIds=[source],
        properties={
            "csv.user.file": str(folder / "users.csv"),
            "csv.group.file": str(folder / "groups.csv"),
        },
    )


def _children(parent: ReadableSpan, found: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    assert parent.context is not None
    return [s for s in found if s.parent is not None and s.parent.span_id == parent.context.span_id]


def test_a_realtime_call_through_two_targets(
    sqlite_settings: Settings, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    with serve(sqlite_settings) as server:
        services = server.services
        source = lid_source(services)
        _csv(services, "CSV-A", source.id, tmp_path / "a")
        _csv(services, "CSV-B", source.id, tmp_path / "b")
        [ada] = add_users(services, "ada").values()
        entity = json.loads(services.directory.get(CTX, EntityType.USER, ada, "/scim").body or b"")
        spans.clear()
        with server.client(auth=server.new_client("realtime_api"), path=BASE) as api:
            pushed = api.post(
                f"/{source.id}/entities/user", json=entity, headers={"traceparent": TRACEPARENT}
            )
        assert pushed.status_code == 201, pushed.text
    found = spans.get_finished_spans()
    [request] = [s for s in found if s.kind is SpanKind.SERVER]
    assert request.context is not None and f"{request.context.trace_id:032x}" == TRACE_ID
    assert request.name == "POST " + BASE + "/{system_id}/entities/{entity_type}"
    assert request.attributes is not None
    assert request.attributes["http.response.status_code"] == 201
    assert request.attributes["provisor.request_id"] == pushed.headers["x-request-id"]
    [change] = _children(request, found)
    assert change.name == "realtime change"
    writes = _children(change, found)
    assert sorted((w.name, (w.attributes or {})["provisor.target"]) for w in writes) == [
        ("target write", "CSV-A"),
        ("target write", "CSV-B"),
    ]
    assert {f"{s.context.trace_id:032x}" for s in found if s.context} == {TRACE_ID}


def test_a_job_page_holds_its_target_writes(
    sqlite_settings: Settings, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    from provisor.runtime import Services

    services = Services.open(sqlite_settings)
    try:
        source = lid_source(services)
        _csv(services, "CSV-A", source.id, tmp_path / "a")
        add_users(services, "ada", "bob")
        spans.clear()
        run_job(services, "LID")
    finally:
        services.close()
    found = spans.get_finished_spans()
    pages = [s for s in found if s.name == "job page"]
    assert pages and (pages[0].attributes or {})["provisor.entities"] == 2
    [write] = _children(pages[0], found)
    assert (write.name, (write.attributes or {})["provisor.target"]) == ("target write", "CSV-A")
