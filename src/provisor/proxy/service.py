"""The proxy: SCIM requests on a proxy system carried out on its back-end (spec §5).

Reads run the back-end read, then the proxy read transformation; writes run the proxy write
transformation, then the back-end write, and answer what the back-end holds afterwards,
through the proxy read transformation again (spec §5.1).

Every operation needs the permission ``proxy_api`` (``@requires``), and a caller confined to
one system (a client certificate attached to a system) may call only that system's proxy.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
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
from provisor.context import Context, Permission, PerTenant, requires
from provisor.errors import NotFoundError, PreconditionFailedError
from provisor.proxy import discovery, filters, ids
from provisor.proxy.backends import Backends
from provisor.proxy.errors import DisabledError, TransformationFailedError, connector_errors
from provisor.proxy.model import (
    CORE_SCHEMAS,
    DEFAULT_COUNT,
    ENDPOINTS,
    MAX_COUNT,
    Compiled,
    Listing,
    Resource,
)
from provisor.proxy.present import project
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
    Skipped,
    Transformation,
    Transformed,
)
from provisor.types import EntityType, Operation

log = structlog.get_logger("provisor.proxy")

MAX_SORTED = 10_000  # entities a sorted listing may read from the back-end
STRATEGY = "ips.proxy.scim.total.results.strategy"
CACHED_SYSTEMS = 64  # compiled system versions kept, per tenant


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


@dataclass(frozen=True, slots=True)
class _Call:
    """A request on one resource: the system, the entity type, the back-end key and how
    error messages name the request (``PUT Users/abc``)."""

    compiled: Compiled
    entity_type: EntityType
    key: str
    what: str


class ProxyService:
    """Proxy requests on the systems of the tenants. Thread-safe for one event loop.

    ``registry`` gives the tenant's SCIM schemas (PATCH, sorting and ``attributes`` resolve
    attributes in them); ``limits`` bound the work of one request. ``base`` (every
    operation's) is the proxy system's URL as the caller reached it."""

    def __init__(
        self, systems: SystemService, registry: Callable[[Context], Registry], limits: Limits
    ) -> None:
        self.systems = systems
        self.registry = registry
        self.limits = limits
        self._compiled: PerTenant[OrderedDict[tuple[str, int], Compiled]] = PerTenant(
            lambda _tenant: OrderedDict()
        )
        self.backends = Backends(self._build, self._active_certificate)

    # -- the system (internal) ----------------------------------------------------------------

    async def compiled(self, ctx: Context, system_id: str) -> Compiled:
        """The proxy system and its transformations (compiled once per system version).
        Internal: the operations below call it; the caller must be allowed the system."""
        system = await asyncio.to_thread(self._proxy_system, ctx, system_id)
        key = (system.id, system.version)
        cache = self._compiled.get(ctx)
        found = cache.get(key)
        if found is None:
            found = await asyncio.to_thread(self._compile, ctx, system)
            cache[key] = found
            while len(cache) > CACHED_SYSTEMS:
                cache.popitem(last=False)
        return found

    def _proxy_system(self, ctx: Context, system_id: str) -> System:
        try:
            system = self.systems.get(ctx, system_id)
        except NotFoundError as exc:
            ctx.require_system(system_id)  # a confined caller learns nothing of others
            raise ResourceNotFoundError(f"No proxy system {system_id!r}.") from exc
        ctx.require_system(system.id)
        if system.role is not Role.PROXY:
            raise ResourceNotFoundError(f"System {system.name!r} is not a proxy system.")
        if not system.enabled:
            raise DisabledError(f"The proxy system {system.name!r} is disabled.")
        return system

    def _compile(self, ctx: Context, system: System) -> Compiled:
        properties = self.systems.effective_properties(ctx, system.id)
        public = self.systems.transformation_properties(ctx, system.id)
        read = self.systems.transformation(ctx, system.id, "read").text
        write = self.systems.transformation(ctx, system.id, "write").text
        return Compiled(
            system,
            properties,
            Transformation(read, public),
            Transformation(write, public),
            ctx.tenant,
        )

    def _build(self, ctx: Context, compiled: Compiled) -> Connector:
        """A connector of the proxy system's back-end (the call's context in ``services``)."""
        config = ConnectorConfig(
            system_id=compiled.system.id,
            system_name=compiled.system.name,
            role=Role.PROXY,
            properties=compiled.properties,
            services=self.systems.connector_services(ctx),
        )
        return compiled.system.type.build(config)

    def _active_certificate(self, ctx: Context, system_id: str) -> str | None:
        certificates = self.systems.connector_services(ctx).get("certificates")
        pair = certificates.active_pair(system_id) if certificates is not None else None
        return None if pair is None else pair[0]

    @asynccontextmanager
    async def connector(self, ctx: Context, compiled: Compiled) -> AsyncIterator[Connector]:
        """The proxy system's back-end for one request: the connector kept for the system's
        version (``backends``), or one built for the request."""
        if Backends.needs_certificate(compiled):
            key = await asyncio.to_thread(self.backends.key, ctx, compiled)
        else:
            key = self.backends.key(ctx, compiled)
        async with self.backends.lend(ctx, compiled, key) as connector:
            yield connector

    async def aclose(self) -> None:
        await self.backends.aclose()

    async def _call(
        self, ctx: Context, system_id: str, endpoint: str, resource_id: str, verb: str
    ) -> _Call:
        """What every request on one resource starts with: the system, the entity type the
        endpoint serves, the resource's back-end key."""
        compiled = await self.compiled(ctx, system_id)
        entity_type = served(compiled, endpoint)
        key = self._key(compiled, entity_type, resource_id)
        return _Call(compiled, entity_type, key, f"{verb} {endpoint}/{resource_id}")

    # -- discovery ------------------------------------------------------------------------------

    @requires(Permission.PROXY_API)
    async def service_provider_config(
        self, ctx: Context, system_id: str, base: str
    ) -> dict[str, Any]:
        """What the proxy supports (RFC 7644 §5)."""
        await self.compiled(ctx, system_id)  # 404/503 as for the others
        return discovery.service_provider_config(base)

    @requires(Permission.PROXY_API)
    async def resource_types(self, ctx: Context, system_id: str, base: str) -> list[dict[str, Any]]:
        """The resource types the proxy serves."""
        compiled = await self.compiled(ctx, system_id)
        return discovery.resource_types(compiled, self.registry(ctx), base)

    @requires(Permission.PROXY_API)
    async def schemas(self, ctx: Context, system_id: str, base: str) -> list[dict[str, Any]]:
        """The schemas of the proxy's resources."""
        compiled = await self.compiled(ctx, system_id)
        return discovery.schemas(compiled, self.registry(ctx), base)

    # -- reading -----------------------------------------------------------------------------

    @requires(Permission.PROXY_API)
    async def search(
        self,
        ctx: Context,
        system_id: str,
        endpoint: str,
        base: str,
        *,
        filter: str | None = None,
        start_index: int | None = None,
        start_id: str | None = None,
        count: int | None = None,
        sort_by: str | None = None,
        descending: bool = False,
        attributes: str | None = None,
        excluded: str | None = None,
    ) -> Listing:
        """A page of users or groups (spec §5.4, §5.5), with the attributes chosen."""
        if start_id is not None:
            raise InvalidValueError("The proxy pages by startIndex and count: no startId.")
        compiled = await self.compiled(ctx, system_id)
        entity_type = served(compiled, endpoint)
        listing = await self._search(
            ctx,
            compiled,
            entity_type,
            base,
            filter=filter,
            start_index=start_index,
            count=count,
            sort_by=sort_by,
            descending=descending,
        )
        if attributes is None and excluded is None:
            return listing
        rt = self._resource_type(ctx, entity_type)
        shown = [project(rt, doc, attributes, excluded) for doc in listing.resources]
        return replace(listing, resources=shown)

    async def _search(
        self,
        ctx: Context,
        compiled: Compiled,
        entity_type: EntityType,
        base: str,
        *,
        filter: str | None,
        start_index: int | None,
        count: int | None,
        sort_by: str | None,
        descending: bool,
    ) -> Listing:
        start = max(1, start_index or 1)
        size = DEFAULT_COUNT if count is None else count
        if size < 1:
            raise InvalidValueError(f"count is 1 to {MAX_COUNT}, not {size}.")
        size = min(size, MAX_COUNT)
        wanted = filters.parse(filter) if filter and filter.strip() else None
        sort_by = sort_by.strip() if sort_by and sort_by.strip() else None
        if sort_by is not None:
            resolve_sort(self._resource_type(ctx, entity_type), sort_by)  # 400 before any reading
        async with self.connector(ctx, compiled) as connector:
            if isinstance(wanted, filters.Equals):
                return await self._one(compiled, connector, entity_type, wanted, base)
            if sort_by is not None:
                resources = await self._everything(compiled, connector, entity_type, wanted, base)
                ordered = sort_resources(
                    self._resource_type(ctx, entity_type),
                    resources,
                    sort_by,
                    descending=descending,
                )
                chosen = ordered[start - 1 : start - 1 + size]
                return Listing(chosen, len(ordered), start, len(chosen))
            with connector_errors(f"GET {entity_type.endpoint}"):
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
        entity_type: EntityType,
        wanted: filters.ModifiedAfter | None,
        base: str,
    ) -> list[dict[str, Any]]:
        """Every resource of a listing, for sorting: one read of the back-end, at most
        ``MAX_SORTED`` entities (more is ``tooMany``)."""
        resources: list[dict[str, Any]] = []
        read = 0
        with connector_errors(f"GET {entity_type.endpoint}"):
            delta = connector.delta_token_after(wanted.timestamp) if wanted else None
            pages = connector.read(entity_type, delta=delta)
            try:
                async for page in pages:
                    read += len(page.entities)
                    if read > MAX_SORTED:
                        raise TooManyError(
                            f"Sorting reads at most {MAX_SORTED} {entity_type.endpoint} "
                            "of the back-end; this listing holds more: narrow it with a "
                            "filter, or page without sortBy."
                        )
                    resources += self._present_all(
                        compiled, connector, entity_type, page.entities, base
                    )
            finally:
                await pages.aclose()  # type: ignore[attr-defined]
        return resources

    def _resource_type(self, ctx: Context, entity_type: EntityType) -> ResourceType:
        rt = self.registry(ctx).resource_type(entity_type.resource_type)
        assert rt is not None
        return rt

    def _total(
        self, compiled: Compiled, entity_type: EntityType, page: Slice, start: int, count: int
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
        entity_type: EntityType,
        wanted: filters.Equals,
        base: str,
    ) -> Listing:
        """An ``eq`` filter: a back-end search; 0 or 1 result, more is ``tooMany``."""
        if wanted.attribute.lower() == "id":
            key = self._key(compiled, entity_type, wanted.value)
            with connector_errors(f"GET {entity_type.endpoint}"):
                entity = await connector.get(entity_type, key)
            found = [] if entity is None else [entity]
        else:
            section = compiled.read.entity(entity_type)
            assert section is not None
            attribute = filters.backend_attribute(section, wanted.attribute)
            with connector_errors(f"GET {entity_type.endpoint}"):
                found = await connector.find(entity_type, attribute, wanted.value)
        resources = self._present_all(compiled, connector, entity_type, found, base)
        if len(resources) > 1:
            raise TooManyError(
                f"{len(resources)} {entity_type.endpoint} match {wanted.attribute} eq "
                f"{wanted.value!r}; the filter must find one."
            )
        return Listing(resources, len(resources), 1, len(found))

    @requires(Permission.PROXY_API)
    async def get(
        self,
        ctx: Context,
        system_id: str,
        endpoint: str,
        resource_id: str,
        base: str,
        *,
        attributes: str | None = None,
        excluded: str | None = None,
        if_none_match: str | None = None,
    ) -> Resource:
        """One user or group, with the attributes chosen; ``not_modified`` when it is at a
        version ``if_none_match`` names (RFC 7644 §3.14)."""
        call = await self._call(ctx, system_id, endpoint, resource_id, "GET")
        entity_type = call.entity_type
        async with self.connector(ctx, call.compiled) as connector:
            with connector_errors(call.what):
                entity = await connector.get(entity_type, call.key)
        if entity is None:
            raise ResourceNotFoundError(f"{entity_type.resource_type} {resource_id} not found.")
        resource = self._present(call.compiled, connector, entity_type, entity, base)
        if resource is None:
            raise ResourceNotFoundError(
                f"{entity_type.resource_type} {resource_id} is not served by this proxy "
                "(the proxy read transformation skips it)."
            )
        if if_none_match is not None and etag_matches(if_none_match, resource["meta"]["version"]):
            return Resource(resource, resource, not_modified=True)
        if attributes is None and excluded is None:
            return Resource.whole(resource)
        shown = project(self._resource_type(ctx, entity_type), resource, attributes, excluded)
        return Resource(resource, shown)

    # -- writing -------------------------------------------------------------------------------

    @requires(Permission.PROXY_API)
    async def create(
        self, ctx: Context, system_id: str, endpoint: str, body: Any, base: str
    ) -> Resource:
        """Create a user or group; the created resource as the proxy reads it back."""
        compiled = await self.compiled(ctx, system_id)
        entity_type = served(compiled, endpoint)
        document, variables = self._write(
            compiled, entity_type, _object(body), Operation.CREATE, {}
        )
        chosen = variables.get("entityIdTargetSystem")
        async with self.connector(ctx, compiled) as connector:
            with connector_errors(f"POST {endpoint}"):
                written = await connector.create(
                    entity_type, document, entity_id=chosen if isinstance(chosen, str) else None
                )
                entity = written.entity or await connector.get(entity_type, written.id)
        return self._answer(compiled, connector, entity_type, entity, base, written.id)

    @requires(Permission.PROXY_API)
    async def replace(
        self,
        ctx: Context,
        system_id: str,
        endpoint: str,
        resource_id: str,
        body: Any,
        base: str,
        *,
        if_match: str | None = None,
    ) -> Resource:
        """PUT: the write transformation (create-only mappings left out), then a full
        update of the back-end entity (412 when ``if_match`` names another version)."""
        call = await self._call(ctx, system_id, endpoint, resource_id, "PUT")
        compiled, entity_type, key = call.compiled, call.entity_type, call.key
        document, variables = self._write(
            compiled, entity_type, _object(body), Operation.UPDATE, {"entityIdTargetSystem": key}
        )
        target = _text(variables.get("entityIdTargetSystem")) or key
        async with self.connector(ctx, compiled) as connector:
            with connector_errors(call.what):
                current = await self._current(call, connector, target, base, if_match)
                entity, written = await self._update(call, connector, target, document, current)
        return self._answer(compiled, connector, entity_type, entity, base, written)

    @requires(Permission.PROXY_API)
    async def patch(
        self,
        ctx: Context,
        system_id: str,
        endpoint: str,
        resource_id: str,
        body: Any,
        base: str,
        *,
        if_match: str | None = None,
    ) -> Resource:
        """PATCH (RFC 7644 §3.5.2). A back-end that takes a PatchOp gets what the
        ``patchEntity`` mappings make of it (spec §5.6), member ids decoded; any other
        back-end, or a write transformation without such mappings, gets the patch applied to
        the resource as the proxy reads it, written back as PUT writes."""
        compiled = await self.compiled(ctx, system_id)
        entity_type = served(compiled, endpoint)
        operations = parse_patch_request(_object(body), self.limits)
        key = self._key(compiled, entity_type, resource_id)
        call = _Call(compiled, entity_type, key, f"PATCH {endpoint}/{resource_id}")
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
        async with self.connector(ctx, compiled) as connector:
            with connector_errors(call.what):
                if direct is None or not connector.capabilities.scim_patch:
                    current = await self._current(call, connector, key, base, if_match, strict=True)
                    assert current is not None
                    patched = self._apply_patch(ctx, entity_type, current, operations)
                    document, variables = self._write(
                        compiled,
                        entity_type,
                        patched,
                        Operation.UPDATE,
                        {"entityIdTargetSystem": key},
                    )
                    target = _text(variables.get("entityIdTargetSystem")) or key
                    entity, target = await self._update(call, connector, target, document, current)
                else:
                    if if_match is not None:
                        await self._current(call, connector, target, base, if_match)
                    written = await connector.update(entity_type, target, direct)
                    entity = written.entity or await connector.get(entity_type, target)
        return self._answer(compiled, connector, entity_type, entity, base, target)

    @requires(Permission.PROXY_API)
    async def delete(
        self,
        ctx: Context,
        system_id: str,
        endpoint: str,
        resource_id: str,
        base: str,
        *,
        if_match: str | None = None,
    ) -> None:
        call = await self._call(ctx, system_id, endpoint, resource_id, "DELETE")
        async with self.connector(ctx, call.compiled) as connector:
            with connector_errors(call.what):
                if if_match is not None:
                    await self._current(call, connector, call.key, base, if_match)
                await connector.delete(call.entity_type, call.key)

    async def _current(
        self,
        call: _Call,
        connector: Connector,
        key: str,
        base: str,
        if_match: str | None,
        *,
        strict: bool = False,
    ) -> dict[str, Any] | None:
        """The resource at ``key`` as the proxy serves it (None: the read transformation
        skips it; ``strict``: that fails), 404 when the back-end has none, 412 unless it is
        at a version ``if_match`` names (RFC 7644 §3.14)."""
        entity = await connector.get(call.entity_type, key)
        if entity is None:
            raise ResourceNotFoundError(f"{call.what}: not found.")
        current = self._present(
            call.compiled, connector, call.entity_type, entity, base, strict=strict
        )
        if if_match is not None:
            _check_version(if_match, current, call.what)
        return current

    async def _update(
        self,
        call: _Call,
        connector: Connector,
        target: str,
        document: Entity,
        current: dict[str, Any] | None,
    ) -> tuple[Entity | None, str]:
        """Write ``document`` over the entity at ``target``, the client having seen it as
        ``current``; what the back-end holds afterwards, and its key."""
        before = self._as_written(call.compiled, call.entity_type, current, call.key)
        written = await connector.update(call.entity_type, target, document, previous=before)
        return written.entity or await connector.get(call.entity_type, written.id), written.id

    def _as_written(
        self,
        compiled: Compiled,
        entity_type: EntityType,
        shown: dict[str, Any] | None,
        key: str,
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
        self,
        ctx: Context,
        entity_type: EntityType,
        resource: dict[str, Any],
        operations: list[PatchOperation],
    ) -> dict[str, Any]:
        """The operations applied to a resource document (members in memory)."""
        rt = self._resource_type(ctx, entity_type)
        grouped = entity_type is EntityType.GROUP
        doc_ops, changes = split_members(operations) if grouped else (operations, [])
        patched = Patcher(rt, self.limits).apply(resource, doc_ops) if doc_ops else dict(resource)
        if changes:
            patched["members"] = apply_member_changes(resource.get("members"), changes, self.limits)
        return patched

    # -- transformations -----------------------------------------------------------------------

    def _key(self, compiled: Compiled, entity_type: EntityType, resource_id: str) -> str:
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
        entity_type: EntityType,
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
        entity_type: EntityType,
        entity: Entity | None,
        base: str,
        key: str,
    ) -> Resource:
        if entity is None:
            raise ResourceNotFoundError(
                f"The back-end does not return {entity_type.resource_type} {key} after writing it."
            )
        resource = self._present(compiled, connector, entity_type, entity, base, strict=True)
        assert resource is not None
        return Resource.whole(resource)

    def _present_all(
        self,
        compiled: Compiled,
        connector: Connector,
        entity_type: EntityType,
        entities: Sequence[Entity],
        base: str,
    ) -> list[dict[str, Any]]:
        out = []
        registry = self._registry_of(compiled)  # once for the page, not once per resource
        for entity in entities:
            resource = self._present(
                compiled, connector, entity_type, entity, base, registry=registry
            )
            if resource is not None:
                out.append(resource)
        return out

    def _registry_of(self, compiled: Compiled) -> Registry:
        return self.registry(Context.system("proxy", tenant=compiled.tenant))

    def _without_unset_vendor_extensions(
        self, compiled: Compiled, document: dict[str, Any], registry: Registry
    ) -> dict[str, Any]:
        """The document without those of SAP's vendor extensions that hold no value a client
        set: only the proxy write's own stamps (``sourceSystem`` 39, spec §1.11) and values
        the back-end generates (read-only: ``userUuid``). As on /scim (decision 0004), a
        resource shows SAP's extensions only when they carry SAP data."""
        stamps = _vendor_stamps(compiled.write)
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
        entity_type: EntityType,
        entity: Entity,
        base: str,
        *,
        strict: bool = False,
        registry: Registry | None = None,
    ) -> dict[str, Any] | None:
        """A back-end entity as a SCIM resource (the proxy read transformation), or None
        when the transformation skips it. The id is made URL-safe and ``meta`` names the
        proxy; a resource without ``schemas`` gets the core one."""
        name = entity_type.resource_type
        location = f"{base}/{entity_type.endpoint}/"
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
        resource = self._without_unset_vendor_extensions(
            compiled, outcome.document, registry or self._registry_of(compiled)
        )
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


def served(compiled: Compiled, endpoint: str) -> EntityType:
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
        group = groups or kind == EntityType.GROUP or (not kind and "/Groups/" in item["$ref"])
        item["$ref"] = f"{base}/{'Groups' if group else 'Users'}/{value}"


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
