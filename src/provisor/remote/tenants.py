"""The installation's tenants over the operator API, ``/operator/v1`` (an operator's
credentials, at the installation's own address)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

from provisor.remote.clients import Me
from provisor.remote.configuration import Plan
from provisor.remote.session import Session, path

OPERATOR = "/operator/v1"
TENANTS = f"{OPERATOR}/tenants"


class Quotas(TypedDict, total=False):
    """The quotas set for a tenant (left out: the installation's default)."""

    sourceSystems: int
    targetSystems: int
    proxySystems: int
    directoryEntities: int  # users and groups of its Local Identity Directory
    jobConcurrency: int


class Urls(TypedDict):
    """Where a tenant is served: ``path`` (``<root>/t/<name>``) and, when the installation
    has a tenant domain, ``host`` (``<scheme>://<name>.<domain>``)."""

    path: str
    host: NotRequired[str]


class Tenant(TypedDict):
    """A tenant."""

    name: str
    title: str
    kind: str  # standalone or bundle
    bundle: str | None
    enabled: bool
    quotas: Quotas
    created: str
    lastModified: str
    urls: NotRequired[Urls]


class Usage(TypedDict, total=False):
    """What a tenant holds: systems by role (``sourceSystems``...), users, groups,
    technical users (``clients``), jobs running."""

    sourceSystems: int
    targetSystems: int
    proxySystems: int
    users: int
    groups: int
    clients: int
    jobsRunning: int


class TenantView(Tenant):
    """A tenant with what it holds now."""

    usage: Usage


class Administrator(TypedDict):
    """A new tenant's first administrator (permission ``admin``), shown this once."""

    client_id: str
    client_secret: str


class CreatedTenant(Tenant):
    """A tenant just created, with its first administrator's credentials."""

    administrator: Administrator


class TenantList(TypedDict):
    items: list[Tenant]
    total: int


class Deleted(TypedDict):
    """What deleting a tenant removed: rows per table, and their total."""

    name: str
    deleted: dict[str, int]
    total: int


class Tenants:
    """``remote.tenants``: the operator's tenants (create, list, show, update, disable,
    enable, delete) and their configuration (export, plan, apply)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def me(self) -> Me:
        """The operator these credentials authenticate as."""
        found: Me = self._session.json("GET", f"{OPERATOR}/me")
        return found

    def create(
        self,
        name: str,
        *,
        title: str = "",
        bundle: str | None = None,
        quotas: Mapping[str, int | None] | None = None,
    ) -> CreatedTenant:
        body: dict[str, Any] = {"name": name, "title": title}
        if bundle is not None:
            body["bundle"] = bundle
        if quotas:
            body["quotas"] = dict(quotas)
        created: CreatedTenant = self._session.json("POST", TENANTS, json=body)
        return created

    def list(self) -> TenantList:
        found: TenantList = self._session.json("GET", TENANTS)
        return found

    def show(self, name: str) -> TenantView:
        found: TenantView = self._session.json("GET", path(TENANTS, name))
        return found

    def update(
        self,
        name: str,
        *,
        title: str | None = None,
        quotas: Mapping[str, int | None] | None = None,
        enabled: bool | None = None,
    ) -> Tenant:
        """Change what is given: the title, some quotas (merged; None resets one to the
        installation's default), whether the tenant is enabled."""
        body: dict[str, Any] = {}
        if title is not None:
            body["title"] = title
        if quotas is not None:
            body["quotas"] = dict(quotas)
        if enabled is not None:
            body["enabled"] = enabled
        changed: Tenant = self._session.json("PATCH", path(TENANTS, name), json=body)
        return changed

    def disable(self, name: str) -> Tenant:
        changed: Tenant = self._session.json("POST", path(TENANTS, name, "disable"))
        return changed

    def enable(self, name: str) -> Tenant:
        changed: Tenant = self._session.json("POST", path(TENANTS, name, "enable"))
        return changed

    def delete(self, name: str) -> Deleted:
        deleted: Deleted = self._session.json("DELETE", path(TENANTS, name))
        return deleted

    def export(self, name: str) -> dict[str, Any]:
        """The tenant's configuration document (credentials left out)."""
        found: dict[str, Any] = self._session.json("GET", path(TENANTS, name, "configuration"))
        return found

    def plan(self, name: str, document: Mapping[str, Any], *, prune: bool = False) -> Plan:
        """What importing ``document`` into the tenant would change, with the plan's
        fingerprint."""
        found: Plan = self._session.json(
            "POST",
            path(TENANTS, name, "configuration", "plan"),
            json=dict(document),
            params={"prune": "true" if prune else None},
        )
        return found

    def apply(
        self,
        name: str,
        document: Mapping[str, Any],
        *,
        prune: bool = False,
        expect: str | None = None,
    ) -> Plan:
        """Import ``document`` into the tenant; ``expect``: the fingerprint of the plan
        reviewed (409 when the tenant's configuration changed since)."""
        found: Plan = self._session.json(
            "POST",
            path(TENANTS, name, "configuration", "apply"),
            json=dict(document),
            params={"prune": "true" if prune else None, "expect": expect},
        )
        return found
