"""Tenants for the isolation tests: created through the TenantService (as an operator would),
each with its own admin credentials and an HTTP client under its ``/t/<tenant>`` prefix."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from provisor.context import DEFAULT_TENANT, INSTALLATION, Context
from provisor.jobs.model import Job
from provisor.runtime import Services
from tests.conftest import CLIENT_TLS

OPERATOR = Context.administrator("operator", tenant=INSTALLATION)
PUSH = "/ipsproxy/service/api/v1/systems"
PROXY = "/ipsproxy/service/api/v1/scim"


@dataclass(frozen=True)
class Tenant:
    """A tenant of a test server: its name and its first administrator's credentials."""

    name: str
    admin: tuple[str, str]

    @property
    def prefix(self) -> str:
        """``/t/<tenant>``; the default tenant's URLs are the installation's own."""
        return "" if self.name == DEFAULT_TENANT else f"/t/{self.name}"

    def client(self, base_url: str, auth: Any = None, **kwargs: Any) -> httpx.Client:
        """An HTTP client of this tenant (under its path prefix), as its admin by default."""
        kwargs.setdefault("verify", CLIENT_TLS)
        return httpx.Client(
            base_url=base_url + self.prefix, auth=auth or self.admin, timeout=60, **kwargs
        )


def create_tenant(services: Services, name: str) -> Tenant:
    """A new tenant, as the installation's operator creates it."""
    tenant, credentials = services.tenants.create(OPERATOR, name, title=f"Tenant {name}")
    assert tenant.name == name
    return Tenant(name, (credentials.client_id, credentials.client_secret))


def run_queued(services: Services, tenant: str, job_id: str) -> Job:
    """Run one queued job of ``tenant`` here, to its end, as a job runner would."""
    worker = Context.system("worker", tenant=tenant)
    claimed = services.jobs.claim(worker, "tenancy-tests", job_id)
    assert claimed is not None, f"job {job_id} of {tenant} is not queued"
    asyncio.run(services.jobs.run(worker, claimed))
    return services.jobs.get(Context.administrator("tests", tenant=tenant), job_id)


@contextmanager
def clients(base_url: str, *tenants: Tenant) -> Iterator[list[httpx.Client]]:
    """One admin client per tenant, closed afterwards."""
    opened = [tenant.client(base_url) for tenant in tenants]
    try:
        yield opened
    finally:
        for client in opened:
            client.close()
