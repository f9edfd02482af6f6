"""The proxy: SCIM requests on a proxy system carried out on its back-end (spec §5).

Reads run the back-end read, then the proxy read transformation; writes run the proxy write
transformation, then the back-end write, and answer what the back-end holds afterwards,
through the proxy read transformation again (spec §5.1).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
import structlog
from scim2_models import Path
from scim2_models.exceptions import SCIMException
from scim2_models.path import AttrPath, Comparison, FilterNode, LogicalExpr, Not, ValuePath

from provisor.connectors.base import (
    Connector,
    ConnectorConfig,
    Entity,
    InvalidId,
    Role,
    Slice,
    has_control,
    patch_operations_of,
    path_segment,
)
from provisor.context import Context as _Context
from provisor.errors import NotFoundError, PreconditionFailedError
from provisor.proxy import filters, ids
from provisor.proxy.errors import DisabledError, TransformationFailedError, connector_errors
from provisor.scim import schemas as s
from provisor.scim.attributes import Mutability, Schema
from provisor.scim.errors import (
    InvalidPathError,
    InvalidSyntaxError,
    InvalidValueError,
    NotImplementedSCIMError,
    ResourceNotFoundError,
    TooManyError,
)
from provisor.scim.limits import Limits
from provisor.scim.members import apply_member_changes, split_members
from provisor.scim.patch import Operation as PatchOperation
from provisor.scim.patch import Patcher, parse_patch_request
from provisor.scim.registry import Registry, ResourceType
from provisor.scim.sorting import resolve_sort, sort_resources
from provisor.systems.model import System
from provisor.systems.service import SystemService
from provisor.transform.engine import (
    Failed,
    Ignored,
    Operation,
    Skipped,
    Transformation,
    Transformed,
)

_SYSTEMS_CTX = _Context.system("proxy")  # until this module takes a ctx (issue 15)

log = structlog.get_logger("provisor.proxy")

ENDPOINTS = {"Users": "user", "Groups": "group"}
RESOURCE_TYPES = {"user": "User", "group": "Group"}
CORE_SCHEMAS = {"user": s.USER, "group": s.GROUP}
DEFAULT_COUNT = 25
MAX_COUNT = 100
MAX_SORTED = 10_000  # entities a sorted listing may read from the back-end
STRATEGY = "ips.proxy.scim.total.results.strategy"
CACHED_SYSTEMS = 64


@dataclass(frozen=True, slots=True)
class Compiled:
    """What a proxy request needs of its system, for one version of it."""

    system: System
    properties: dict[str, str]
    read: Transformation
    write: Transformation


@dataclass(frozen=True, slots=True)
class Listing:
    """A page of a list request, ready to become a SCIM ListResponse."""

    resources: list[dict[str, Any]]
    total: int
    start_index: int
    items_per_page: int  # entities read from the back-end (before the read condition)


class IdDecoder:
    """``resolveEntityIds`` of a proxy write transformation: resource ids of this proxy
    (members, managers) back to back-end keys."""

    def resolve(
        self,
        ids_: Sequence[str],
        *,
        entity_type: str,
        source_system: str | None,
        target_system: str | None,
    ) -> dict[str, str]:
        return {i: ids.decode(i) for i in ids_}


class ProxyService:
    """Proxy requests on the systems of one tenant. Thread-safe for one event loop.

    ``registry`` gives the tenant's SCIM schemas (PATCH and sorting resolve attributes in
    them); ``limits`` bound the work of one request."""

    def __init__(
        self, systems: SystemService, registry: Callable[[], Registry], limits: Limits
    ) -> None:
        self.systems = systems
        self.registry = registry
        self.limits = limits
        self._compiled: OrderedDict[tuple[str, int], Compiled] = OrderedDict()

    # -- the system ---------------------------------------------------------------------------

    async def compiled(self, system_id: str) -> Compiled:
        """The proxy system and its transformations (compiled once per system version)."""
        system = await asyncio.to_thread(self._proxy_system, system_id)
        key = (system.id, system.version)
        found = self._compiled.get(key)
        if found is None:
            found = await asyncio.to_thread(self._compile, system)
            self._compiled[key] = found
            while len(self._compiled) > CACHED_SYSTEMS:
                self._compiled.popitem(last=False)
        return found

    def _proxy_system(self, system_id: str) -> System:
        try:
            system = self.systems.get(_SYSTEMS_CTX, system_id)
        except NotFoundError as exc:
            raise ResourceNotFoundError(f"No proxy system {system_id!r}.") from exc
        if system.role is not Role.PROXY:
            raise ResourceNotFoundError(f"System {system.name!r} is not a proxy system.")
        if not system.enabled:
            raise DisabledError(f"The proxy system {system.name!r} is disabled.")
        return system

    def _compile(self, system: System) -> Compiled:
        properties = self.systems.effective_properties(_SYSTEMS_CTX, system.id)
        public = self.systems.transformation_properties(_SYSTEMS_CTX, system.id)
        read = self.systems.transformation(_SYSTEMS_CTX, system.id, "read").text
        write = self.systems.transformation(_SYSTEMS_CTX, system.id, "write").text
        return Compiled(
            system, properties, Transformation(read, public), Transformation(write, public)
        )

    def connector(self, compiled: Compiled) -> Connector:
        config = ConnectorConfig(
            system_id=compiled.system.id,
            system_name=compiled.system.name,
            role=Role.PROXY,
            properties=compiled.properties,
            services=self.systems.connector_services(_SYSTEMS_CTX),
        )
        return compiled.system.type.build(config)

    # -- reading -----------------------------------------------------------------------------

    async def search(
        self,
        system_id: str,
        endpoint: str,
        base: str,
        *,
        filter: str | None = None,
        start_index: int | None = None,
        count: int | None = None,
        sort_by: str | None = None,
        descending: bool = False,
    ) -> Listing:
        """A page of users or groups (spec §5.4, §5.5). ``base`` is the proxy's URL."""
        compiled = await self.compiled(system_id)
        entity_type = served(compiled, endpoint)
        start = max(1, start_index or 1)
        size = DEFAULT_COUNT if count is None else count
        if size < 1:
            raise InvalidValueError(f"count is 1 to {MAX_COUNT}, not {size}.")
        size = min(size, MAX_COUNT)
        wanted = filters.parse(filter) if filter and filter.strip() else None
        sort_by = sort_by.strip() if sort_by and sort_by.strip() else None
        if sort_by is not None:
            resolve_sort(self._resource_type(entity_type), sort_by)  # 400 before any reading
        async with self.connector(compiled) as connector:
            if isinstance(wanted, filters.Equals):
                return await self._one(compiled, connector, entity_type, wanted, base)
            if sort_by is not None:
                resources = await self._everything(compiled, connector, entity_type, wanted, base)
                ordered = sort_resources(
                    self._resource_type(entity_type), resources, sort_by, descending=descending
                )
                chosen = ordered[start - 1 : start - 1 + size]
                return Listing(chosen, len(ordered), start, len(chosen))
            with connector_errors(f"GET {endpoint}"):
                page = await connector.slice(
                    entity_type,
                    start_index=start,
                    count=size,
                    modified_after=wanted.timestamp if wanted else None,
                )
        resources = self._present_all(compiled, connector, entity_type, page.entities, base)
        return Listing(
            resources,
            self._total(compiled, entity_type, page, start, size),
            start,
            len(page.entities),
        )

    async def _everything(
        self,
        compiled: Compiled,
        connector: Connector,
        entity_type: str,
        wanted: filters.ModifiedAfter | None,
        base: str,
    ) -> list[dict[str, Any]]:
        """Every resource of a listing, for sorting: one read of the back-end, at most
        ``MAX_SORTED`` entities (more is ``tooMany``)."""
        resources: list[dict[str, Any]] = []
        read = 0
        with connector_errors(f"GET {endpoint_of(entity_type)}"):
            delta = connector.delta_token_after(wanted.timestamp) if wanted else None
            pages = connector.read(entity_type, delta=delta)
            try:
                async for page in pages:
                    read += len(page.entities)
                    if read > MAX_SORTED:
                        raise TooManyError(
                            f"Sorting reads at most {MAX_SORTED} {endpoint_of(entity_type)} "
                            "of the back-end; this listing holds more: narrow it with a "
                            "filter, or page without sortBy."
                        )
                    resources += self._present_all(
                        compiled, connector, entity_type, page.entities, base
                    )
            finally:
                await pages.aclose()  # type: ignore[attr-defined]
        return resources

    def _resource_type(self, entity_type: str) -> ResourceType:
        rt = self.registry().resource_type(RESOURCE_TYPES[entity_type])
        assert rt is not None
        return rt

    def _total(
        self, compiled: Compiled, entity_type: str, page: Slice, start: int, count: int
    ) -> int:
        """``totalResults`` by the rules of spec §5.5."""
        section = compiled.read.entity(entity_type)
        condition = section is not None and section.condition is not None
        provided = (compiled.properties.get(STRATEGY) or "").strip().lower() == "provided"
        if page.total is not None and (not condition or provided):
            return page.total
        if page.last:
            return start - 1 + len(page.entities)
        return start + count

    async def _one(
        self,
        compiled: Compiled,
        connector: Connector,
        entity_type: str,
        wanted: filters.Equals,
        base: str,
    ) -> Listing:
        """An ``eq`` filter: a back-end search; 0 or 1 result, more is ``tooMany``."""
        if wanted.attribute.lower() == "id":
            key = self._key(compiled, entity_type, wanted.value)
            with connector_errors(f"GET {endpoint_of(entity_type)}"):
                entity = await connector.get(entity_type, key)
            found = [] if entity is None else [entity]
        else:
            section = compiled.read.entity(entity_type)
            assert section is not None
            attribute = filters.backend_attribute(section, wanted.attribute)
            with connector_errors(f"GET {endpoint_of(entity_type)}"):
                found = await connector.find(entity_type, attribute, wanted.value)
        resources = self._present_all(compiled, connector, entity_type, found, base)
        if len(resources) > 1:
            raise TooManyError(
                f"{len(resources)} {endpoint_of(entity_type)} match {wanted.attribute} eq "
                f"{wanted.value!r}; the filter must find one."
            )
        return Listing(resources, len(resources), 1, len(found))

    async def get(
        self, system_id: str, endpoint: str, resource_id: str, base: str
    ) -> dict[str, Any]:
        compiled = await self.compiled(system_id)
        entity_type = served(compiled, endpoint)
        key = self._key(compiled, entity_type, resource_id)
        async with self.connector(compiled) as connector:
            with connector_errors(f"GET {endpoint}/{resource_id}"):
                entity = await connector.get(entity_type, key)
        if entity is None:
            raise ResourceNotFoundError(f"{RESOURCE_TYPES[entity_type]} {resource_id} not found.")
        resource = self._present(compiled, connector, entity_type, entity, base)
        if resource is None:
            raise ResourceNotFoundError(
                f"{RESOURCE_TYPES[entity_type]} {resource_id} is not served by this proxy "
                "(the proxy read transformation skips it)."
            )
        return resource

    # -- writing -------------------------------------------------------------------------------

    async def create(self, system_id: str, endpoint: str, body: Any, base: str) -> dict[str, Any]:
        """Create a user or group; the created resource as the proxy reads it back."""
        compiled = await self.compiled(system_id)
        entity_type = served(compiled, endpoint)
        document, variables = self._write(
            compiled, entity_type, _object(body), Operation.CREATE, {}
        )
        chosen = variables.get("entityIdTargetSystem")
        async with self.connector(compiled) as connector:
            with connector_errors(f"POST {endpoint}"):
                written = await connector.create(
                    entity_type, document, entity_id=chosen if isinstance(chosen, str) else None
                )
                entity = written.entity or await connector.get(entity_type, written.id)
        return self._answer(compiled, connector, entity_type, entity, base, written.id)

    async def replace(
        self,
        system_id: str,
        endpoint: str,
        resource_id: str,
        body: Any,
        base: str,
        *,
        if_match: str | None = None,
    ) -> dict[str, Any]:
        """PUT: the write transformation (create-only mappings left out), then a full
        update of the back-end entity (412 when ``if_match`` names another version)."""
        compiled = await self.compiled(system_id)
        entity_type = served(compiled, endpoint)
        key = self._key(compiled, entity_type, resource_id)
        what = f"PUT {endpoint}/{resource_id}"
        document, variables = self._write(
            compiled, entity_type, _object(body), Operation.UPDATE, {"entityIdTargetSystem": key}
        )
        target = _text(variables.get("entityIdTargetSystem")) or key
        async with self.connector(compiled) as connector:
            with connector_errors(what):
                previous = await connector.get(entity_type, target)
                if previous is None:
                    raise ResourceNotFoundError(f"{what}: not found.")
                current = self._present(compiled, connector, entity_type, previous, base)
                if if_match is not None:
                    _check_version(if_match, current, what)
                before = self._as_written(compiled, entity_type, current, key)
                written = await connector.update(entity_type, target, document, previous=before)
                entity = written.entity or await connector.get(entity_type, written.id)
        return self._answer(compiled, connector, entity_type, entity, base, written.id)

    async def patch(
        self,
        system_id: str,
        endpoint: str,
        resource_id: str,
        body: Any,
        base: str,
        *,
        if_match: str | None = None,
    ) -> dict[str, Any]:
        """PATCH (RFC 7644 §3.5.2). A back-end that takes a PatchOp gets what the
        ``patchEntity`` mappings make of it (spec §5.6), member ids decoded; any other
        back-end, or a write transformation without such mappings, gets the patch applied to
        the resource as the proxy reads it, written back as PUT writes."""
        compiled = await self.compiled(system_id)
        entity_type = served(compiled, endpoint)
        operations = parse_patch_request(_object(body), self.limits)
        key = self._key(compiled, entity_type, resource_id)
        what = f"PATCH {endpoint}/{resource_id}"
        direct: Entity | None = None
        target = key
        if has_patch_mappings(compiled.write.entity(entity_type)):
            document, variables = self._write(
                compiled,
                entity_type,
                _with_decoded_members(body, operations),
                Operation.PATCH,
                {"entityIdTargetSystem": key},
            )
            direct = document if patch_operations_of(document) is not None else None
            target = _text(variables.get("entityIdTargetSystem")) or key
        async with self.connector(compiled) as connector:
            with connector_errors(what):
                if direct is None or not connector.capabilities.scim_patch:
                    entity, target = await self._patch_read_write(
                        compiled, connector, entity_type, key, operations, base, if_match, what
                    )
                else:
                    if if_match is not None:
                        await self._check_if_match(
                            compiled, connector, entity_type, target, base, if_match, what
                        )
                    written = await connector.update(entity_type, target, direct)
                    entity = written.entity or await connector.get(entity_type, target)
        return self._answer(compiled, connector, entity_type, entity, base, target)

    async def _patch_read_write(
        self,
        compiled: Compiled,
        connector: Connector,
        entity_type: str,
        key: str,
        operations: list[PatchOperation],
        base: str,
        if_match: str | None,
        what: str,
    ) -> tuple[Entity | None, str]:
        """PATCH where the back-end takes no PatchOp: read the resource through the read
        transformation, apply the operations to it, write the result as PUT does."""
        previous = await connector.get(entity_type, key)
        if previous is None:
            raise ResourceNotFoundError(f"{what}: not found.")
        current = self._present(compiled, connector, entity_type, previous, base, strict=True)
        assert current is not None
        if if_match is not None:
            _check_version(if_match, current, what)
        patched = self._apply_patch(entity_type, current, operations)
        document, variables = self._write(
            compiled, entity_type, patched, Operation.UPDATE, {"entityIdTargetSystem": key}
        )
        target = _text(variables.get("entityIdTargetSystem")) or key
        before = self._as_written(compiled, entity_type, current, key)
        written = await connector.update(entity_type, target, document, previous=before)
        return written.entity or await connector.get(entity_type, written.id), written.id

    def _as_written(
        self, compiled: Compiled, entity_type: str, shown: dict[str, Any] | None, key: str
    ) -> Entity | None:
        """The ``previous`` of an update: what the write transformation makes of the resource
        as the client saw it, so that an update removes what the client removed and leaves
        alone what the transformations never show (an LDAP ``title``); None: replace only."""
        if shown is None:
            return None
        outcome = compiled.write.apply(
            entity_type,
            shown,
            operation=Operation.UPDATE,
            variables={"entityIdTargetSystem": key},
            resolver=IdDecoder(),
        )
        return outcome.document if isinstance(outcome, Transformed) else None

    def _apply_patch(
        self, entity_type: str, resource: dict[str, Any], operations: list[PatchOperation]
    ) -> dict[str, Any]:
        """The operations applied to a resource document (members in memory)."""
        rt = self._resource_type(entity_type)
        doc_ops, changes = split_members(operations) if entity_type == "group" else (operations, [])
        patched = Patcher(rt, self.limits).apply(resource, doc_ops) if doc_ops else dict(resource)
        if changes:
            patched["members"] = apply_member_changes(resource.get("members"), changes, self.limits)
        return patched

    async def delete(
        self,
        system_id: str,
        endpoint: str,
        resource_id: str,
        base: str,
        *,
        if_match: str | None = None,
    ) -> None:
        compiled = await self.compiled(system_id)
        entity_type = served(compiled, endpoint)
        key = self._key(compiled, entity_type, resource_id)
        what = f"DELETE {endpoint}/{resource_id}"
        async with self.connector(compiled) as connector:
            with connector_errors(what):
                if if_match is not None:
                    await self._check_if_match(
                        compiled, connector, entity_type, key, base, if_match, what
                    )
                await connector.delete(entity_type, key)

    async def _check_if_match(
        self,
        compiled: Compiled,
        connector: Connector,
        entity_type: str,
        key: str,
        base: str,
        if_match: str,
        what: str,
    ) -> None:
        """412 unless the resource is at a version ``if_match`` names (RFC 7644 §3.14)."""
        entity = await connector.get(entity_type, key)
        if entity is None:
            raise ResourceNotFoundError(f"{what}: not found.")
        current = self._present(compiled, connector, entity_type, entity, base)
        _check_version(if_match, current, what)

    # -- transformations -----------------------------------------------------------------------

    def _key(self, compiled: Compiled, entity_type: str, resource_id: str) -> str:
        """The back-end key of a resource id: decoded (see ``ids``), then through the
        write transformation's ``deleteEntity`` mappings of ``entityIdTargetSystem`` when it
        has any (spec §1.3: SAP-style ``decode`` functions). An id that is no path segment
        (``.``, ``..``, control characters) or decodes to control characters names nothing."""
        try:
            path_segment(resource_id)
        except InvalidId as exc:
            raise ResourceNotFoundError(f"{exc.message}.") from None
        key = ids.decode(resource_id)
        if has_control(key):
            raise ResourceNotFoundError(f"{resource_id} decodes to control characters: no id.")
        section = compiled.write.entity(entity_type)
        if section is None or not any(m.scope == "deleteEntity" for m in section.mappings):
            return key
        outcome = compiled.write.apply(
            entity_type,
            {"id": resource_id},
            operation=Operation.DELETE,
            variables={"entityIdTargetSystem": key},
            resolver=IdDecoder(),
        )
        if isinstance(outcome, Transformed):
            return _text(outcome.variables.get("entityIdTargetSystem")) or key
        return key

    def _write(
        self,
        compiled: Compiled,
        entity_type: str,
        body: dict[str, Any],
        operation: Operation,
        variables: dict[str, Any],
    ) -> tuple[Entity, dict[str, Any]]:
        outcome = compiled.write.apply(
            entity_type, body, operation=operation, variables=variables, resolver=IdDecoder()
        )
        if isinstance(outcome, Transformed):
            return outcome.document, outcome.variables
        if isinstance(outcome, Skipped):
            raise InvalidValueError(f"The proxy write transformation skips it: {outcome.reason}")
        if isinstance(outcome, Failed):
            raise InvalidValueError(f"The proxy write transformation failed: {outcome.reason}")
        if isinstance(outcome, Ignored):
            raise NotImplementedSCIMError(outcome.reason)
        raise InvalidValueError("The proxy write transformation gives nothing to write.")

    def _answer(
        self,
        compiled: Compiled,
        connector: Connector,
        entity_type: str,
        entity: Entity | None,
        base: str,
        key: str,
    ) -> dict[str, Any]:
        if entity is None:
            raise ResourceNotFoundError(
                f"The back-end does not return {RESOURCE_TYPES[entity_type]} {key} after "
                "writing it."
            )
        resource = self._present(compiled, connector, entity_type, entity, base, strict=True)
        assert resource is not None
        return resource

    def _present_all(
        self,
        compiled: Compiled,
        connector: Connector,
        entity_type: str,
        entities: Sequence[Entity],
        base: str,
    ) -> list[dict[str, Any]]:
        out = []
        for entity in entities:
            resource = self._present(compiled, connector, entity_type, entity, base)
            if resource is not None:
                out.append(resource)
        return out

    def _without_unset_vendor_extensions(
        self, compiled: Compiled, document: dict[str, Any]
    ) -> dict[str, Any]:
        """The document without those of SAP's vendor extensions that hold no value a client
        set: only the proxy write's own stamps (``sourceSystem`` 39, spec §1.11) and values
        the back-end generates (read-only: ``userUuid``). As on /scim (decision 0004), a
        resource shows SAP's extensions only when they carry SAP data."""
        stamps = _vendor_stamps(compiled.write)
        registry = self.registry()
        out = {}
        for key, value in document.items():
            if key in s.VENDOR_EXTENSIONS and not _client_set(
                value, stamps.get(key, {}), registry.schema(key)
            ):
                continue
            out[key] = value
        return out

    def _present(
        self,
        compiled: Compiled,
        connector: Connector,
        entity_type: str,
        entity: Entity,
        base: str,
        *,
        strict: bool = False,
    ) -> dict[str, Any] | None:
        """A back-end entity as a SCIM resource (the proxy read transformation), or None
        when the transformation skips it. The id is made URL-safe and ``meta`` names the
        proxy; a resource without ``schemas`` gets the core one."""
        name = RESOURCE_TYPES[entity_type]
        location = f"{base}/{endpoint_of(entity_type)}/"
        outcome = compiled.read.apply(
            entity_type,
            entity,
            operation=Operation.READ,
            variables={"entityBaseLocation": location},
        )
        if isinstance(outcome, Skipped | Ignored) and not strict:
            return None
        if not isinstance(outcome, Transformed):
            reason = getattr(outcome, "reason", "no result")
            if not strict:
                log.warning("proxy read failed", system=compiled.system.id, reason=reason)
                return None
            raise TransformationFailedError(f"The proxy read transformation failed: {reason}")
        resource = self._without_unset_vendor_extensions(compiled, outcome.document)
        raw = (
            _text(resource.get("id"))
            or _text(outcome.variables.get("entityIdSourceSystem"))
            or connector.entity_id(entity_type, entity)
        )
        if not raw:
            raise TransformationFailedError(
                f"The proxy read transformation gives the {name} no id."
            )
        resource_id = ids.encode(raw)
        resource["id"] = resource_id
        listed = resource.get("schemas")
        listed = (
            [u for u in listed if u not in s.VENDOR_EXTENSIONS or u in resource]
            if isinstance(listed, list)
            else []
        )
        resource["schemas"] = listed or [CORE_SCHEMAS[entity_type]]
        meta = resource.get("meta")
        meta = dict(meta) if isinstance(meta, Mapping) else {}
        meta.pop("version", None)  # the back-end's: the proxy's ETag is of what it serves
        meta["resourceType"] = name
        meta["location"] = location + resource_id
        resource["meta"] = meta
        meta["version"] = etag(resource)
        for attribute in ("members", "groups"):
            _point_refs_here(resource.get(attribute), base, groups=attribute == "groups")
        return resource


