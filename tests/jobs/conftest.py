"""Services on a real database for job tests, a way to run a job to its end, and a job
runner in a thread (as a server's)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from provisor.context import Context
from provisor.jobs.executor import Executor
from provisor.jobs.model import Job, JobType
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.systems.model import NewSystem, System
from provisor.timestamps import now
from provisor.types import EntityType
from tests.conftest import LiveServer
from tests.helpers import user_body

CTX = Context.system("tests")  # the service calls a test makes directly


@pytest.fixture
def sqlite_services(sqlite_settings: Settings) -> Iterator[Services]:
    opened = Services.open(sqlite_settings)  # a migrated database
    yield opened
    opened.close()


@contextmanager
def running_jobs(services: Services) -> Iterator[Executor]:
    """A job runner in a thread, as a server's, until the block ends: it has beaten once
    when the block starts (so it is known alive)."""
    executor = Executor(services.jobs, services.schedules, name="test-runner", poll_seconds=0.05)
    services.jobs.beat(Context.system("worker"), executor.name, now())
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(executor.run(stop),))
    thread.start()
    try:
        yield executor
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=60)
        loop.close()


def system(services: Services, **data: Any) -> System:
    return services.systems.create(
        Context.administrator("test"),
        NewSystem.model_validate(data),
    )


def lid_source(services: Services, name: str = "LID", **properties: str) -> System:
    return system(
        services,
        name=name,
        type="local-identity-directory",
        role="source",
        properties=properties,
    )


def run_job(services: Services, source: str, type: JobType = JobType.READ, **options: Any) -> Job:
    """Start a job and run it here, to its end."""
    job = services.jobs.start(
        Context.administrator("test"), source, type=type, options=options or None
    )
    claimed = services.jobs.claim(Context.system("worker"), "test", job.id)
    assert claimed is not None, "nothing else runs for this source"
    asyncio.run(services.jobs.run(Context.system("worker"), claimed))
    return services.jobs.get(Context.administrator("test"), job.id)


def stats(job: Job, system_name: str, entity_type: str = "user") -> dict[str, int]:
    for row in job.statistics:
        if row.system_name == system_name and row.entity_type == entity_type:
            return row.counts.to_dict()
    return {}


def add_users(services: Services, *names: str, **extra: Any) -> dict[str, str]:
    """Users in the Local Identity Directory: name -> id."""
    ids = {}
    for name in names:
        ids[name] = services.directory.create(
            CTX, EntityType.USER, user_body(name, **extra), "/scim"
        ).id
    return ids


def remote_scim_target(
    services: Services, source_id: str, live: LiveServer, **properties: str
) -> System:
    """The served provisor ``live``'s SCIM API as a target of ``source_id`` (Basic
    authentication with its admin client), with more ``properties``."""
    client_id, secret = live.admin
    return system(
        services,
        name="Remote",
        type="scim",
        role="target",
        sourceSystemIds=[source_id],
        properties={
            "URL": live.url + "/scim",
            "Authentication": "BasicAuthentication",
            "User": client_id,
            "Password": secret,
            **properties,
        },
    )
