"""Tenants as the operator API's JSON (``/operator/v1/tenants``): a tenant, what it holds,
where it is served; its first administrator's secret only in the answer that created it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this module before it opens the services
    from provisor.auth.clients import Credentials
    from provisor.tenants.model import Tenant
    from provisor.tenants.service import TenantView


def tenant(found: Tenant, urls: dict[str, str] | None = None) -> dict[str, Any]:
    """A tenant: its name, title, kind (and bundle), whether it is enabled, the quotas set
    (the others are the installation's defaults) and, when given, its URLs."""
    out: dict[str, Any] = {
        "name": found.name,
        "title": found.title,
        "kind": found.kind.value,
        "bundle": found.bundle,
        "enabled": found.enabled,
        "quotas": found.quotas.to_json(),
        "created": found.created,
        "lastModified": found.last_modified,
    }
    if urls is not None:
        out["urls"] = urls
    return out


def tenants(found: list[Tenant]) -> dict[str, Any]:
    return {"items": [tenant(t) for t in found], "total": len(found)}


def view(found: TenantView, urls: dict[str, str]) -> dict[str, Any]:
    """A tenant with its URLs and what it holds now (``usage``: systems by role, users,
    groups, technical users, jobs running)."""
    return {**tenant(found.tenant, urls), "usage": found.usage}


def created(found: Tenant, creds: Credentials, urls: dict[str, str]) -> dict[str, Any]:
    """A new tenant with its first administrator's client id and secret, shown this once
    (``client_id``/``client_secret``, as in initial-admin.json)."""
    return {
        **tenant(found, urls),
        "administrator": {"client_id": creds.client_id, "client_secret": creds.client_secret},
    }


def deleted(name: str, rows: dict[str, int]) -> dict[str, Any]:
    """What deleting a tenant removed: the rows deleted per table, and their total."""
    return {"name": name, "deleted": rows, "total": sum(rows.values())}
