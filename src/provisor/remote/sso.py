"""The console's single sign-on, ``/api/v1/console/sso``: the tenant's OpenID Connect provider."""

from __future__ import annotations

from typing import TypedDict

from provisor.remote.session import Session

SSO = "/api/v1/console/sso"


class SsoInfo(TypedDict):
    """The provider, as the server shows it (never the client secret)."""

    label: str
    issuer: str
    clientId: str
    roleClaim: str
    administratorValues: list[str]
    viewerValues: list[str]
    scopes: str
    updated: str


class Sso:
    """``remote.sso``: show, set and clear the tenant's single sign-on."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def show(self) -> SsoInfo:
        found: SsoInfo = self._session.json("GET", SSO)
        return found

    def set(
        self,
        *,
        label: str,
        issuer: str,
        client_id: str,
        client_secret: str = "",
        role_claim: str = "groups",
        administrator_values: list[str] | None = None,
        viewer_values: list[str] | None = None,
        scopes: str | None = None,
    ) -> SsoInfo:
        """Set the provider; without ``client_secret`` the stored one is kept."""
        body: dict[str, object] = {
            "label": label,
            "issuer": issuer,
            "clientId": client_id,
            "roleClaim": role_claim,
            "administratorValues": administrator_values or [],
            "viewerValues": viewer_values or [],
        }
        if client_secret:
            body["clientSecret"] = client_secret
        if scopes is not None:
            body["scopes"] = scopes
        found: SsoInfo = self._session.json("PUT", SSO, json=body)
        return found

    def clear(self) -> None:
        self._session.call("DELETE", SSO)
