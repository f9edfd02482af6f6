"""Systems, their transformations and the connector types over the admin API (``/api/v1``).

The JSON the API answers is typed here as it arrives (camelCase keys); the CLI and the tests
read it. Systems are named by id or name everywhere (the API accepts both).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict

from provisor.remote.session import Session, path

API = "/api/v1"
PAGE = 1000  # the API's largest page
ResetTo = Literal["default", "initial"]


class Link(TypedDict):
    """Another system a system is linked to."""

    id: str
    name: str


class System(TypedDict):
    """A system (credentials masked)."""

    id: str
    name: str
    description: str
    type: str
    typeName: str
    role: str
    enabled: bool
    origin: str
    connectorVersion: str | None
    properties: dict[str, str]
    credentialKeys: list[str]
    transformations: dict[str, int]
    problems: list[str]
    version: int
    created: str
    lastModified: str
    sourceSystemIds: NotRequired[list[str]]  # targets
    sourceSystems: NotRequired[list[Link]]  # targets
    targetSystems: NotRequired[list[Link]]  # sources


class Imported(System):
    """A system created from an export, with what to do next."""

    warnings: list[str]


class SystemPage(TypedDict):
    items: list[System]
    total: int
    offset: int
    limit: int


class VersionSummary(TypedDict):
    """A version of a transformation, without its document."""

    kind: str
    version: int
    description: str
    modifiedBy: str
    lastModified: str


class Transformation(VersionSummary):
    """A version of a transformation with its document and its text (comments kept)."""

    document: dict[str, Any]
    text: str


class History(TypedDict):
    items: list[VersionSummary]
    total: int
    offset: int
    limit: int


class ConnectionTest(TypedDict):
    ok: bool
    message: str
    seconds: float


class PropertySpec(TypedDict):
    """A property of a connector type."""

    key: str
    type: str
    default: str | None
    seeded: bool
    roles: list[str]
    requiredFor: list[str]
    description: str
    allowedValues: NotRequired[list[str]]
    minimum: NotRequired[int]
    maximum: NotRequired[int]


class ConnectorType(TypedDict):
    id: str
    name: str
    prefix: str
    roles: list[str]
    entityTypes: list[str]
    description: str
    properties: list[PropertySpec]


def _if_match(version: int | None) -> dict[str, str] | None:
    return None if version is None else {"If-Match": f'W/"{version}"'}


class Systems:
    """The systems of the admin API (permission ``admin``)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    # -- connector types ----------------------------------------------------------------------

    def connector_types(self) -> list[ConnectorType]:
        found: list[ConnectorType] = self._session.json("GET", f"{API}/connector-types")["items"]
        return found

    def connector_type(self, type_id_or_name: str) -> ConnectorType:
        found: ConnectorType = self._session.json(
            "GET", path(f"{API}/connector-types", type_id_or_name)
        )
        return found

    def default_transformation(self, type_id_or_name: str, name: str) -> dict[str, Any]:
        """A type's default document: read, write, proxy-read or proxy-write."""
        found: dict[str, Any] = self._session.json(
            "GET", path(f"{API}/connector-types", type_id_or_name, "transformations", name)
        )
        return found

    # -- systems ------------------------------------------------------------------------------

    def listing(
        self,
        *,
        role: str | None = None,
        type: str | None = None,
        enabled: bool | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> SystemPage:
        """A page of systems, enabled ones first, then by name."""
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if role is not None:
            params["role"] = str(role)
        if type is not None:
            params["type"] = type
        if enabled is not None:
            params["enabled"] = "true" if enabled else "false"
        found: SystemPage = self._session.json("GET", f"{API}/systems", params=params)
        return found

    def all(
        self, *, role: str | None = None, type: str | None = None, enabled: bool | None = None
    ) -> list[System]:
        """Every system that matches, page after page."""
        found: list[System] = []
        while True:
            page = self.listing(
                role=role, type=type, enabled=enabled, offset=len(found), limit=PAGE
            )
            found.extend(page["items"])
            if not page["items"] or len(found) >= page["total"]:
                return found

    def show(self, system: str) -> System:
        found: System = self._session.json("GET", path(f"{API}/systems", system))
        return found

    def create(self, new: Mapping[str, Any]) -> System:
        """Create a system: name, type, role, properties, credentialKeys, sourceSystemIds..."""
        found: System = self._session.json("POST", f"{API}/systems", json=dict(new))
        return found

    def update(
        self, system: str, changes: Mapping[str, Any], *, if_match: int | None = None
    ) -> System:
        """Change what ``changes`` gives (absent fields stay); ``if_match``: the version read
        before (the call fails when the system changed meanwhile)."""
        found: System = self._session.json(
            "PATCH",
            path(f"{API}/systems", system),
            json=dict(changes),
            headers=_if_match(if_match),
        )
        return found

    def delete(self, system: str, *, if_match: int | None = None) -> None:
        self._session.call("DELETE", path(f"{API}/systems", system), headers=_if_match(if_match))

    def set_enabled(self, system: str, enabled: bool) -> System:
        action = "enable" if enabled else "disable"
        found: System = self._session.json("POST", path(f"{API}/systems", system, action))
        return found

    def test(self, system: str) -> ConnectionTest:
        """Whether the system's back-end answers with its settings."""
        found: ConnectionTest = self._session.json("POST", path(f"{API}/systems", system, "test"))
        return found

    def export(self, system: str) -> dict[str, Any]:
        """The system as an export (credentials left out)."""
        found: dict[str, Any] = self._session.json("GET", path(f"{API}/systems", system, "export"))
        return found

    def export_csv(self, system: str) -> bytes:
        """A proxy system as a SAP Identity Management repository (CSV)."""
        response = self._session.call(
            "GET", path(f"{API}/systems", system, "export"), params={"format": "csv"}
        )
        return response.content

    def import_system(
        self, export: Mapping[str, Any], *, name: str | None = None, role: str | None = None
    ) -> Imported:
        """Create a system from an export, renamed with ``name``; ``role`` must be the
        export's."""
        params = {k: str(v) for k, v in (("name", name), ("role", role)) if v is not None}
        found: Imported = self._session.json(
            "POST", f"{API}/systems/import", json=dict(export), params=params
        )
        return found

    # -- transformations ------------------------------------------------------------------------

    def transformation(self, system: str, kind: str, version: int | None = None) -> Transformation:
        """A version of a transformation (the current one without ``version``)."""
        segments = [system, "transformations", kind]
        if version is not None:
            segments += ["versions", str(version)]
        found: Transformation = self._session.json("GET", path(f"{API}/systems", *segments))
        return found

    def save_transformation(
        self,
        system: str,
        kind: str,
        text: str,
        *,
        description: str,
        if_match: int | None = None,
    ) -> Transformation:
        """Check and save a new current version (its text, comments kept)."""
        found: Transformation = self._session.json(
            "PUT",
            path(f"{API}/systems", system, "transformations", kind),
            json={"text": text, "description": description},
            headers=_if_match(if_match),
        )
        return found

    def history(self, system: str, kind: str, *, offset: int = 0, limit: int = 20) -> History:
        """A page of a transformation's versions, newest first."""
        found: History = self._session.json(
            "GET",
            path(f"{API}/systems", system, "transformations", kind, "versions"),
            params={"offset": offset, "limit": limit},
        )
        return found

    def apply_version(self, system: str, kind: str, version: int) -> Transformation:
        """Make an older version current again (saved as a new version)."""
        found: Transformation = self._session.json(
            "POST",
            path(
                f"{API}/systems", system, "transformations", kind, "versions", str(version), "apply"
            ),
        )
        return found

    def reset_transformation(
        self, system: str, kind: str, to: ResetTo = "default"
    ) -> Transformation:
        """Back to the connector type's default (``default``) or to version 1 (``initial``)."""
        found: Transformation = self._session.json(
            "POST",
            path(f"{API}/systems", system, "transformations", kind, "reset"),
            json={"to": to},
        )
        return found
