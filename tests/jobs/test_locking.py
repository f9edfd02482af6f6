"""Entity locks (decision 0021): one holder per key across processes, other keys free, none
left behind by a process that dies, a bounded wait that ends in a 503 error."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from provisor.context import Context
from provisor.errors import TooManyRequestsError
from provisor.jobs.locking import entity_key, holding
from provisor.jobs.lockstore import EntityLockStore
from provisor.jobs.model import JobStatus
from provisor.runtime import Services
from provisor.storage.database import Database
from provisor.types import EntityType
from tests.jobs.conftest import add_users, lid_source, run_job
from tests.jobs.test_pipeline import csv_target, rows

CTX = Context.system("tests")  # the service calls a test makes directly

ADA = entity_key("source", "user", "ada")
BOB = entity_key("source", "user", "bob")

# A process of its own that takes ADA's lock, says so, and waits to be killed.
HOLD = """
import sys
from pathlib import Path
from provisor.storage.database import Database
from provisor.jobs.lockstore import EntityLockStore
holder = EntityLockStore(Database(sys.argv[1])).holder()
assert holder.take([int(sys.argv[2])]), "free"
print("held", flush=True)
sys.stdin.read()
"""


def test_keys_are_distinct_and_stable() -> None:
    assert ADA == entity_key("source", "user", "ada")
    assert (
        len({ADA, BOB, entity_key("source", "group", "ada"), entity_key("other", "user", "ada")})
        == 4
    )
    assert 0 <= ADA < 2**62


def test_one_holder_per_key_and_other_keys_stay_free(services: Services) -> None:
    locks = services.jobs.locks
    first, second = locks.holder(), locks.holder()
    try:
        assert first.take([ADA]) == {ADA}
        assert second.take([ADA, BOB]) == {BOB}, "ada waits; bob is not held back by ada"
        assert first.take([BOB]) == set()
        first.release()
        assert second.take([ADA]) == {ADA}, "released: the next one takes it"
    finally:
        first.release()
        second.release()


def test_two_databases_on_one_file_exclude_each_other(services: Services) -> None:
    """Another Database of the same process (POSIX locks belong to the process)."""
    other = Database(services.db.url)
    try:
        mine, theirs = services.jobs.locks.holder(), EntityLockStore(other).holder()
        assert mine.take([ADA]) == {ADA}
        assert theirs.take([ADA]) == set()
        mine.release()
        assert theirs.take([ADA]) == {ADA}
        theirs.release()
    finally:
        other.dispose()


def test_a_lock_dies_with_its_process(services: Services) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, services.db.url, str(ADA)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "held\n"
        holder = services.jobs.locks.holder()
        assert holder.take([ADA]) == set(), "held by the other process"
        assert holder.take([BOB]) == {BOB}
        holder.release()
    finally:
        child.kill()
        child.communicate()

    async def after_death() -> None:
        async with holding(services.jobs.locks, [ADA], 20):
            pass  # taken: the dead process left nothing behind (PostgreSQL ends its session)

    asyncio.run(after_death())


def test_a_wait_is_bounded(services: Services) -> None:
    held = services.jobs.locks.holder()
    assert held.take([ADA]) == {ADA}

    async def wait() -> None:
        async with holding(services.jobs.locks, [BOB, ADA], 0.05):
            pytest.fail("ada is held elsewhere")

    try:
        with pytest.raises(TooManyRequestsError) as raised:
            asyncio.run(wait())
        assert raised.value.status == 503 and raised.value.retry_after >= 1
        assert "PROVISOR_ENTITY_LOCK_SECONDS" in raised.value.message
        again = services.jobs.locks.holder()
        assert again.take([BOB]) == {BOB}, "the keys taken by the wait were released"
        again.release()
    finally:
        held.release()


def test_a_job_takes_the_locks_of_the_entities_it_writes(
    services: Services, tmp_path: Path
) -> None:
    """A job that cannot have an entity's lock (a real-time call writes it) writes none of
    the page and ends with an error; the next job writes it. Its deletions take them too."""
    source = lid_source(services)
    csv_target(services, source.id, tmp_path)
    ids = add_users(services, "ada", "bob")
    services.jobs.lock_seconds = 0.05
    held = services.jobs.locks.holder()
    assert held.take([entity_key(source.id, "user", ids["ada"])])
    try:
        blocked = run_job(services, "LID")
        assert blocked.status is JobStatus.FINISHED_WITH_ERROR
        assert "PROVISOR_ENTITY_LOCK_SECONDS" in (blocked.error or "")
        assert not (tmp_path / "users.csv").exists() or rows(tmp_path / "users.csv") == {}
    finally:
        held.release()
    assert run_job(services, "LID").status is JobStatus.SUCCESS
    assert set(rows(tmp_path / "users.csv")) == {"ada", "bob"}

    services.directory.delete(CTX, EntityType.USER, ids["ada"])
    held = services.jobs.locks.holder()
    assert held.take([entity_key(source.id, "user", ids["ada"])])
    try:
        kept = run_job(services, "LID")
    finally:
        held.release()
    assert kept.status is JobStatus.FINISHED_WITH_ERROR
    assert "Deleting users in CSV stopped" in (kept.error or "")
    assert set(rows(tmp_path / "users.csv")) == {"ada", "bob"}
    assert run_job(services, "LID").status is JobStatus.SUCCESS
    assert set(rows(tmp_path / "users.csv")) == {"bob"}
