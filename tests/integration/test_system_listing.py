"""A page of systems reads each system's current transformation versions at once: the
versions shown are the latest ones, and the page's statements do not grow with its systems
(the console's home and systems pages list up to 50 of them)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from provisor.context import Context
from provisor.runtime import Services
from provisor.systems.model import NewSystem

ADMIN = Context.administrator("tester")
COPY = {"user": {"mappings": [{"sourcePath": "$.userName", "targetPath": "$.userName"}]}}


def target(name: str, source_id: str) -> NewSystem:
    return NewSystem.model_validate(
        {
            "name": name,
            "type": "Local Identity Directory",
            "role": "target",
            "sourceSystemIds": [source_id],
        }
    )


@contextmanager
def statements(services: Services) -> Iterator[list[str]]:
    """The SQL statements the services run meanwhile (not PostgreSQL's setting of the
    connection's tenant, made when a pooled connection changes tenant)."""
    seen: list[str] = []
    engine = services.db.read_engine.engine

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "set_config(" not in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_page_of_systems_shows_current_versions_in_the_same_statements(
    services: Services,
) -> None:
    source = services.systems.create(
        ADMIN,
        NewSystem.model_validate(
            {"name": "HR", "type": "Local Identity Directory", "role": "source"}
        ),
    )
    first = services.systems.create(ADMIN, target("First", source.id))
    for n in range(2):
        services.systems.save_transformation(
            ADMIN, first.id, "write", COPY, description=f"change {n}"
        )
    with statements(services) as few:
        systems, total = services.systems.listing(ADMIN)
    assert total == 2
    shown = {s.name: s.transformations for s in systems}
    assert shown == {"HR": {"read": 1}, "First": {"write": 3}}, "the latest version of each"

    for n in range(6):
        services.systems.create(ADMIN, target(f"More {n}", source.id))
    with statements(services) as many:
        systems, total = services.systems.listing(ADMIN)
    assert total == 8
    assert {s.name: s.transformations for s in systems}["First"] == {"write": 3}
    assert len(many) == len(few), "statements per page, not per system"
