"""Managing systems: create, change, delete, properties, transformations and their history.

Every change is one transaction and moves the system's version (its ETag); an administrator's
change records its audit entry in that transaction (credential changes name the keys, never
the values). Credentials are encrypted before they reach the database and leave the service
only masked, except to build a connector.

The operations of the admin API (and the CLI) are decorated ``@requires``: the reads with
``view``, the changes (and the connection test, which uses the credentials) with ``admin``
only.
The plain methods taking a context — :meth:`SystemService.get`, :meth:`~SystemService.all`,
:meth:`~SystemService.transformation`, :meth:`~SystemService.effective_properties`,
:meth:`~SystemService.transformation_properties`, :meth:`~SystemService.connector` and
:meth:`~SystemService.connector_services` — are internal: other services (jobs, proxy,
real-time, certificates) call them for the caller they already authorised.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from provisor.auth import inbound
from provisor.connectors.base import Connector, ConnectorConfig, ConnectorError, Role
from provisor.connectors.outbound import policy_of, unusable_url
from provisor.connectors.paths import file_roots
from provisor.connectors.types import ConnectorType, Kind, connector_type, connector_types
from provisor.context import Context, Permission, requires
from provisor.errors import (
    ConfigError,
    ConflictError,
    InputError,
    InvalidTransformationError,
    NotFoundError,
    PreconditionFailedError,
)
from provisor.storage.database import Database, Transaction
from provisor.systems import store
from provisor.systems.model import (
    KINDS,
    ORIGIN_CUSTOMER,
    Link,
    NewSystem,
    System,
    SystemChanges,
    TransformationVersion,
)
from provisor.systems.secrets import ALWAYS_SECRET, MASK, CredentialCipher
from provisor.systems.store import PropertyRow, SystemRow
from provisor.timestamps import now
from provisor.transform.defaults import ROLES as DEFAULT_NAMES
from provisor.transform.defaults import default_transformation
from provisor.transform.document import compile_document, placeholders, read_document
from provisor.transform.engine import Outcome, Transformation
from provisor.transform.locate import Problem, locate
from provisor.types import EntityType, Operation


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


class ClientCertificates(Protocol):
    """Where a system's active client certificate comes from (the certificates' keys): what
    connectors present for ``ClientCertificateAuthentication``."""

    def active_pair(self, ctx: Context, system_id: str) -> tuple[str, str] | None:
        """(certificate PEM, private key PEM) of the system's active client certificate."""


class _CallCertificates:
    """The client certificates as connectors ask for them (``active_pair(system_id)``), for
    the call that builds the connector."""

    __slots__ = ("_ctx", "_source")

    def __init__(self, source: ClientCertificates, ctx: Context) -> None:
        self._source = source
        self._ctx = ctx

    def active_pair(self, system_id: str) -> tuple[str, str] | None:
        return self._source.active_pair(self._ctx, system_id)


