"""Technical users as JSON (the CLI's ``--json``; an admin API would answer the same)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this module before it opens the services
    from provisor.auth.clients import Credentials
    from provisor.auth.store import ClientRow, SecretRow


def client(row: ClientRow, secrets: list[SecretRow]) -> dict[str, Any]:
    """A client and when its secrets were made and expire (never a secret or its hash)."""
    return {
        "client_id": row.id,
        "name": row.name,
        "description": row.description,
        "permissions": list(row.permissions),
        "created": row.created,
        "secrets": [{"created": s.created, "expires": s.expires} for s in secrets],
    }


def credentials(creds: Credentials) -> dict[str, str]:
    """A client id and its new secret, shown once."""
    return {"client_id": creds.client_id, "client_secret": creds.client_secret}