def has_patch_mappings(section: Any) -> bool:
    """Whether a write transformation's section has ``patchEntity`` mappings."""
    return section is not None and any(m.scope == "patchEntity" for m in section.mappings)


def etag(resource: Mapping[str, Any]) -> str:
    """The weak ETag of a resource as the proxy serves it: a digest of the document
    without ``meta`` (the same whichever path or host the proxy is called by)."""
    content = {k: v for k, v in resource.items() if k != "meta"}
    digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f'W/"{digest[:32]}"'


def etag_matches(header: str, tag: str) -> bool:
    """Weak comparison of an If-Match / If-None-Match header with an ETag."""
    opaque = tag.removeprefix("W/")
    for part in header.split(","):
        wanted = part.strip()
        if wanted == "*" or wanted.removeprefix("W/") == opaque:
            return True
    return False


def _check_version(if_match: str, resource: Mapping[str, Any] | None, what: str) -> None:
    if resource is None:
        raise ResourceNotFoundError(f"{what}: the proxy read transformation skips it.")
    tag = resource["meta"]["version"]
    if not etag_matches(if_match, tag):
        raise PreconditionFailedError(f"{what}: the resource is at version {tag}, not {if_match}.")


def _with_decoded_members(body: Any, operations: list[PatchOperation]) -> dict[str, Any]:
    """A PatchOp whose member ids (values and ``members[value eq ...]`` filters) are
    back-end keys, as in POST and PUT bodies (see ``ids``)."""
    decoded = [_decoded_operation(op) for op in operations]
    return {
        **_object(body),
        "Operations": [
            {"op": op.op, **({"path": op.path} if op.path else {}), "value": op.value}
            if op.op != "remove" or op.value is not None
            else {"op": op.op, **({"path": op.path} if op.path else {})}
            for op in decoded
        ],
    }


