"""A pushed change is durable in as few commits as exactly-once allows: its targets'
operational data and its log in one write transaction (each commit is an fsync on SQLite,
one writer at a time), written before the entity's lock is released."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from provisor.context import Context
from provisor.realtime.model import Change, Operation
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.storage.database import Transaction
from provisor.types import EntityType
from tests.conftest import LiveServer, serve
from tests.jobs.conftest import add_users, lid_source
from tests.jobs.test_peers import scim_target
from tests.jobs.test_pipeline import csv_target, rows

CTX = Context.system("tests")


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[LiveServer]:
    with serve(Settings(data_dir=tmp_path / "remote")) as live:
        yield live


def counting(services: Services, monkeypatch: pytest.MonkeyPatch) -> list[Context]:
    """The contexts of the write transactions opened from now on."""
    opened: list[Context] = []
    write: Callable[[Context], AbstractContextManager[Transaction]] = services.db.write

    def counted(ctx: Context) -> AbstractContextManager[Transaction]:
        opened.append(ctx)
        return write(ctx)

    monkeypatch.setattr(services.db, "write", counted)
    return opened


def test_a_change_is_one_commit_with_its_log(
    services: Services, remote: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = lid_source(services)
    csv_target(services, source.id, tmp_path)
    scim_target(services, source.id, remote)
    [ada] = add_users(services, "ada").values()
    entity: dict[str, Any] = json.loads(
        services.directory.get(CTX, EntityType.USER, ada, "/scim").body or b""
    )
    call = Context.system("caller")
    opened = counting(services, monkeypatch)

    async def push(operation: Operation, body: dict[str, Any]) -> list[Context]:
        before = len(opened)
        entity_id = None if operation is Operation.CREATE else ada
        log = await services.realtime.push(
            call, source.id, Change(EntityType.USER, operation, entity_id, body)
        )
        assert log.status.value == "Finished Successfully", log
        return [ctx for ctx in opened[before:] if ctx is call]

    async def scenario() -> tuple[list[Context], list[Context]]:
        try:
            created = await push(Operation.CREATE, entity)
            changed = await push(Operation.UPDATE, {**entity, "displayName": "Countess"})
            return created, changed
        finally:
            await services.realtime.aclose()

    created, changed = asyncio.run(scenario())
    # a create: each target's write intent (before anything is sent), then data and log
    assert len(created) == 3
    # an update: no intent, the two targets' data and the log in one transaction
    assert len(changed) == 1
    assert set(rows(tmp_path / "users.csv")) == {"ada"}
    with remote.client(path="/scim") as client:
        [user] = client.get("/Users").json()["Resources"]
    assert user["displayName"] == "Countess"
    logs, total = services.realtime.search(Context.administrator("t"), source=source.id)
    assert total == 2 and all(log.entity_id == ada for log in logs)
