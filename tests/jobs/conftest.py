"""Services on a real database for job tests, and a way to run a job to its end."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from provisor.context import Context
from provisor.jobs.model import Job, JobType
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.systems.model import NewSystem, System
from provisor.types import EntityType
from tests.helpers import user_body

CTX = Context.system("tests")  # the service calls a test makes directly


@pytest.fixture
def sqlite_services(sqlite_settings: Settings) -> Iterator[Services]:
    opened = Services.open(sqlite_settings)  # a migrated database
    yield opened
    opened.close()


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