def _decoded_operation(op: PatchOperation) -> PatchOperation:
    if op.path is None:
        if isinstance(op.value, dict):
            value = {k: _decoded_members(v) if _is_members(k) else v for k, v in op.value.items()}
            return PatchOperation(op.op, None, value)
        return op
    try:
        node = Path(op.path).ast
    except SCIMException as exc:
        raise InvalidPathError(f"Invalid path {op.path!r}: {exc}") from exc
    if isinstance(node, AttrPath) and _is_members(node.attr) and node.sub_attr is None:
        return PatchOperation(op.op, op.path, _decoded_members(op.value))
    if isinstance(node, ValuePath) and _is_members(node.attr_path.attr):
        filtered = _decoded_filter(node.val_filter)
        sub = f".{node.sub_attr}" if node.sub_attr else ""
        return PatchOperation(op.op, f"{node.attr_path}[{filtered}]{sub}", op.value)
    return op


def _is_members(name: str) -> bool:
    return name.lower() in ("members", f"{s.GROUP}:members".lower())


def _decoded_members(value: Any) -> Any:
    items = value if isinstance(value, list) else [value]
    out = [
        {**item, "value": ids.decode(item["value"])}
        if isinstance(item, dict) and isinstance(item.get("value"), str)
        else item
        for item in items
    ]
    return out if isinstance(value, list) else out[0]


