"""Technical users as the admin API's JSON (``/api/v1/clients``): never a secret's hash, and
a secret only in the answer that made it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this module before it opens the services
    from provisor.auth.clients import ClientView, Credentials
    from provisor.auth.store import SecretRow


def client(view: ClientView) -> dict[str, Any]:
    """A client and when its secrets were made and expire."""
    row = view.client
    return {
        "clientId": row.id,
        "name": row.name,
        "description": row.description,
        "permissions": list(row.permissions),
        "created": row.created,
        "secrets": [secret(s) for s in view.secrets],
    }


def clients(views: list[ClientView]) -> dict[str, Any]:
    return {"items": [client(v) for v in views], "total": len(views)}


def secret(row: SecretRow) -> dict[str, Any]:
    """A secret's metadata: its id (the audit log's), when it was made and expires."""
    return {"id": row.id, "created": row.created, "expires": row.expires}


def with_secret(view: ClientView, creds: Credentials) -> dict[str, Any]:
    """A client with its new secret, shown once (created, or its secret rotated)."""
    return {**client(view), "clientSecret": creds.client_secret}
