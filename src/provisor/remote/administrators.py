"""The administrators (people of the console) of the admin API, ``/api/v1/administrators``."""

from __future__ import annotations

from typing import NotRequired, TypedDict

from provisor.remote.session import Session, path

ADMINISTRATORS = "/api/v1/administrators"


class AdministratorInfo(TypedDict):
    """An administrator (never a password or a second factor's secret)."""

    id: str
    name: str
    role: str  # administrator, viewer (operator in the installation)
    origin: str  # local or sso
    hasPassword: bool
    totpEnabled: bool
    created: str
    lastLogin: str | None
    password: NotRequired[str]  # generated: in the answer that made it, this once


class AdministratorPage(TypedDict):
    items: list[AdministratorInfo]
    next: str | None  # the ``after`` of the next page


class Administrators:
    """``remote.administrators``: create, list, show, change the role of, reset the password
    or second factor of, sign out, delete administrators (named by name)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def create(self, name: str, role: str, password: str | None = None) -> AdministratorInfo:
        """A local administrator; the answer holds the password when it was generated."""
        body: dict[str, object] = {"name": name, "role": role}
        if password is not None:
            body["password"] = password
        created: AdministratorInfo = self._session.json("POST", ADMINISTRATORS, json=body)
        return created

    def list(self, *, search: str = "", after: str = "", count: int = 50) -> AdministratorPage:
        params: dict[str, object] = {"count": count}
        if search:
            params["search"] = search
        if after:
            params["after"] = after
        found: AdministratorPage = self._session.json("GET", ADMINISTRATORS, params=params)
        return found

    def show(self, name: str) -> AdministratorInfo:
        found: AdministratorInfo = self._session.json("GET", path(ADMINISTRATORS, name))
        return found

    def set_role(self, name: str, role: str) -> AdministratorInfo:
        changed: AdministratorInfo = self._session.json(
            "PATCH", path(ADMINISTRATORS, name), json={"role": role}
        )
        return changed

    def reset_password(self, name: str, password: str | None = None) -> AdministratorInfo:
        """A new password (generated when not given: then in the answer, this once)."""
        body = {"password": password} if password is not None else {}
        reset: AdministratorInfo = self._session.json(
            "POST", path(ADMINISTRATORS, name, "password"), json=body
        )
        return reset

    def reset_second_factor(self, name: str) -> AdministratorInfo:
        reset: AdministratorInfo = self._session.json(
            "POST", path(ADMINISTRATORS, name, "second-factor", "reset")
        )
        return reset

    def end_sessions(self, name: str) -> int:
        ended: dict[str, int] = self._session.json(
            "POST", path(ADMINISTRATORS, name, "sessions", "end")
        )
        return ended["ended"]

    def delete(self, name: str) -> None:
        self._session.call("DELETE", path(ADMINISTRATORS, name))