def _decoded_filter(node: FilterNode) -> FilterNode:
    if isinstance(node, Comparison):
        if node.attr_path.attr.lower() == "value" and isinstance(node.value, str):
            return replace(node, value=ids.decode(node.value))
        return node
    if isinstance(node, LogicalExpr):
        return replace(node, terms=tuple(_decoded_filter(t) for t in node.terms))
    if isinstance(node, Not):
        return replace(node, expr=_decoded_filter(node.expr))
    return node


def served(compiled: Compiled, endpoint: str) -> str:
    """The entity type of an endpoint the proxy serves; 404 for any other."""
    entity_type = ENDPOINTS.get(endpoint)
    section = compiled.read.entity(entity_type) if entity_type else None
    if entity_type is None or section is None or section.ignore:
        raise ResourceNotFoundError(f"This proxy system serves no {endpoint}.")
    return entity_type


def _point_refs_here(values: Any, base: str, *, groups: bool) -> None:
    """``$ref``s of members and groups as the proxy's locations (the back-end's own, such
    as the directory's ``/scim/Users/...``, mean nothing to a proxy client)."""
    if not isinstance(values, list):
        return
    for item in values:
        if not isinstance(item, dict) or not isinstance(item.get("$ref"), str):
            continue
        value = item.get("value")
        if not isinstance(value, str):
            continue
        kind = str(item.get("type") or "").lower()
        group = groups or kind == "group" or (not kind and "/Groups/" in item["$ref"])
        item["$ref"] = f"{base}/{'Groups' if group else 'Users'}/{value}"


