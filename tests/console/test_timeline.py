"""The identity timeline: a person found by userName, e-mail or id; every job and real-time
event about them, newest first and paged; their state in each linked target; and the
queries served by indexes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from provisor.admins.model import Role
from provisor.context import Context
from provisor.errors import InputError
from provisor.jobs import store as job_store
from provisor.jobs.ports import EntityLog
from provisor.realtime import store as realtime_store
from provisor.realtime.model import Operation, RealtimeLog, State, Status, SystemResult
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.systems.model import NewSystem, System
from provisor.types import EntityType
from tests.console.conftest import Console
from tests.helpers import user_body

CTX = Context.system("tests")
ADMIN = Context.administrator("test")


def system(services: Services, **data: Any) -> System:
    return services.systems.create(ADMIN, NewSystem.model_validate(data))


def csv_target(services: Services, name: str, source: System, folder: Path) -> System:
    folder.mkdir(exist_ok=True)
    return system(
        services,
        name=name,
        type="csv",
        role="target",
        sourceSystemIds=[source.id],
        properties={
            "csv.user.file": str(folder / "users.csv"),
            "csv.group.file": str(folder / "groups.csv"),
        },
    )


def run_read(services: Services, source: System) -> str:
    job = services.jobs.start(ADMIN, source.name)
    claimed = services.jobs.claim(Context.system("worker"), "test", job.id)
    assert claimed is not None
    asyncio.run(services.jobs.run(Context.system("worker"), claimed))
    return job.id


@pytest.fixture
def provisioned(console: Console, tmp_path: Path) -> dict[str, Any]:
    """alice and bob in the directory, read into a CSV target; a CRM target linked later."""
    services = console.services
    ids = {
        name: services.directory.create(CTX, EntityType.USER, user_body(name), "/scim").id
        for name in ("alice", "bob")
    }
    source = system(services, name="LID", type="local-identity-directory", role="source")
    csv = csv_target(services, "CSV", source, tmp_path / "csv")
    job_id = run_read(services, source)
    crm = csv_target(services, "CRM", source, tmp_path / "crm")
    return {"ids": ids, "source": source, "csv": csv, "crm": crm, "job": job_id}


def test_the_timeline_answers_why_a_person_has_no_account(
    console: Console, provisioned: dict[str, Any]
) -> None:
    alice = provisioned["ids"]["alice"]
    browser = console.signed_in("ada")
    page = browser.get("/console/timeline", params={"q": "alice"})
    assert page.status_code == 200, page.text
    targets = page.text.split('id="timeline-targets"')[1].split("</table>")[0]
    csv_row = targets.split("CSV")[1].split("</tr>")[0]
    assert "created" in csv_row and "not written" not in csv_row
    crm_row = targets.split("CRM")[1].split("</tr>")[0]
    assert "not written by provisor" in crm_row and "nothing logged" in crm_row
    events = page.text.split('id="timeline-events"')[1].split("</table>")[0]
    assert f"/console/jobs/{provisioned['job']}" in events
    assert alice in events and "bob" not in events
    assert f"/console/directory/users/{alice}" in page.text
    by_mail = browser.get("/console/timeline", params={"q": "ALICE@example.com"})
    assert f"/console/jobs/{provisioned['job']}" in by_mail.text
    by_id = browser.get("/console/timeline", params={"q": alice})
    assert "CSV" in by_id.text and "bob" not in by_id.text.split('id="timeline-events"')[1]


def test_failures_real_time_pushes_and_traces_show_newest_first(
    console: Console, provisioned: dict[str, Any]
) -> None:
    services = console.services
    alice, crm, source = provisioned["ids"]["alice"], provisioned["crm"], provisioned["source"]
    with services.db.write(CTX) as tx:
        job_store.add_entity_logs(
            tx,
            provisioned["job"],
            [
                EntityLog(
                    action="failed",
                    entity_type="user",
                    system_id=crm.id,
                    system_name="CRM",
                    entity_id=alice,
                    reason="CRM said: e-mail <bad>",
                    content='{"userName": "alice"}',
                    name="alice",
                )
            ],
        )
        realtime_store.add(
            tx,
            RealtimeLog(
                id="rt-1",
                source_id=source.id,
                source_name="LID",
                entity_type=EntityType.USER,
                entity_id=alice,
                operation=Operation.UPDATE,
                status=Status.ERROR,
                started="2999-01-01T00:00:00.000000Z",
                duration_ms=3,
                error=None,
                caller="hr",
                systems=[SystemResult(crm.id, "CRM", "target", "update", State.FAILED, "quota")],
            ),
        )
    browser = console.signed_in("ada")
    page = browser.get("/console/timeline", params={"q": "alice"})
    events = page.text.split('id="timeline-events"')[1].split("</table>")[0]
    assert events.index("/console/realtime/rt-1") < events.index("CRM said")
    assert "CRM said: e-mail &lt;bad&gt;" in events and "quota" in events
    assert "Trace" in events
    crm_row = page.text.split('id="timeline-targets"')[1].split("CRM")[1].split("</tr>")[0]
    assert "failed" in crm_row and "quota" in crm_row  # the push is the newest outcome


def test_events_are_paged_and_queries_bounded(
    console: Console, provisioned: dict[str, Any]
) -> None:
    services = console.services
    alice, crm = provisioned["ids"]["alice"], provisioned["crm"]
    entry = EntityLog(
        action="skipped",
        entity_type="user",
        system_id=crm.id,
        system_name="CRM",
        entity_id=alice,
        reason="filtered",
        name="alice",
    )
    with services.db.write(CTX) as tx:
        job_store.add_entity_logs(tx, provisioned["job"], [entry] * 60)
    found = services.timeline.find(ADMIN, "alice", limit=50)
    assert len(found.events) == 50 and found.total == 61
    rest = services.timeline.find(ADMIN, "alice", offset=50, limit=50)
    assert len(rest.events) == 11
    browser = console.signed_in("ada")
    second = browser.get("/console/timeline", params={"q": "alice", "offset": 50})
    assert second.status_code == 200 and 'rel="prev"' in second.text
    deep = browser.get("/console/timeline", params={"q": "alice", "offset": 10**6})
    assert deep.status_code == 400 and "offset must be" in deep.text
    with pytest.raises(InputError):
        services.timeline.find(ADMIN, " ")
    assert browser.get("/console/timeline").status_code == 200  # the empty form


def test_a_viewer_reads_the_timeline(console: Console, provisioned: dict[str, Any]) -> None:
    browser = console.signed_in("val", Role.VIEWER)
    page = browser.get("/console/timeline", params={"q": "alice"})
    assert page.status_code == 200 and "CSV" in page.text


@contextmanager
def statements(services: Services) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append((statement, parameters))

    engines = {services.db.write_engine.engine, services.db.read_engine.engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


def test_the_timeline_reads_logs_through_their_indexes(
    console: Console, provisioned: dict[str, Any]
) -> None:
    """Every statement on job_entities or realtime_logs searches an index (no scan)."""
    services = console.services
    with statements(services) as seen:
        services.timeline.find(ADMIN, "alice")
    logs = [(sql, p) for sql, p in seen if "job_entities" in sql or "realtime_logs" in sql]
    assert len(logs) >= 5
    with services.db.read_engine.engine.connect() as conn:
        for sql, parameters in logs:
            plan = [
                row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters)
            ]
            for table in ("job_entities", "realtime_logs"):
                assert not any(f"SCAN {table}" in step for step in plan), (sql, plan)
            assert any(
                "(tenant=? AND entity_id=?)" in step or "(tenant=? AND name=?)" in step
                for step in plan
            ), (sql, plan)


@pytest.fixture
def pg_services(pg_database: str, tmp_path: Path) -> Iterator[Services]:
    opened = Services.open(Settings(data_dir=tmp_path, database_url=pg_database))
    yield opened
    opened.close()


def test_the_indexes_serve_postgresql_too(pg_services: Services) -> None:
    """The same indexes on PostgreSQL, and the whole lookup runs there (paged members too)."""
    body = user_body("alice")
    user_id = pg_services.directory.create(CTX, EntityType.USER, body, "/scim").id
    found = pg_services.timeline.find(ADMIN, "alice@example.com")
    assert [p.id for p in found.people] == [user_id] and found.events == []
    group = {
        "schemas": [body["schemas"][0].replace("User", "Group")],
        "displayName": "G",
        "members": [{"value": user_id}],
    }
    group_id = pg_services.directory.create(CTX, EntityType.GROUP, group, "/scim").id
    members, total, _next = pg_services.directory.members(ADMIN, group_id)
    assert total == 1 and members[0].display == "alice"
    with pg_services.db.read_engine.engine.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))
        for sql in (
            "SELECT id FROM job_entities WHERE tenant = 'default' AND entity_id = 'x' "
            "ORDER BY id DESC LIMIT 51",
            "SELECT id FROM job_entities WHERE tenant = 'default' AND name = 'x' "
            "ORDER BY id DESC LIMIT 51",
            "SELECT id FROM realtime_logs WHERE tenant = 'default' AND entity_id = 'x' "
            "ORDER BY started DESC LIMIT 51",
        ):
            plan = " ".join(r[0] for r in conn.execute(text("EXPLAIN " + sql)))
            assert "ix_job_entities_tenant" in plan or "ix_realtime_logs_tenant" in plan, plan
