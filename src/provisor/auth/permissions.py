"""The permissions a technical user can hold (spec §5.3, §6.3, §10.3)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Permission(StrEnum):
    MANAGE_USERS = "manage_users"
    MANAGE_GROUPS = "manage_groups"
    PROXY_API = "proxy_api"
    REALTIME_API = "realtime_api"
    TENANT_ADMIN_API = "tenant_admin_api"
    ADMIN = "admin"


def parse_permissions(names: Iterable[str]) -> frozenset[Permission]:
    """Permissions from their names; ValueError names the unknown ones."""
    wanted = {name.strip().lower() for name in names if name.strip()}
    known = {p.value for p in Permission}
    unknown = sorted(wanted - known)
    if unknown:
        raise ValueError(
            f"unknown permission(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return frozenset(Permission(name) for name in wanted)


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who is calling: a technical user authenticated one way or another.

    ``method`` says how: ``basic`` (client id and secret), ``bearer`` (an OAuth token
    issued by /oauth2/token) or ``certificate`` (an mTLS client certificate attached to
    the technical user, or to a system: then ``system`` is that system's id and the
    principal may call only that system's proxy or real-time API). ``secret_id`` is the
    id of the secret that proved a ``basic`` principal, or that a ``bearer`` token was
    issued with.
    """

    client_id: str
    name: str
    permissions: frozenset[Permission]
    method: str
    system: str | None = None
    secret_id: str | None = None

    def allows(self, *any_of: Permission) -> bool:
        """Whether the principal holds one of ``any_of`` (``admin`` holds them all)."""
        return Permission.ADMIN in self.permissions or any(p in self.permissions for p in any_of)