class SystemService:
    def __init__(
        self,
        db: Database,
        cipher: CredentialCipher,
        *,
        limits: Limits | None = None,
        services: Mapping[str, Any] | None = None,
        certificates: ClientCertificates | None = None,
    ) -> None:
        """``services``: what connectors are lent (directory, data_dir, file_roots, outbound);
        ``certificates``: the systems' client certificates, which connectors present."""
        self.db = db
        self.cipher = cipher
        self.limits = limits or Limits()
        # Each tenant's limits (its quotas, set by the composition root); else ``limits``.
        self.limits_of: Callable[[str], Limits] = lambda _tenant: self.limits
        self._services = dict(services or {})
        self._certificates = certificates

    # -- connector types ------------------------------------------------------------------------

    @requires(Permission.VIEW)
    def connector_types(self, ctx: Context) -> list[ConnectorType]:
        return connector_types()

    @requires(Permission.VIEW)
    def connector_type(self, ctx: Context, name: str) -> ConnectorType:
        """A connector type by id or name."""
        for kind in connector_types():
            if name in (kind.id, kind.name):
                return kind
        raise NotFoundError(f"No connector type {name!r}.")

    @requires(Permission.VIEW)
    def default_transformation(self, ctx: Context, type_name: str, name: str) -> dict[str, Any]:
        """A connector type's default document (read, write, proxy-read, proxy-write)."""
        kind = self.connector_type(ctx, type_name)
        if name not in DEFAULT_NAMES:
            raise NotFoundError(f"No default {name!r}: one of {', '.join(DEFAULT_NAMES)}.")
        role = Role.PROXY if name.startswith("proxy-") else Role.SOURCE
        which = name.removeprefix("proxy-")
        if role is not Role.PROXY and kind.roles.isdisjoint({Role.SOURCE, Role.TARGET}):
            raise NotFoundError(f"{kind.name} has no {name} transformation.")
        return document_of(default_text(kind, role, which))

    # -- reading (view) ---------------------------------------------------------------------------

    @requires(Permission.VIEW)
    def show(self, ctx: Context, id_or_name: str) -> System:
        """A system, credentials masked."""
        return self.get(ctx, id_or_name)

    @requires(Permission.VIEW)
    def listing(
        self,
        ctx: Context,
        *,
        role: Role | None = None,
        type: str | None = None,
        enabled: bool | None = None,
        name: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[System], int]:
        """A page of systems, enabled ones first, then by name; and how many match.
        ``name``: only those whose name contains it (case-insensitive)."""
        return self.all(
            ctx, role=role, type=type, enabled=enabled, name=name, offset=offset, limit=limit
        )

    # -- reading (internal) -------------------------------------------------------------------

    def get(self, ctx: Context, id_or_name: str) -> System:
        """Internal: a system by id or name (callers authorised the call)."""
        with self.db.read(ctx) as tx:
            return self._view(tx, self._row(tx, id_or_name))

    def all(
        self,
        ctx: Context,
        *,
        role: Role | None = None,
        type: str | None = None,
        enabled: bool | None = None,
        name: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[System], int]:
        """Internal: a page of systems, enabled ones first, then by name; how many match."""
        type_id = _given_type(type).id if type else None
        with self.db.read(ctx) as tx:
            rows, total = store.list_systems(
                tx,
                role=Role(role).value if role else None,
                type=type_id,
                enabled=enabled,
                name=name,
                offset=offset,
                limit=limit,
            )
            return self._views(tx, rows), total

    def _row(self, tx: Transaction, id_or_name: str, *, lock: bool = False) -> SystemRow:
        row = store.get_system(tx, id_or_name, lock=lock) or store.find_system(tx, id_or_name)
        if row is None:
            raise NotFoundError(f"No system {id_or_name!r}.")
        return row

    def _view(self, tx: Transaction, row: SystemRow) -> System:
        return self._views(tx, [row])[0]

    def _views(self, tx: Transaction, rows: Sequence[SystemRow]) -> list[System]:
        ids = [r.id for r in rows]
        properties = store.properties_of(tx, ids)
        sources = store.sources_of(tx, [r.id for r in rows if r.role == Role.TARGET])
        targets = store.targets_of(tx, [r.id for r in rows if r.role == Role.SOURCE])
        names = store.names_of(tx, {i for linked in (sources, targets) for i in _flat(linked)})
        versions = store.current_versions(tx, ids)
        views = []
        for row in rows:
            kind = _type(row.type)
            role = Role(row.role)
            shown = {p.key: (MASK if p.credential else p.value) for p in properties[row.id]}
            plain = {p.key: ("x" if p.credential else p.value) for p in properties[row.id]}
            stored = versions.get(row.id, {})
            current = {k: stored[k] for k in KINDS[role] if k in stored}
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
                    source_system_ids=tuple(sources.get(row.id, ())),
                    source_systems=_links(sources.get(row.id, ()), names),
                    target_systems=_links(targets.get(row.id, ()), names),
                    transformations=current,
                    problems=tuple(_missing(kind, role, plain)),
                )
            )
        return views

    # -- creating and changing ----------------------------------------------------------------

    @requires()
    def create(self, ctx: Context, new: NewSystem, *, origin: str = ORIGIN_CUSTOMER) -> System:
        kind = _given_type(new.type)
        if new.role not in kind.roles:
            roles = ", ".join(sorted(kind.roles))
            raise InputError(f"A {kind.name} system can be a {roles} system, not a {new.role}.")
        if new.source_system_ids and new.role is not Role.TARGET:
            raise InputError("Only target systems have source systems.")
        unknown = set(new.transformations) - set(KINDS[new.role])
        if unknown:
            raise InputError(
                f"A {new.role} system has no {', '.join(sorted(unknown))} transformation."
            )
        wanted = {**kind.seeded_properties(new.role), **new.properties}
        credentials = set(new.credential_keys) | _always_secret(kind)
        properties = self._merge(ctx, kind, new.role, {}, wanted, credentials, check_url=False)
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
        with self.db.write(ctx) as tx:
            limit = self.limits_of(ctx.tenant).of(new.role)
            if limit is not None and store.count_role(tx, new.role.value) >= limit:
                raise ConflictError(
                    f"The tenant already has {limit} {new.role} systems, the most allowed."
                )
            store.insert_system(tx, row)
            store.replace_properties(tx, row.id, properties.values())
            if new.role is Role.TARGET:
                self._check_sources(tx, new.source_system_ids)
                store.set_sources(tx, row.id, new.source_system_ids)
            for k, text in documents.items():
                given = k in new.transformations
                store.add_transformation(
                    tx,
                    row.id,
                    k,
                    text=text,
                    description="Initial version" if given else f"Default {kind.name} version",
                    author=ctx.author,
                    created=stamp,
                )
            tx.audit(
                "system.create",
                row.id,
                {
                    "name": row.name,
                    "type": row.type,
                    "role": row.role,
                    "origin": origin,
                    "credentials": sorted(k for k, r in properties.items() if r.credential),
                },
            )
            return self._view(tx, row)

    @requires()
    def update(
        self,
        ctx: Context,
        id_or_name: str,
        changes: SystemChanges,
        *,
        credentials: Mapping[str, str] | None = None,
        if_match: int | None = None,
    ) -> System:
        """Change what ``changes`` gives (absent fields stay). ``credentials``: values to set
        as credentials, whatever ``changes.credentialKeys`` says: their keys join the
        credential keys (those given, else the stored ones). ``if_match``: the version the
        caller read (PreconditionFailedError when the system moved on)."""
        with self.db.write(ctx) as tx:
            row = self._locked(tx, id_or_name, if_match)
            kind, role = _type(row.type), Role(row.role)
            detail: dict[str, Any] = {}
            given: dict[str, str | None] = dict(credentials or {})
            given.update(changes.properties or {})
            if changes.properties is not None or changes.credential_keys is not None or given:
                stored = {p.key: p for p in store.properties_of(tx, [row.id])[row.id]}
                keys = changes.credential_keys
                if credentials:
                    current = [k for k, p in stored.items() if p.credential]
                    keys = sorted(set(keys or current) | set(credentials))
                wanted_credentials = {k for k, p in stored.items() if p.credential}
                wanted_credentials |= _always_secret(kind)  # a Password is never plain text
                if keys is not None:
                    wanted_credentials = set(keys) | _always_secret(kind)
                merged = self._merge(
                    ctx, kind, role, stored, given, wanted_credentials, check_url=True
                )
                store.replace_properties(tx, row.id, merged.values())
                detail.update(_property_changes(stored, merged, given))
            if changes.source_system_ids is not None:
                if role is not Role.TARGET:
                    raise InputError("Only target systems have source systems.")
                self._check_sources(tx, changes.source_system_ids)
                store.set_sources(tx, row.id, changes.source_system_ids)
                detail["sourceSystemIds"] = list(dict.fromkeys(changes.source_system_ids))
            fields: dict[str, Any] = {
                "name": changes.name,
                "description": changes.description,
                "enabled": changes.enabled,
            }
            detail.update({k: v for k, v in fields.items() if v is not None})
            row = _changed(row, **fields)
            store.update_system(tx, row)
            tx.audit("system.update", row.id, {"version": row.version, **detail})
            return self._view(tx, row)

    def seal_plain_credentials(self, ctx: Context) -> int:
        """Encrypt the credentials earlier versions stored as plain text (a ``Password`` set
        by a later change on a system without credentials); how many. Run at start-up by the
        composition root, as provisor's ``maintenance`` over every tenant."""
        keys = set(ALWAYS_SECRET)
        for kind in connector_types():
            keys |= kind.credential_keys
        sealed = 0
        with self.db.write(ctx) as tx:
            for system_id, type_name, key, value in store.plain_properties(tx, keys):
                try:
                    secret = _always_secret(_type(type_name))
                except ConfigError:  # a type this version no longer knows: leave it
                    continue
                if key in secret:
                    store.seal_property(tx, system_id, key, self.cipher.encrypt(value))
                    sealed += 1
        return sealed

    @requires()
    def set_enabled(self, ctx: Context, id_or_name: str, enabled: bool) -> System:
        """Enable or disable a system (jobs leave a disabled one alone)."""
        with self.db.write(ctx) as tx:
            row = _changed(self._locked(tx, id_or_name, None), enabled=enabled)
            store.update_system(tx, row)
            action = "system.enable" if enabled else "system.disable"
            tx.audit(action, row.id, {"version": row.version})
            return self._view(tx, row)

    @requires()
    def replace_properties(
        self,
        ctx: Context,
        id_or_name: str,
        properties: Mapping[str, str | None],
        credential_keys: Sequence[str] | None,
        *,
        if_match: int | None = None,
    ) -> System:
        """Replace every property: the ones not given are removed (masks keep credentials)."""
        with self.db.write(ctx) as tx:
            row = self._locked(tx, id_or_name, if_match)
            kind, role = _type(row.type), Role(row.role)
            stored = {p.key: p for p in store.properties_of(tx, [row.id])[row.id]}
            credentials = {k for k, p in stored.items() if p.credential} | _always_secret(kind)
            if credential_keys is not None:
                credentials = set(credential_keys) | _always_secret(kind)
            wanted: dict[str, str | None] = {k: None for k in stored if k not in properties}
            wanted.update(properties)
            merged = self._merge(ctx, kind, role, stored, wanted, credentials, check_url=True)
            store.replace_properties(tx, row.id, merged.values())
            row = _changed(row)
            store.update_system(tx, row)
            detail = _property_changes(stored, merged, wanted)
            tx.audit("system.update", row.id, {"version": row.version, **detail})
            return self._view(tx, row)

    @requires()
    def delete(self, ctx: Context, id_or_name: str, *, if_match: int | None = None) -> System:
        """Delete a system, its transformation history and its certificates (the inbound
        ones revoked)."""
        with self.db.write(ctx) as tx:
            row = self._locked(tx, id_or_name, if_match)
            view = self._view(tx, row)
            inbound.revoke_inbound_of(tx, system_id=row.id, when=now())
            store.delete_system(tx, row.id)
            tx.audit("system.delete", row.id, {"name": row.name, "role": row.role})
            return view

    def _locked(self, tx: Transaction, id_or_name: str, if_match: int | None) -> SystemRow:
        row = self._row(tx, id_or_name, lock=True)
        if if_match is not None and row.version != if_match:
            raise PreconditionFailedError(
                f"System {row.name!r} is at version {row.version}, not {if_match}: "
                "read it again before changing it."
            )
        return row

    def _check_sources(self, tx: Transaction, source_ids: Sequence[str]) -> None:
        for source_id in source_ids:
            source = store.get_system(tx, source_id)
            if source is None:
                raise InputError(f"sourceSystemIds: no system {source_id!r}.")
            if source.role != Role.SOURCE:
                raise InputError(
                    f"sourceSystemIds: {source.name!r} is a {source.role} system, not a source."
                )

    def _merge(
        self,
        ctx: Context,
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
                raise InputError(f"Property name {key!r}: 1 to 255 characters.")
            if value is None:
                rows.pop(key, None)
                continue
            if key in credentials:
                if value == MASK:
                    if key not in stored or not stored[key].credential:
                        raise InputError(
                            f"{key}: the mask stands for a stored value; there is none."
                        )
                    continue
                rows[key] = PropertyRow(key, self.cipher.encrypt(value), True)
                given_secrets.add(key)
            else:
                if value == MASK:
                    raise InputError(f"{key}: the mask stands for a credential; send the value.")
                rows[key] = PropertyRow(key, value, False)
        for key in credentials:  # keys declared credentials after being stored plain
            row = rows.get(key)
            if row is not None and not row.credential:
                rows[key] = PropertyRow(key, self.cipher.encrypt(row.value), True)
                given_secrets.add(key)
        demoted = sorted(k for k, r in rows.items() if r.credential and k not in credentials)
        if demoted:  # only who enters the value again may make a credential plain text
            raise InputError(
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
                raise InputError(
                    f"Changing {', '.join(moved)} requires entering the credentials again: "
                    f"{', '.join(stale)}."
                )
        plain = {k: ("x" if r.credential else r.value) for k, r in rows.items()}
        problems = property_problems(kind, role, plain, {**self._services, "context": ctx})
        if problems:
            raise InputError("Invalid properties: " + "; ".join(problems))
        return rows

    def _plain(self, rows: Mapping[str, PropertyRow]) -> dict[str, str]:
        return {
            k: (self.cipher.decrypt(r.value) if r.credential else r.value) for k, r in rows.items()
        }

    def effective_properties(self, ctx: Context, id_or_name: str) -> dict[str, str]:
        """Internal: the properties with credentials decrypted and type defaults filled in."""
        with self.db.read(ctx) as tx:
            row = self._row(tx, id_or_name)
            stored = {p.key: p for p in store.properties_of(tx, [row.id])[row.id]}
        return _type(row.type).effective(self._plain(stored), Role(row.role))

    def transformation_properties(self, ctx: Context, id_or_name: str) -> dict[str, str]:
        """Internal: the properties ``%key%`` placeholders and conditions of transformations
        see: type defaults filled in, every credential left out (never decrypted)."""
        with self.db.read(ctx) as tx:
            row = self._row(tx, id_or_name)
            public, _ = _public_properties(tx, row)
        return public

    # -- transformations ------------------------------------------------------------------------

    def transformation(
        self, ctx: Context, id_or_name: str, kind: str, version: int | None = None
    ) -> TransformationVersion:
        """Internal: a version of a system's transformation (the current one without
        ``version``)."""
        with self.db.read(ctx) as tx:
            row = self._row(tx, id_or_name)
            _check_kind(row, kind)
            found = store.get_transformation(tx, row.id, kind, version)
        if found is None:
            what = f"version {version} of the" if version is not None else "a"
            raise NotFoundError(f"System {row.name!r} has no {what} {kind} transformation.")
        return _version(found)

    @requires(Permission.VIEW)
    def read_transformation(
        self, ctx: Context, id_or_name: str, kind: str, version: int | None = None
    ) -> TransformationVersion:
        """A version of a system's transformation (the current one without ``version``)."""
        return self.transformation(ctx, id_or_name, kind, version)

    @requires(Permission.VIEW)
    def transformations(self, ctx: Context, id_or_name: str) -> list[TransformationVersion]:
        """The current version of each of a system's transformations."""
        system = self.get(ctx, id_or_name)
        return [self.transformation(ctx, system.id, k) for k in system.kinds]

    @requires(Permission.VIEW)
    def history(
        self, ctx: Context, id_or_name: str, kind: str, *, offset: int = 0, limit: int | None = 20
    ) -> tuple[list[TransformationVersion], int]:
        with self.db.read(ctx) as tx:
            row = self._row(tx, id_or_name)
            _check_kind(row, kind)
            found, total = store.transformation_history(
                tx, row.id, kind, offset=offset, limit=limit
            )
        return [_version(r) for r in found], total

    @requires()
    def save_transformation(
        self,
        ctx: Context,
        id_or_name: str,
        kind: str,
        document: Any,
        *,
        description: str,
        if_match: int | None = None,
    ) -> TransformationVersion:
        """Check and store a new version; InvalidTransformationError lists every problem.
        ``document``: a JSON object, or its text (comments kept)."""
        if not description.strip():
            raise InputError("A description of the change is required.")
        with self.db.read(ctx) as tx:
            row = self._row(tx, id_or_name)
            properties, secret = _public_properties(tx, row)
        _check_kind(row, kind)
        text = self._document_text(
            document, _type(row.type), Role(row.role), kind, properties, secret
        )
        with self.db.write(ctx) as tx:
            row = self._locked(tx, row.id, if_match)
            stamp = now()
            version = store.add_transformation(
                tx,
                row.id,
                kind,
                text=text,
                description=description.strip(),
                author=ctx.author,
                created=stamp,
            )
            changed = _changed(row)
            store.update_system(tx, changed)
            tx.audit(
                "transformation.update",
                row.id,
                {"kind": kind, "version": version, "systemVersion": changed.version},
            )
        return TransformationVersion(
            kind=kind,
            version=version,
            text=text,
            description=description.strip(),
            author=ctx.author,
            created=stamp,
        )

    @requires()
    def apply_version(
        self, ctx: Context, id_or_name: str, kind: str, version: int
    ) -> TransformationVersion:
        """Make an older version current again (as a new version)."""
        old = self.transformation(ctx, id_or_name, kind, version)
        return self.save_transformation(
            ctx, id_or_name, kind, old.text, description=f"Applied version {version}"
        )

    @requires()
    def reset_transformation(
        self, ctx: Context, id_or_name: str, kind: str, *, to: str = "default"
    ) -> TransformationVersion:
        """Back to the type's default document (``default``) or to version 1 (``initial``)."""
        if to == "initial":
            first = self.transformation(ctx, id_or_name, kind, 1)
            return self.save_transformation(
                ctx, id_or_name, kind, first.text, description="Reset to the initial version"
            )
        if to != "default":
            raise InputError("Reset to 'default' or to 'initial'.")
        system = self.get(ctx, id_or_name)
        text = default_text(system.type, system.role, kind)
        return self.save_transformation(
            ctx, id_or_name, kind, text, description=f"Default {system.type.name} version"
        )

    @requires(Permission.VIEW)
    def check_transformation(
        self, ctx: Context, id_or_name: str, kind: str, text: str
    ) -> list[Problem]:
        """Every problem that saving ``text`` as the system's ``kind`` transformation would
        refuse it for, each placed in the text; none when it could be saved. Nothing is
        stored."""
        with self.db.read(ctx) as tx:
            row = self._row(tx, id_or_name)
            properties, secret = _public_properties(tx, row)
        _check_kind(row, kind)
        try:
            self._document_text(text, _type(row.type), Role(row.role), kind, properties, secret)
        except InvalidTransformationError as exc:
            return locate(text, exc.problems)
        return []

    @requires(Permission.VIEW)
    def try_transformation(
        self,
        ctx: Context,
        id_or_name: str,
        kind: str,
        entity_type: str,
        entity: Any,
        *,
        operation: str = Operation.READ,
        text: str | None = None,
        variables: dict[str, Any] | None = None,
    ) -> Outcome:
        """The outcome of the system's ``kind`` transformation — the current version, or
        ``text`` (checked as a save would, not stored) — on one entity, with each mapping's
        trace. Nothing is read or written; resolveEntityIds leaves ids as they are."""
        if entity_type not in ENTITY_TYPES:
            raise InputError(f"The entity type is one of {', '.join(ENTITY_TYPES)}.")
        try:
            wanted = Operation(operation)
        except ValueError:
            raise InputError(f"The operation is one of {', '.join(Operation)}.") from None
        with self.db.read(ctx) as tx:
            row = self._row(tx, id_or_name)
            properties, secret = _public_properties(tx, row)
        _check_kind(row, kind)
        if text is None:
            text = self.transformation(ctx, row.id, kind).text
        else:
            text = self._document_text(
                text, _type(row.type), Role(row.role), kind, properties, secret
            )
        return Transformation(text, properties).apply(
            entity_type, entity, operation=wanted, variables=variables, trace=True
        )

    @requires(Permission.VIEW)
    async def sample_entity(
        self, ctx: Context, id_or_name: str, entity_type: str, attribute: str, value: str
    ) -> dict[str, Any] | None:
        """The first entity of the system's back-end whose ``attribute`` equals ``value``,
        as its connector reads it (a sample for trying the read transformation), or None."""
        if entity_type not in ENTITY_TYPES:
            raise InputError(f"The entity type is one of {', '.join(ENTITY_TYPES)}.")
        if not attribute.strip() or not value:
            raise InputError("Give the attribute and the value to look for.")
        try:
            async with self.connector(ctx, id_or_name) as connector:
                found = await connector.find(entity_type, attribute.strip(), value)
        except ConnectorError as exc:
            raise InputError(f"The back-end could not be read: {exc.message}") from exc
        return found[0] if found else None

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

    def connector_services(self, ctx: Context) -> dict[str, Any]:
        """Internal: what a connector built for the call of ``ctx`` is lent: the process's
        services (directory, file roots, outbound policy...), the call's context
        (``"context"``) and the systems' client certificates (``"certificates"``)."""
        services = {**self._services, "context": ctx}
        if self._certificates is not None:
            services["certificates"] = _CallCertificates(self._certificates, ctx)
        return services

    def connector(self, ctx: Context, id_or_name: str) -> Connector:
        """Internal: a connector for the system, with its credentials decrypted, working for
        the call of ``ctx``."""
        system = self.get(ctx, id_or_name)
        config = ConnectorConfig(
            system_id=system.id,
            system_name=system.name,
            role=system.role,
            properties=self.effective_properties(ctx, system.id),
            services=self.connector_services(ctx),
        )
        return system.type.build(config)

    @requires()
    async def test_connection(self, ctx: Context, id_or_name: str) -> TestResult:
        """Whether the back-end answers with the system's settings; never raises for it."""
        started = time.monotonic()
        system = self.get(ctx, id_or_name)
        if system.problems:
            return TestResult(False, "; ".join(system.problems), 0.0)
        try:
            connector = self.connector(ctx, system.id)
            async with connector:
                message = await connector.test_connection()
        except (ConnectorError, ConfigError, InputError) as exc:
            return TestResult(False, exc.message, time.monotonic() - started)
        return TestResult(True, message, time.monotonic() - started)


def property_problems(
    kind: ConnectorType, role: Role, properties: Mapping[str, str], services: Mapping[str, Any]
) -> list[str]:
    """What is wrong with a system's properties (credentials given as any non-empty value):
    the type's own checks, files outside the call's tenant's folders (``services``: what a
    connector is lent, with the call's ``context``), unusable URLs and URLs the outbound
    policy refuses. Saving a system and checking a configuration document both use it."""
    problems = kind.problems(role, properties, complete=False)
    roots = file_roots(services)
    policy = policy_of(services)
    for spec in kind.properties:
        value = properties.get(spec.key)
        if not value:
            continue
        if spec.kind is Kind.FILE:
            try:
                roots.locate(spec.key, value)
            except (ConfigError, InputError) as exc:
                problems.append(exc.message)
        elif spec.kind is Kind.URL and (problem := unusable_url(value)):
            problems.append(f"{spec.key}: {problem}")
        elif spec.kind is Kind.URL and (problem := policy.url_problem(value)):
            problems.append(f"{spec.key}: the outbound policy refuses it: {problem}")
    return problems


def _type(name: str) -> ConnectorType:
    """The type of a stored system."""
    try:
        return connector_type(name)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from exc


def _given_type(name: str) -> ConnectorType:
    """The type a caller names."""
    try:
        return connector_type(name)
    except KeyError as exc:
        raise InputError(str(exc.args[0])) from exc


def _public_properties(tx: Transaction, row: SystemRow) -> tuple[dict[str, str], set[str]]:
    """What transformations of a system see (``transformation_properties``), and the keys
    that are its credentials: stored as such, or always."""
    stored = store.properties_of(tx, [row.id])[row.id]
    secret = {p.key for p in stored if p.credential} | _always_secret(_type(row.type))
    public = {p.key: p.value for p in stored if not p.credential}
    values = _type(row.type).effective(public, Role(row.role))
    return {k: v for k, v in values.items() if k not in secret}, secret


def _always_secret(kind: ConnectorType) -> frozenset[str]:
    """The keys that are credentials on every system of a type, whatever credentialKeys says."""
    return kind.credential_keys | ALWAYS_SECRET


ENTITY_TYPES = tuple(t.value for t in EntityType)


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


def _flat(linked: Mapping[str, Sequence[str]]) -> Iterator[str]:
    for ids in linked.values():
        yield from ids


def _links(ids: Sequence[str], names: Mapping[str, str]) -> tuple[Link, ...]:
    """Linked systems with their names, by name."""
    found = [Link(id=i, name=names[i]) for i in ids if i in names]
    return tuple(sorted(found, key=lambda link: link.name.casefold()))


def _missing(kind: ConnectorType, role: Role, plain: Mapping[str, str]) -> list[str]:
    return [
        f"{p.key} is required"
        for p in kind.properties
        if role in p.required and not plain.get(p.key)
    ]


def _value(row: PropertyRow | None) -> str | None:
    return None if row is None else row.value


def _property_changes(
    stored: Mapping[str, PropertyRow],
    merged: Mapping[str, PropertyRow],
    given: Mapping[str, str | None],
) -> dict[str, Any]:
    """What an audit entry says of a change of properties: the keys set or removed, and of
    those the credentials (keys only, never a value: a key that is or was a credential);
    the other properties' values before and after (absent: null)."""
    changed = sorted(
        k
        for k in set(stored) | set(merged)
        if (k in given and given[k] != MASK) or stored.get(k) != merged.get(k)
    )
    secret = {
        k for k in changed if any(row.credential for row in (stored.get(k), merged.get(k)) if row)
    }
    plain = [k for k in changed if k not in secret]

    def value(rows: Mapping[str, PropertyRow], key: str) -> str | None:
        row = rows.get(key)
        return None if row is None else row.value[:500]

    return {
        "properties": plain,
        "credentials": [k for k in changed if k in secret],
        "before": {k: value(stored, k) for k in plain},
        "after": {k: value(merged, k) for k in plain},
    }


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