def endpoint_of(entity_type: str) -> str:
    return "Users" if entity_type == "user" else "Groups"


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidSyntaxError("The request body is a JSON object.")
    return body


def _text(value: Any) -> str | None:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and value else None


_VENDOR_PATH = re.compile(r"^\$\['([^']+)'\]\['([^']+)'\]$")


def _vendor_stamps(write: Transformation) -> dict[str, dict[str, Any]]:
    """The constants the proxy write puts into vendor extensions, by extension and attribute."""
    stamps: dict[str, dict[str, Any]] = {}
    for section in write.entities.values():
        for mapping in section.mappings:
            match = _VENDOR_PATH.match((mapping.target_path or "").strip())
            if mapping.has_constant and match and match.group(1) in s.VENDOR_EXTENSIONS:
                stamps.setdefault(match.group(1), {})[match.group(2)] = mapping.constant
    return stamps


def _client_set(extension: Any, stamps: Mapping[str, Any], schema: Schema | None) -> bool:
    """Whether an extension holds a value other than a stamp or a read-only value."""
    if not isinstance(extension, Mapping):
        return True
    for name, value in extension.items():
        attribute = schema.attribute(name) if schema is not None else None
        if attribute is not None and attribute.mutability is Mutability.READ_ONLY:
            continue
        if name in stamps and stamps[name] == value:
            continue
        return True
    return False
