"""An administrator (a person), a console session, and a tenant's single sign-on settings."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum

from provisor.context import Actor, ActorKind, Context, Permission

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
MAX_NAME_LENGTH = 255


class Role(StrEnum):
    """What an administrator may do in the console: everything (``administrator``), look
    (``viewer``), or manage the installation's tenants (``operator``, installation scope)."""

    ADMINISTRATOR = "administrator"
    VIEWER = "viewer"
    OPERATOR = "operator"


def role_permissions(role: Role) -> frozenset[Permission]:
    return {
        Role.ADMINISTRATOR: frozenset({Permission.ADMIN}),
        Role.VIEWER: frozenset({Permission.VIEW}),
        Role.OPERATOR: frozenset({Permission.OPERATOR}),
    }[role]


def parse_role(value: str) -> Role:
    """The role named ``value``; ValueError names the known ones."""
    try:
        return Role(value.strip().lower())
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role {value[:40]!r}; known: {known}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Administrator:
    """A person who administers a tenant through the console (no secret in it)."""

    id: str
    name: str
    role: Role
    origin: str  # local | sso
    has_password: bool
    totp_enabled: bool
    created: str
    last_login: str | None

    def actor(self) -> Actor:
        return Actor(ActorKind.ADMINISTRATOR, self.name, role_permissions(self.role))


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """A signed-in administrator's console session."""

    id: str  # SHA-256 of the cookie's token
    tenant: str
    administrator: Administrator
    csrf: str
    method: str
    created: str
    last_seen: str
    expires: str

    def context(self, request_id: str, address: str = "") -> Context:
        return Context(self.administrator.actor(), self.tenant, request_id, address)


@dataclass(frozen=True, slots=True, kw_only=True)
class SsoSettings:
    """A tenant's OpenID Connect provider for console sign-in."""

    label: str
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    role_claim: str
    administrator_values: tuple[str, ...]
    viewer_values: tuple[str, ...]
    scopes: str = "openid profile email"
    updated: str = ""

    def public(self) -> dict[str, object]:
        """Everything but the client secret (never shown again once set)."""
        return {
            "label": self.label,
            "issuer": self.issuer,
            "clientId": self.client_id,
            "roleClaim": self.role_claim,
            "administratorValues": list(self.administrator_values),
            "viewerValues": list(self.viewer_values),
            "scopes": self.scopes,
            "updated": self.updated,
        }


def values_json(values: tuple[str, ...]) -> str:
    return json.dumps(list(values))
