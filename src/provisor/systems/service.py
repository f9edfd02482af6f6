"""Managing systems: create, change, delete, properties, transformations and their history.

Every change is one transaction and moves the system's version (its ETag). Credentials are
encrypted before they reach the database and leave the service only masked, except to build
a connector.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection

from provisor.connectors.base import Connector, ConnectorConfig, ConnectorError, Role
from provisor.connectors.outbound import policy_of, unusable_url
from provisor.connectors.paths import file_roots
from provisor.connectors.types import ConnectorType, Kind, connector_type
from provisor.errors import (
    ConfigError,
    ConflictError,
    InvalidTransformationError,
    NotFoundError,
    PreconditionFailedError,
)
from provisor.storage import certificates
from provisor.storage import systems as store
from provisor.storage.database import Database
from provisor.storage.systems import PropertyRow, SystemRow
from provisor.systems.model import (
    KINDS,
    ORIGIN_CUSTOMER,
    NewSystem,
    System,
    SystemChanges,
    TransformationVersion,
)
from provisor.systems.secrets import ALWAYS_SECRET, MASK, CredentialCipher
from provisor.timestamps import now
from provisor.transform.defaults import default_transformation
from provisor.transform.document import compile_document, placeholders, read_document


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """How many customer-managed systems of each role a tenant may have (spec §4.2)."""

    source: int | None = 20
    target: int | None = 50
    proxy: int | None = None

    def of(self, role: Role) -> int | None:
        return {Role.SOURCE: self.source, Role.TARGET: self.target, Role.PROXY: self.proxy}[role]


@dataclass(frozen=True, slots=True)
class TestResult:
    ok: bool
    message: str
    seconds: float


class SystemService:
    def __init__(
        self,
        db: Database,
        cipher: CredentialCipher,
        *,
        limits: Limits | None = None,
        services: Mapping[str, Any] | None = None,
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.limits = limits or Limits()
        self.services = dict(services or {})  # lent to connectors (directory, data_dir)

    # -- reading ----------------------------------------------------------------------------

    def get(self, id_or_name: str) -> System:
        with self.db.read() as conn:
            return self._view(conn, self._row(conn, id_or_name))

    def all(
        self,
        *,
        role: Role | None = None,
        type: str | None = None,
        enabled: bool | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[System], int]:
        type_id = _type(type).id if type else None
        with self.db.read() as conn:
            rows, total = store.list_systems(
                conn,
                role=Role(role).value if role else None,
                type=type_id,
                enabled=enabled,
                offset=offset,
                limit=limit,
            )
            return self._views(conn, rows), total

    def _row(self, conn: Connection, id_or_name: str, *, lock: bool = False) -> SystemRow:
        row = store.get_system(conn, id_or_name, lock=lock) or store.find_system(conn, id_or_name)
        if row is None:
            raise NotFoundError(f"No system {id_or_name!r}.")
        return row

    def _view(self, conn: Connection, row: SystemRow) -> System:
        return self._views(conn, [row])[0]

    def _views(self, conn: Connection, rows: Sequence[SystemRow]) -> list[System]:
        ids = [r.id for r in rows]
        properties = store.properties_of(conn, ids)
        sources = store.sources_of(conn, ids)
        views = []
        for row in rows:
            kind = _type(row.type)
            role = Role(row.role)
            shown = {p.key: (MASK if p.credential else p.value) for p in properties[row.id]}
            plain = {p.key: ("x" if p.credential else p.value) for p in properties[row.id]}
            current = {}
            for k in KINDS[role]:
                found = store.get_transformation(conn, row.id, k)
                if found is not None:
                    current[k] = found.version
            views.append(
                System(
                    id=row.id,
                    name=row.name,
                    description=row.description,
                    type=kind,
                    role=role,
                    enabled=row.enabled,
                    origin=row.origin,
                    version=row.version,
                    created=row.created,
                    last_modified=row.last_modified,
                    properties=shown,
                    credential_keys=tuple(p.key for p in properties[row.id] if p.credential),
                    source_system_ids=tuple(sources[row.id]),
                    transformations=current,
                    problems=tuple(_missing(kind, role, plain)),
                )
            )
        return views

    # -- creating and changing ----------------------------------------------------------------

    def create(self, new: NewSystem, *, author: str, origin: str = ORIGIN_CUSTOMER) -> System:
        kind = _type(new.type)
        if new.role not in kind.roles:
            roles = ", ".join(sorted(kind.roles))
            raise ConfigError(f"A {kind.name} system can be a {roles} system, not a {new.role}.")
        if new.source_system_ids and new.role is not Role.TARGET:
            raise ConfigError("Only target systems have source systems.")
        unknown = set(new.transformations) - set(KINDS[new.role])
        if unknown:
            raise ConfigError(
                f"A {new.role} system has no {', '.join(sorted(unknown))} transformation."
            )
        wanted = {**kind.seeded_properties(new.role), **new.properties}
        credentials = set(new.credential_keys) | _always_secret(kind)
        properties = self._merge(kind, new.role, {}, wanted, credentials, check_url=False)
        stamp = now()
        row = SystemRow(
            id=str(uuid.uuid4()),
            name=new.name,
            description=new.description,
            type=kind.id,
            role=new.role.value,
            enabled=new.enabled,
            origin=origin,
            version=1,
            created=stamp,
            last_modified=stamp,
        )
        secret = {k for k, r in properties.items() if r.credential} | _always_secret(kind)
        public = {k: r.value for k, r in properties.items() if k not in secret}
        documents = {
            k: self._document_text(new.transformations.get(k), kind, new.role, k, public, secret)
            for k in KINDS[new.role]
        }
        with self.db.write() as conn:
            limit = self.limits.of(new.role)
            if limit is not None and store.count_role(conn, new.role.value) >= limit:
                raise ConflictError(
                    f"The tenant already has {limit} {new.role} systems, the most allowed."
                )
            store.insert_system(conn, row)
            store.replace_properties(conn, row.id, properties.values())
            if new.role is Role.TARGET:
                self._check_sources(conn, new.source_system_ids)
                store.set_sources(conn, row.id, new.source_system_ids)
            for k, text in documents.items():
                given = k in new.transformations
                store.add_transformation(
                    conn,
                    row.id,
                    k,
                    text=text,
                    description="Initial version" if given else f"Default {kind.name} version",
                    author=author,
                    created=stamp,
                )
            return self._view(conn, row)

    def update(
        self,
        id_or_name: str,
        changes: SystemChanges,
        *,
        author: str,
        if_version: int | None = None,
    ) -> System:
        with self.db.write() as conn:
            row = self._locked(conn, id_or_name, if_version)
            kind, role = _type(row.type), Role(row.role)
            if changes.properties is not None or changes.credential_keys is not None:
                stored = {p.key: p for p in store.properties_of(conn, [row.id])[row.id]}
                credentials = {k for k, p in stored.items() if p.credential}
                if changes.credential_keys is not None:
                    credentials = set(changes.credential_keys) | _always_secret(kind)
                merged = self._merge(
                    kind, role, stored, changes.properties or {}, credentials, check_url=True
                )
                store.replace_properties(conn, row.id, merged.values())
            if changes.source_system_ids is not None:
                if role is not Role.TARGET:
                    raise ConfigError("Only target systems have source systems.")
                self._check_sources(conn, changes.source_system_ids)
                store.set_sources(conn, row.id, changes.source_system_ids)
            row = _changed(
                row,
                name=changes.name,
                description=changes.description,
                enabled=changes.enabled,
            )
            store.update_system(conn, row)
            return self._view(conn, row)

    def set_enabled(self, id_or_name: str, enabled: bool, *, author: str) -> System:
        return self.update(id_or_name, SystemChanges(enabled=enabled), author=author)

    def replace_properties(
        self,
        id_or_name: str,
        properties: Mapping[str, str | None],
        credential_keys: Sequence[str] | None,
        *,
        author: str,
        if_version: int | None = None,
    ) -> System:
        """Replace every property: the ones not given are removed (masks keep credentials)."""
        with self.db.write() as conn:
            row = self._locked(conn, id_or_name, if_version)
            kind, role = _type(row.type), Role(row.role)
            stored = {p.key: p for p in store.properties_of(conn, [row.id])[row.id]}
            credentials = {k for k, p in stored.items() if p.credential}
            if credential_keys is not None:
                credentials = set(credential_keys) | _always_secret(kind)
            wanted: dict[str, str | None] = {k: None for k in stored if k not in properties}
            wanted.update(properties)
            merged = self._merge(kind, role, stored, wanted, credentials, check_url=True)
            store.replace_properties(conn, row.id, merged.values())
            row = _changed(row)
            store.update_system(conn, row)
            return self._view(conn, row)

    def delete(self, id_or_name: str, *, if_version: int | None = None) -> System:
        with self.db.write() as conn:
            row = self._locked(conn, id_or_name, if_version)
            view = self._view(conn, row)
            certificates.revoke_inbound_of(conn, system_id=row.id, when=now())
            store.delete_system(conn, row.id)
            return view

    def _locked(self, conn: Connection, id_or_name: str, if_version: int | None) -> SystemRow:
        row = self._row(conn, id_or_name, lock=True)
        if if_version is not None and row.version != if_version:
            raise PreconditionFailedError(
                f"System {row.name!r} is at version {row.version}, not {if_version}: "
                "read it again before changing it."
            )
        return row

    def _check_sources(self, conn: Connection, source_ids: Sequence[str]) -> None:
        for source_id in source_ids:
            source = store.get_system(conn, source_id)
            if source is None:
                raise ConfigError(f"sourceSystemIds: no system {source_id!r}.")
            if source.role != Role.SOURCE:
                raise ConfigError(
                    f"sourceSystemIds: {source.name!r} is a {source.role} system, not a source."
                )

    def _merge(
        self,
        kind: ConnectorType,
        role: Role,
        stored: Mapping[str, PropertyRow],
        wanted: Mapping[str, str | None],
        credentials: set[str],
        *,
        check_url: bool,
    ) -> dict[str, PropertyRow]:
        """The new property rows: ``wanted`` applied on ``stored``, checked, encrypted."""
        rows = dict(stored)
        given_secrets: set[str] = set()
        for key, value in wanted.items():
            if not isinstance(key, str) or not key.strip() or len(key) > 255:
                raise ConfigError(f"Property name {key!r}: 1 to 255 characters.")
            if value is None:
                rows.pop(key, None)
                continue
            if key in credentials:
                if value == MASK:
                    if key not in stored or not stored[key].credential:
                        raise ConfigError(
                            f"{key}: the mask stands for a stored value; there is none."
                        )
                    continue
                rows[key] = PropertyRow(key, self.cipher.encrypt(value), True)
                given_secrets.add(key)
            else:
                if value == MASK:
                    raise ConfigError(f"{key}: the mask stands for a credential; send the value.")
                rows[key] = PropertyRow(key, value, False)
        for key in credentials:  # keys declared credentials after being stored plain
            row = rows.get(key)
            if row is not None and not row.credential:
                rows[key] = PropertyRow(key, self.cipher.encrypt(row.value), True)
                given_secrets.add(key)
        demoted = sorted(k for k, r in rows.items() if r.credential and k not in credentials)
        if demoted:  # only who enters the value again may make a credential plain text
            raise ConfigError(
                f"{', '.join(demoted)}: a credential stays one unless its value is sent "
                "again with the change (keep it in credentialKeys, or send the value)."
            )
        if check_url:
            moved = [
                p.key
                for p in kind.properties
                if p.kind is Kind.URL and _value(stored.get(p.key)) != _value(rows.get(p.key))
            ]
            stale = sorted(
                k for k, r in rows.items() if r.credential and k not in given_secrets and r.value
            )
            if moved and stale:
                raise ConfigError(
                    f"Changing {', '.join(moved)} requires entering the credentials again: "
                    f"{', '.join(stale)}."
                )
        plain = {k: ("x" if r.credential else r.value) for k, r in rows.items()}
        problems = kind.problems(role, plain, complete=False)
        roots = file_roots(self.services)
        policy = policy_of(self.services)
        for spec in kind.properties:
            value = plain.get(spec.key)
            if not value:
                continue
            if spec.kind is Kind.FILE:
                try:
                    roots.locate(spec.key, value)
                except ConfigError as exc:
                    problems.append(exc.message)
            elif spec.kind is Kind.URL and (problem := unusable_url(value)):
                problems.append(f"{spec.key}: {problem}")
            elif spec.kind is Kind.URL and (problem := policy.url_problem(value)):
                problems.append(f"{spec.key}: the outbound policy refuses it: {problem}")
        if problems:
            raise ConfigError("Invalid properties: " + "; ".join(problems))
        return rows

    def _plain(self, rows: Mapping[str, PropertyRow]) -> dict[str, str]:
        return {
            k: (self.cipher.decrypt(r.value) if r.credential else r.value) for k, r in rows.items()
        }

    def effective_properties(self, id_or_name: str) -> dict[str, str]:
        """The properties with credentials decrypted and type defaults filled in."""
        with self.db.read() as conn:
            row = self._row(conn, id_or_name)
            stored = {p.key: p for p in store.properties_of(conn, [row.id])[row.id]}
        return _type(row.type).effective(self._plain(stored), Role(row.role))

    def transformation_properties(self, id_or_name: str) -> dict[str, str]:
        """The properties ``%key%`` placeholders and conditions of transformations see:
        type defaults filled in, every credential left out (never decrypted)."""
        with self.db.read() as conn:
            row = self._row(conn, id_or_name)
            public, _ = _public_properties(conn, row)
        return public

    # -- transformations ------------------------------------------------------------------------

    def transformation(
        self, id_or_name: str, kind: str, version: int | None = None
    ) -> TransformationVersion:
        with self.db.read() as conn:
            row = self._row(conn, id_or_name)
            _check_kind(row, kind)
            found = store.get_transformation(conn, row.id, kind, version)
        if found is None:
            what = f"version {version} of the" if version is not None else "a"
            raise NotFoundError(f"System {row.name!r} has no {what} {kind} transformation.")
        return _version(found)

    def history(
        self, id_or_name: str, kind: str, *, offset: int = 0, limit: int | None = 20
    ) -> tuple[list[TransformationVersion], int]:
        with self.db.read() as conn:
            row = self._row(conn, id_or_name)
            _check_kind(row, kind)
            found, total = store.transformation_history(
                conn, row.id, kind, offset=offset, limit=limit
            )
        return [_version(r) for r in found], total

    def save_transformation(
        self,
        id_or_name: str,
        kind: str,
        document: Any,
        *,
        description: str,
        author: str,
        if_version: int | None = None,
    ) -> TransformationVersion:
        """Check and store a new version; InvalidTransformationError lists every problem."""
        if not description.strip():
            raise ConfigError("A description of the change is required.")
        with self.db.read() as conn:
            row = self._row(conn, id_or_name)
            properties, secret = _public_properties(conn, row)
        _check_kind(row, kind)
        text = self._document_text(
            document, _type(row.type), Role(row.role), kind, properties, secret
        )
        with self.db.write() as conn:
            row = self._locked(conn, row.id, if_version)
            stamp = now()
            version = store.add_transformation(
                conn,
                row.id,
                kind,
                text=text,
                description=description.strip(),
                author=author,
                created=stamp,
            )
            store.update_system(conn, _changed(row))
        return TransformationVersion(
            kind=kind,
            version=version,
            text=text,
            description=description.strip(),
            author=author,
            created=stamp,
        )

    def apply_version(
        self, id_or_name: str, kind: str, version: int, *, author: str
    ) -> TransformationVersion:
        """Make an older version current again (as a new version)."""
        old = self.transformation(id_or_name, kind, version)
        return self.save_transformation(
            id_or_name, kind, old.text, description=f"Applied version {version}", author=author
        )

    def reset_transformation(
        self, id_or_name: str, kind: str, *, to: str = "default", author: str
    ) -> TransformationVersion:
        """Back to the type's default document (``default``) or to version 1 (``initial``)."""
        if to == "initial":
            first = self.transformation(id_or_name, kind, 1)
            return self.save_transformation(
                id_or_name,
                kind,
                first.text,
                description="Reset to the initial version",
                author=author,
            )
        if to != "default":
            raise ConfigError("Reset to 'default' or to 'initial'.")
        system = self.get(id_or_name)
        text = default_text(system.type, system.role, kind)
        return self.save_transformation(
            id_or_name,
            kind,
            text,
            description=f"Default {system.type.name} version",
            author=author,
        )

    def _document_text(
        self,
        document: Any,
        kind: ConnectorType,
        role: Role,
        which: str,
        properties: Mapping[str, str],
        secret: set[str],
    ) -> str:
        """The text to store for a document (the type's default when None), checked; a
        ``%key%`` placeholder of a credential (``secret``) is refused: transformations
        never see credentials."""
        if document is None:
            text = default_text(kind, role, which)
        elif isinstance(document, str):
            text = document
        elif isinstance(document, dict):
            text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()
        else:
            raise InvalidTransformationError(["document: a transformation is a JSON object"])
        named = sorted(placeholders(read_document(text)) & secret)
        if named:
            raise InvalidTransformationError(
                [
                    f"%{key}%: {key} is a credential; transformations cannot use credentials"
                    for key in named
                ]
            )
        public = {k: v for k, v in kind.effective(properties, role).items() if k not in secret}
        compile_document(text, public)
        return text

    # -- connectors -------------------------------------------------------------------------------

    def connector(self, id_or_name: str) -> Connector:
        """A connector for the system, with its credentials decrypted."""
        system = self.get(id_or_name)
        config = ConnectorConfig(
            system_id=system.id,
            system_name=system.name,
            role=system.role,
            properties=self.effective_properties(system.id),
            services=self.services,
        )
        return system.type.build(config)

    async def test_connection(self, id_or_name: str) -> TestResult:
        """Whether the back-end answers with the system's settings; never raises for it."""
        started = time.monotonic()
        system = self.get(id_or_name)
        if system.problems:
            return TestResult(False, "; ".join(system.problems), 0.0)
        try:
            connector = self.connector(system.id)
            async with connector:
                message = await connector.test_connection()
        except (ConnectorError, ConfigError) as exc:
            return TestResult(False, exc.message, time.monotonic() - started)
        return TestResult(True, message, time.monotonic() - started)


