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
from provisor.storage import migrate
from provisor.systems.model import NewSystem, System
from tests.helpers import user_body


@pytest.fixture
def sqlite_services(sqlite_settings: Settings) -> Iterator[Services]:
    opened = Services.open(sqlite_settings)
    migrate.upgrade(opened.db)
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
    job = services.jobs.start(source, type=type, triggered_by="test", options=options or None)
    claimed = services.jobs.claim("test", job.id)
    assert claimed is not None, "nothing else runs for this source"
    asyncio.run(services.jobs.run(claimed))
    return services.jobs.get(job.id)


def stats(job: Job, system_name: str, entity_type: str = "user") -> dict[str, int]:
    for row in job.statistics:
        if row["systemName"] == system_name and row["entityType"] == entity_type:
            return {k: v for k, v in row.items() if isinstance(v, int)}
    return {}


def add_users(services: Services, *names: str, **extra: Any) -> dict[str, str]:
    """Users in the Local Identity Directory: name -> id."""
    ids = {}
    for name in names:
        ids[name] = services.directory.create("User", user_body(name, **extra), "/scim").id
    return ids
