"""Group commit (decision 0030): the directory's writes that wait for the SQLite writer
together share one commit; each is answered only after that commit; one that fails leaves
the others; a failed commit fails every member with a SCIM 503 and writes nothing. A write
inside another of the same thread is a savepoint of it (both databases)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from provisor.context import Context
from provisor.errors import StorageError
from provisor.runtime import Services
from provisor.scim.errors import UniquenessError
from provisor.settings import Settings
from provisor.storage import tables as t
from provisor.storage.groupcommit import GroupCommit
from provisor.types import EntityType
from tests.conftest import LiveServer
from tests.helpers import SCIM_JSON, scim_error, user_body

CTX = Context.administrator("ops")
BASE = "http://x/scim"


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"waited 60 s for {what}"
        time.sleep(0.01)


@pytest.fixture
def sqlite_services(sqlite_settings: Settings) -> Iterator[Services]:
    opened = Services.open(sqlite_settings)
    yield opened
    opened.close()


def _writers(services: Services) -> GroupCommit:
    writers = services.db.writers
    assert writers is not None
    writers.max_seconds = 3600  # a busy machine must not split the batches these tests form
    return writers


class _Thread(threading.Thread):
    """Runs ``work`` and keeps its result or exception."""

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished = threading.Event()

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as exc:
            self.error = exc
        finally:
            self.finished.set()

    def outcome(self) -> Any:
        self.join(timeout=60)
        assert not self.is_alive()
        return self.error if self.error is not None else self.result


@contextmanager
def _holding(services: Services, work: Callable[[Any], None] | None = None) -> Iterator[_Thread]:
    """A grouped write held open by a thread (after ``work``) until the block exits."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with services.db.write(CTX, grouped=True) as tx:
            if work is not None:
                work(tx)
            held.set()
            release.wait(60)

    holder = _Thread(hold)
    holder.start()
    _until(lambda: held.is_set() or holder.finished.is_set(), "the writer to be held")
    try:
        yield holder
    finally:
        release.set()


def _user_names(services: Services) -> list[str]:
    with services.db.read(CTX) as tx:
        return sorted(tx.execute(select(t.users.c.user_name)).scalars())


def _create(services: Services, name: str) -> Callable[[], Any]:
    return lambda: services.directory.create(CTX, EntityType.USER, user_body(name), BASE)


def test_writes_waiting_together_share_one_commit_and_a_failure_stays_alone(
    sqlite_services: Services,
) -> None:
    services = sqlite_services
    writers = _writers(services)
    with _holding(services) as holder:
        creates = [_Thread(_create(services, n)) for n in ("ann", "ann", "bob")]
        for thread in creates:
            thread.start()
        _until(lambda: writers.joining == 3, "three writers waiting")
        commits = writers.commits
    outcomes = [thread.outcome() for thread in creates]
    assert holder.outcome() is None
    assert writers.commits == commits + 1, "the held block and the three creates: one commit"
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failed) == 1 and isinstance(failed[0], UniquenessError)
    assert "userName 'ann'" in failed[0].message
    assert _user_names(services) == ["ann", "bob"]


def test_a_write_returns_only_after_the_commit_that_holds_it(sqlite_services: Services) -> None:
    services = sqlite_services
    writers = _writers(services)
    wrote, proceed = threading.Event(), threading.Event()
    in_last, finish_last = threading.Event(), threading.Event()

    def first() -> None:
        with services.db.write(CTX, grouped=True):
            _create(services, "early")()  # a savepoint of this write
            wrote.set()
            proceed.wait(60)

    def last() -> None:
        with services.db.write(CTX, grouped=True):
            in_last.set()
            finish_last.wait(60)

    a = _Thread(first)
    a.start()
    _until(lambda: wrote.is_set() or a.finished.is_set(), "the first write")
    b = _Thread(last)
    b.start()
    _until(lambda: writers.joining == 1, "the last writer waiting")
    proceed.set()  # the first block ends and hands the connection to the last one
    _until(in_last.is_set, "the last block to run")
    assert not a.finished.is_set(), "the first write waits for the batch's commit"
    assert _user_names(services) == [], "nothing committed yet"
    finish_last.set()
    assert a.outcome() is None and b.outcome() is None
    assert _user_names(services) == ["early"]


def _break_the_commit(tx: Any) -> None:
    """A row that breaks a foreign key checked at COMMIT: the batch's commit fails."""
    tx.conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
    tx.execute(
        insert(t.group_members).values(
            tenant="default", group_id="no-such-group", member_id="x", member_type="User"
        )
    )


def test_a_failed_commit_fails_every_member_with_a_scim_503(sqlite_server: LiveServer) -> None:
    services = sqlite_server.services
    writers = _writers(services)
    results: list[httpx.Response] = []

    def post(name: str) -> None:
        with sqlite_server.client(path="/scim") as client:
            body = user_body(name)
            results.append(client.post("/Users", json=body, headers={"Content-Type": SCIM_JSON}))

    with _holding(services, _break_the_commit) as holder:
        posts = [_Thread(lambda n=n: post(n)) for n in ("carl", "dora", "emil")]  # type: ignore[misc]
        for thread in posts:
            thread.start()
        _until(lambda: writers.joining == 3, "three requests waiting")
    for thread in posts:
        assert thread.outcome() is None
    assert isinstance(holder.outcome(), StorageError)
    assert len(results) == 3
    for response in results:
        body = scim_error(response, 503)
        assert "commit failed" in body["detail"]
    assert _user_names(services) == [], "none half-written"
    with services.db.read(CTX) as tx:
        assert tx.execute(select(t.group_members)).first() is None


def test_a_write_inside_a_write_is_a_savepoint_of_it(services: Services) -> None:
    with services.db.write(CTX, grouped=True):
        services.directory.create(CTX, EntityType.USER, user_body("kept"), BASE)
        with pytest.raises(UniquenessError):
            services.directory.create(CTX, EntityType.USER, user_body("kept"), BASE)
        with pytest.raises(RuntimeError), services.db.write(CTX) as tx:
            tx.execute(insert(t.counters).values(tenant="default", name="probe", value=1))
            raise RuntimeError("the inner block fails")
        services.directory.create(CTX, EntityType.USER, user_body("also-kept"), BASE)
    assert _user_names(services) == ["also-kept", "kept"]
    with services.db.read(CTX) as tx:
        assert tx.execute(select(t.counters).where(t.counters.c.name == "probe")).first() is None


def test_a_bulk_request_commits_its_operations_together(sqlite_server: LiveServer) -> None:
    writers = _writers(sqlite_server.services)
    operations = [
        {"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": user_body(f"bulk-{i}")}
        for i in range(5)
    ]
    operations.append(  # a failing operation is rolled back alone
        {"method": "POST", "path": "/Users", "bulkId": "dup", "data": user_body("bulk-0")}
    )
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": operations,
    }
    commits = writers.commits
    with sqlite_server.client(path="/scim") as client:
        answer = client.post("/Bulk", json=body)
    assert answer.status_code == 200, answer.text
    statuses = [op["status"] for op in answer.json()["Operations"]]
    assert statuses == ["201"] * 5 + ["409"]
    assert writers.commits == commits + 1
    assert _user_names(sqlite_server.services) == [f"bulk-{i}" for i in range(5)]