def _type(name: str) -> ConnectorType:
    try:
        return connector_type(name)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from exc


def _public_properties(conn: Connection, row: SystemRow) -> tuple[dict[str, str], set[str]]:
    """What transformations of a system see (``transformation_properties``), and the keys
    that are its credentials: stored as such, or always."""
    stored = store.properties_of(conn, [row.id])[row.id]
    secret = {p.key for p in stored if p.credential} | _always_secret(_type(row.type))
    public = {p.key: p.value for p in stored if not p.credential}
    values = _type(row.type).effective(public, Role(row.role))
    return {k: v for k, v in values.items() if k not in secret}, secret


def _always_secret(kind: ConnectorType) -> frozenset[str]:
    """The keys that are credentials on every system of a type, whatever credentialKeys says."""
    return kind.credential_keys | ALWAYS_SECRET


def _check_kind(row: SystemRow, kind: str) -> None:
    role = Role(row.role)
    if kind not in KINDS[role]:
        raise NotFoundError(
            f"A {role} system has a {' and a '.join(KINDS[role])} transformation, not a {kind}."
        )


def default_text(kind: ConnectorType, role: Role, which: str) -> str:
    """The default document of a type for a role and kind (read or write)."""
    names = [f"proxy-{which}", which] if role is Role.PROXY else [which]
    for name in names:
        try:
            return default_transformation(kind.id, name)
        except KeyError:
            continue
    return '{"user": {"mappings": [{"sourcePath": "$", "targetPath": "$"}]}}'


def document_of(text: str) -> dict[str, Any]:
    """A stored text as a JSON object (comments dropped)."""
    return read_document(text)


def _missing(kind: ConnectorType, role: Role, plain: Mapping[str, str]) -> list[str]:
    return [
        f"{p.key} is required"
        for p in kind.properties
        if role in p.required and not plain.get(p.key)
    ]


def _value(row: PropertyRow | None) -> str | None:
    return None if row is None else row.value


def _changed(row: SystemRow, **fields: Any) -> SystemRow:
    values = {k: v for k, v in fields.items() if v is not None}
    return SystemRow(
        id=row.id,
        name=values.get("name", row.name),
        description=values.get("description", row.description),
        type=row.type,
        role=row.role,
        enabled=values.get("enabled", row.enabled),
        origin=row.origin,
        version=row.version + 1,
        created=row.created,
        last_modified=now(),
    )


def _version(row: store.TransformationRow) -> TransformationVersion:
    return TransformationVersion(
        kind=row.kind,
        version=row.version,
        text=row.text,
        description=row.description,
        author=row.author,
        created=row.created,
    )
