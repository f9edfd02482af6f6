"""The operator's tenants: create (with a first administrator, from a bundle or not), list,
show, change, disable, delete; which tenant a request names (``resolve``), and each tenant's
quotas for the services that enforce them.

Tenants are the installation's: the operator (a technical user of the installation scope
holding ``operator``) manages them, never a tenant's administrator. Every change is audited
in the installation's audit log.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from provisor.auth.clients import INITIAL_ADMIN_NAME, ClientService, Credentials
from provisor.context import (
    ANY_TENANT,
    DEFAULT_TENANT,
    INSTALLATION,
    Context,
    Permission,
    requires,
    tenant_name_problem,
)
from provisor.errors import ConflictError, InputError, NotFoundError
from provisor.storage.database import Database
from provisor.tenants import store
from provisor.tenants.model import Kind, Quotas, Tenant
from provisor.timestamps import format_datetime, now

log = structlog.get_logger("provisor.tenants")

# Applies a configuration document (a bundle template) to a tenant: the configuration
# service's apply, given by the composition root.
Configure = Callable[[Context, dict[str, Any]], object]
Bundle = Callable[[str], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class TenantHealth:
    """A tenant, what it holds and how its jobs went (the operators' overview)."""

    tenant: Tenant
    health: store.Health


@dataclass(frozen=True, slots=True)
class TenantView:
    """A tenant with what it holds now."""

    tenant: Tenant
    usage: dict[str, int]


class TenantService:
    """The installation's tenants."""

    def __init__(
        self,
        db: Database,
        clients: ClientService,
        *,
        files: Path | None = None,
        cache_seconds: float = 2.0,
    ) -> None:
        """``files``: the folder of the tenants' own files in the data folder
        (``<data folder>/tenants``), removed with a deleted tenant."""
        self.db = db
        self.clients = clients
        self.files = files
        self.configure: Configure | None = None  # set by the composition root
        self.bundle: Bundle | None = None
        self._cache: dict[str, tuple[float, Tenant | None]] = {}
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()

    # -- which tenant, and its quotas (every request; cached) ----------------------------------

    def resolve(self, name: str) -> Tenant | None:
        """The tenant named ``name``, or None (unknown); cached for a couple of seconds. The
        installation scope is no tenant."""
        hit = self.cached(name)
        if hit is not None:
            return hit[0]
        if tenant_name_problem(name) is not None and name != DEFAULT_TENANT:
            return None
        with self.db.unscoped_read() as conn:
            found = store.find(conn, name)
        with self._lock:
            self._cache[name] = (time.monotonic() + self._cache_seconds, found)
            while len(self._cache) > 10_000:
                del self._cache[next(iter(self._cache))]
        return found

    def cached(self, name: str) -> tuple[Tenant | None] | None:
        """What ``resolve`` would answer without a database read, or None when it would
        read (the web layer's fast path, in the event loop)."""
        entry = self._cache.get(name)
        if entry is not None and entry[0] > time.monotonic():
            return (entry[1],)
        return None

    def quotas(self, tenant: str) -> Quotas:
        """The quotas set for ``tenant`` (none set for an unknown one)."""
        found = self.resolve(tenant)
        return found.quotas if found is not None else Quotas()

    def _forget(self, name: str) -> None:
        with self._lock:
            self._cache.pop(name, None)

    # -- the operator's API ----------------------------------------------------------------------

    @requires(Permission.OPERATOR)
    def create(
        self,
        ctx: Context,
        name: str,
        *,
        title: str = "",
        bundle: str | None = None,
        quotas: Quotas | None = None,
    ) -> tuple[Tenant, Credentials]:
        """A new tenant and its first administrator (a technical user with ``admin``, whose
        secret is shown once); from a bundle template, with its systems and transformations
        (credentials left to fill in). A bundle that cannot be applied leaves no tenant."""
        problem = tenant_name_problem(name)
        if problem is not None:
            raise InputError(problem)
        title = _title(title)
        document = self._bundle(bundle) if bundle is not None else None
        stamp = now()
        tenant = Tenant(
            name=name,
            title=title,
            kind=Kind.BUNDLE if bundle is not None else Kind.STANDALONE,
            bundle=bundle,
            enabled=True,
            quotas=quotas or Quotas(),
            created=stamp,
            last_modified=stamp,
        )
        with self.db.write(ctx.in_tenant(INSTALLATION)) as tx:
            store.insert_tenant(tx.conn, tenant)
            tx.audit("tenant.create", name, {"bundle": bundle, "quotas": tenant.quotas.to_json()})
        self._forget(name)
        inside = Context.system("tenants", tenant=name, request_id=ctx.request_id)
        try:
            _, credentials = self.clients.create(
                inside,
                INITIAL_ADMIN_NAME,
                [Permission.ADMIN.value],
                description=f"Created with the tenant by {ctx.author}; rotate its secret.",
            )
            if document is not None and self.configure is not None:
                self.configure(inside, document)
        except Exception:
            self._purge(ctx, name, audit=False)
            raise
        log.info("tenant created", tenant=name, bundle=bundle, by=ctx.author)
        return tenant, credentials

    def _bundle(self, name: str) -> dict[str, Any]:
        """The bundle template ``name``; an unknown one is bad input (400), not a missing
        resource: the request names it."""
        if self.bundle is None:
            raise InputError("This installation has no bundle templates.")
        try:
            return self.bundle(name)
        except NotFoundError as exc:
            raise InputError(exc.message) from exc

    @requires(Permission.OPERATOR)
    def listing(self, ctx: Context) -> list[Tenant]:
        with self.db.unscoped_read() as conn:
            return store.all_tenants(conn)

    @requires(Permission.OPERATOR)
    def health(
        self,
        ctx: Context,
        *,
        search: str = "",
        offset: int = 0,
        limit: int = 50,
        latest: int = 5,
        failed_since: str = "",
    ) -> tuple[list[TenantHealth], int]:
        """A page of tenants by name (``search``: part of the name or title) with their
        systems by role, directory entities, jobs running, jobs failed since
        ``failed_since`` (default: the last 24 hours) and the ``latest`` jobs' states; and
        how many tenants match in all."""
        since = failed_since or format_datetime(datetime.now(UTC) - timedelta(days=1))
        with self.db.unscoped_read() as conn:
            tenants, total = store.page(
                conn, search=search, offset=max(offset, 0), limit=max(min(limit, 200), 1)
            )
            found = store.health(conn, [t.name for t in tenants], since=since, latest=latest)
        return [TenantHealth(t, found[t.name]) for t in tenants], total

    @requires(Permission.OPERATOR)
    def show(self, ctx: Context, name: str) -> TenantView:
        with self.db.unscoped_read() as conn:
            tenant = store.find(conn, name)
            if tenant is None:
                raise NotFoundError(f"No tenant {name!r}.")
            return TenantView(tenant, store.usage(conn, name))

    @requires(Permission.OPERATOR)
    def update(
        self,
        ctx: Context,
        name: str,
        *,
        title: str | None = None,
        quotas: Quotas | None = None,
        enabled: bool | None = None,
        quota_changes: dict[str, Any] | None = None,
    ) -> Tenant:
        """Change a tenant's title, quotas (``quotas`` replaces them all; ``quota_changes``,
        a JSON object of some quotas, is merged: a quota set to null is the default again)
        or whether it is enabled (a disabled tenant answers no request and runs no
        scheduled job)."""
        if name == DEFAULT_TENANT and enabled is False:
            raise ConflictError(
                "The default tenant serves the installation's own URLs and cannot be disabled."
            )
        with self.db.write(ctx.in_tenant(INSTALLATION)) as tx:
            tenant = store.find(tx.conn, name)
            if tenant is None:
                raise NotFoundError(f"No tenant {name!r}.")
            wanted = tenant.quotas if quotas is None else quotas
            if quota_changes is not None:
                wanted = wanted.merged(quota_changes)
            changed = replace(
                tenant,
                title=tenant.title if title is None else _title(title),
                quotas=wanted,
                enabled=tenant.enabled if enabled is None else enabled,
                last_modified=now(),
            )
            store.save(tx.conn, changed)
            tx.audit(
                "tenant.update",
                name,
                {
                    "enabled": changed.enabled,
                    "quotas": changed.quotas.to_json(),
                    "before": {
                        "title": tenant.title,
                        "enabled": tenant.enabled,
                        "quotas": tenant.quotas.to_json(),
                    },
                    "after": {
                        "title": changed.title,
                        "enabled": changed.enabled,
                        "quotas": changed.quotas.to_json(),
                    },
                },
            )
        self._forget(name)
        return changed

    @requires(Permission.OPERATOR)
    def acting_in(self, ctx: Context, name: str) -> Context:
        """The context in which the operator acts inside tenant ``name`` (export or import
        its configuration): provisor acting for ``operator:<the operator>`` there, in this
        request. A disabled tenant can be acted in (its configuration repaired before it is
        enabled again); an unknown one is a NotFoundError."""
        with self.db.unscoped_read() as conn:
            if store.find(conn, name) is None:
                raise NotFoundError(f"No tenant {name!r}.")
        return Context.system(f"operator:{ctx.author}", tenant=name, request_id=ctx.request_id)

    @requires(Permission.OPERATOR)
    def delete(self, ctx: Context, name: str) -> dict[str, int]:
        """Delete a tenant and everything it holds (systems, directory, technical users,
        certificates, jobs, logs...), nothing of another tenant; the rows deleted per table.
        The default tenant cannot be deleted."""
        if name == DEFAULT_TENANT:
            raise ConflictError(
                "The default tenant serves the installation's own URLs and cannot be deleted; "
                "reset it instead (POST /api/v1/tenant/reset)."
            )
        with self.db.unscoped_read() as conn:
            if store.find(conn, name) is None:
                raise NotFoundError(f"No tenant {name!r}.")
        return self._purge(ctx, name, audit=True)

    def _purge(self, ctx: Context, name: str, *, audit: bool) -> dict[str, int]:
        every = ctx.in_tenant(ANY_TENANT)
        with self.db.write(every) as tx:
            counts = store.delete_rows(tx.conn, name)
            store.remove(tx.conn, name)
            if audit:
                tx.audit("tenant.delete", name, {"rows": counts}, tenant=INSTALLATION)
        self._forget(name)
        self.clients.forget_tenant(name)
        if self.files is not None and tenant_name_problem(name) is None:
            shutil.rmtree(self.files / name, ignore_errors=True)  # the files provisor wrote
        log.info("tenant deleted", tenant=name, by=ctx.author, rows=sum(counts.values()))
        return counts


def _title(title: str) -> str:
    """A tenant's title, trimmed; InputError unless it is at most 255 printable characters."""
    title = title.strip()
    if len(title) > 255 or not title.isprintable():
        raise InputError("A tenant's title is at most 255 printable characters.")
    return title
