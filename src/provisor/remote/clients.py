"""The technical users (clients) of the admin API, ``/api/v1/clients``."""

from __future__ import annotations

from typing import TypedDict

from provisor.remote.session import Session, path

CLIENTS = "/api/v1/clients"
ME = "/api/v1/me"


class Me(TypedDict):
    """The calling technical user, as the server authenticated it."""

    clientId: str
    name: str
    permissions: list[str]
    authentication: str  # basic, bearer or certificate
    system: str | None  # the system a certificate confines it to
    tenant: str


class SecretInfo(TypedDict):
    """A secret's metadata (never the secret)."""

    id: str
    created: str
    expires: str | None


class ClientInfo(TypedDict):
    """A technical user."""

    clientId: str
    name: str
    description: str
    permissions: list[str]
    created: str
    secrets: list[SecretInfo]


class ClientWithSecret(ClientInfo):
    """A technical user with the secret just made, shown this once."""

    clientSecret: str


class ClientList(TypedDict):
    items: list[ClientInfo]
    total: int


class Clients:
    """``remote.clients``: create, list, show, change, rotate the secret of, delete technical
    users (named by id or name)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def me(self) -> Me:
        """The technical user these credentials authenticate as (any permission may ask)."""
        found: Me = self._session.json("GET", ME)
        return found

    def create(
        self,
        name: str,
        permissions: list[str],
        *,
        description: str = "",
        expires_in_days: int | None = None,
    ) -> ClientWithSecret:
        body: dict[str, object] = {
            "name": name,
            "permissions": permissions,
            "description": description,
        }
        if expires_in_days is not None:
            body["expiresInDays"] = expires_in_days
        created: ClientWithSecret = self._session.json("POST", CLIENTS, json=body)
        return created

    def update(
        self,
        client: str,
        *,
        permissions: list[str] | None = None,
        description: str | None = None,
    ) -> ClientInfo:
        """Change the permissions (all of them) or the description of a technical user."""
        body: dict[str, object] = {}
        if permissions is not None:
            body["permissions"] = permissions
        if description is not None:
            body["description"] = description
        changed: ClientInfo = self._session.json("PATCH", path(CLIENTS, client), json=body)
        return changed

    def list(self) -> ClientList:
        found: ClientList = self._session.json("GET", CLIENTS)
        return found

    def show(self, client: str) -> ClientInfo:
        found: ClientInfo = self._session.json("GET", path(CLIENTS, client))
        return found

    def rotate_secret(
        self, client: str, *, keep_previous: bool = False, expires_in_days: int | None = None
    ) -> ClientWithSecret:
        body: dict[str, object] = {"keepPrevious": keep_previous}
        if expires_in_days is not None:
            body["expiresInDays"] = expires_in_days
        rotated: ClientWithSecret = self._session.json(
            "POST", path(CLIENTS, client, "rotate-secret"), json=body
        )
        return rotated

    def delete(self, client: str) -> None:
        self._session.call("DELETE", path(CLIENTS, client))
