"""The SCIM 2.0 connectors: ``SCIMConnector`` (SCIM System) and ``IASConnector``
(Identity Authentication, the Identity Directory SCIM API).

Users live at ``<base>/Users`` and groups at ``<base>/Groups``, where the base is ``URL``
for a SCIM System, ``URL/scim`` for Identity Authentication (API version 2) and
``URL/service/scim`` for its legacy API (version 1, properties ``scim.*``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

import anyio
import httpx

from provisor.connectors.base import (
    BackendError,
    Capabilities,
    Connector,
    ConnectorConfig,
    ConnectorError,
    Discovery,
    Entity,
    EntityNotFound,
    Fitted,
    Page,
    Role,
    Slice,
    Written,
    patch_operations_of,
    path_segment,
)
from provisor.connectors.http import HTTPClient, status_error, where
from provisor.connectors.scim import filters, paging, schemas
from provisor.connectors.scim import patch as patching
from provisor.connectors.scim.options import MEMBER_BATCH, SCIMOptions
from provisor.errors import ConfigError
from provisor.types import EntityType

ENDPOINTS = {kind.value: kind.endpoint for kind in EntityType}  # user: Users...
MEMBERS = frozenset({"members"})
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SCIM_ACCEPT = "application/scim+json, application/json;q=0.9"
DETAIL_CONCURRENCY = 8  # parallel requests reading members / groups one resource at a time


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first error of a task group, out of its (possibly nested) group."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


class _Latest:
    """The highest ``meta.lastModified`` seen: where the next delta read starts."""

    def __init__(self, start: str | None) -> None:
        self.text = start
        self.moment = _timestamp(start)

    def see(self, resources: Sequence[Entity]) -> None:
        for resource in resources:
            meta = resource.get("meta")
            value = meta.get("lastModified") if isinstance(meta, dict) else None
            moment = _timestamp(value)
            if moment is not None and (self.moment is None or moment > self.moment):
                self.moment, self.text = moment, value


class SCIMConnector(Connector):
    """A SCIM 2.0 service provider (RFC 7644), with the SAP extensions it may offer.

    ``transport`` replaces the network (tests pass ``httpx.MockTransport`` or an ASGI
    transport); TLS settings then belong to it.
    """

    type_name: ClassVar[str] = "SCIM System"
    shared = True  # a pooled client; the target schema is read for targets only
    member_threshold_default: ClassVar[int | None] = None
    schema_discovery_default: ClassVar[bool] = True

    def __init__(
        self, config: ConnectorConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(config)
        self.options = SCIMOptions.from_config(
            config,
            self.prefixes(),
            threshold=self.member_threshold_default,
            group_unique=self.group_unique_default(),
            schema_discovery=self.schema_discovery_default,
        )
        self.base_url = self.resources_url()
        self.http = HTTPClient(
            config,
            base_url=self.base_url,
            prefixes=self.options.prefixes,
            content_type=self.options.content_type,
            accept=SCIM_ACCEPT,
            csrf_url=self.base_url.rstrip("/") + "/Users?count=1",
            transport=transport,
        )
        self.capabilities = Capabilities(
            delta_read=True,
            patch=self.options.patch,
            bulk=self.options.bulk,
            bulk_size=self.options.bulk_count,
            scim_patch=True,
        )
        self._schema: schemas.TargetSchema | None = None  # what the target declares, once read
        self._discovering = anyio.Lock()

    # -- what differs between SCIM System and Identity Authentication ---------------------

    def prefixes(self) -> tuple[str, ...]:
        return ("scim",)

    def group_unique_default(self) -> str:
        return "displayName"

    def resources_url(self) -> str:
        url = self.config.get("URL")
        if not url:
            raise ConfigError(f"System {self.config.system_name} has no URL.")
        return url.rstrip("/")

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def endpoint(entity_type: str) -> str:
        try:
            return ENDPOINTS[entity_type]
        except KeyError:
            raise ConnectorError(
                f"Entity type {entity_type!r} is not a SCIM resource: user or group."
            ) from None

    def location(self, entity_type: str, entity_id: str) -> str:
        return f"{self.endpoint(entity_type)}/{path_segment(entity_id)}"

    def _write_headers(self) -> dict[str, str]:
        return {"If-Match": "*"} if self.options.if_match else {}

    def unique_attributes(self, entity_type: str) -> tuple[str, ...]:
        """The attributes identifying an entity in the target (``<prefix>.user.unique.attribute``
        and ``<prefix>.group.unique.attribute``), each usable with :meth:`find`."""
        return (
            self.options.user_unique
            if entity_type == EntityType.USER
            else self.options.group_unique
        )

    # -- reading ----------------------------------------------------------------------------

    async def read(self, entity_type: str, *, delta: str | None = None) -> AsyncIterator[Page]:
        """Every user or group (``<prefix>.user.filter``/``group.filter`` applied); with
        ``delta``, only those modified after it (``meta.lastModified gt``). The last page
        carries the highest ``meta.lastModified`` seen: where the next delta read starts."""
        endpoint = self.endpoint(entity_type)
        opts = self.options
        query: dict[str, str | int] = {}
        condition = opts.user_filter if entity_type == EntityType.USER else opts.group_filter
        if delta:
            condition = filters.both(condition, filters.modified_after(delta))
        if condition:
            query["filter"] = condition
        detail = None
        if entity_type == EntityType.GROUP and opts.members_paging:
            query["excludedAttributes"] = detail = "members"
        elif entity_type == EntityType.USER and opts.user_groups_paging:
            query["excludedAttributes"] = detail = "groups"
        if entity_type == EntityType.GROUP and opts.members_additional_attributes:
            query["membersAdditionalAttributes"] = opts.members_additional_attributes
        latest = _Latest(delta)
        async for page in paging.pages(self.http, endpoint, query, count=opts.page_size):
            resources = page.resources
            if detail and resources:
                await self._complete(entity_type, resources, detail)
            latest.see(resources)
            yield Page(resources, latest.text if page.last else None)

    async def _complete(self, entity_type: str, resources: list[Entity], attribute: str) -> None:
        """Read ``attribute`` (members, groups) of each resource with its own request."""
        limiter = anyio.CapacityLimiter(DETAIL_CONCURRENCY)

        async def fill(resource: Entity) -> None:
            async with limiter:
                resource_id = resource.get("id")
                if not isinstance(resource_id, str):
                    return
                url = self.location(entity_type, resource_id)
                try:
                    body = await self.http.json("GET", url, params={"attributes": attribute})
                except EntityNotFound:
                    return  # deleted since the list was read
                if isinstance(body, dict) and body.get(attribute):
                    resource[attribute] = body[attribute]

        try:
            async with anyio.create_task_group() as group:
                for resource in resources:
                    group.start_soon(fill, resource)
        except BaseExceptionGroup as failed:
            raise _first(failed) from None

    async def get(self, entity_type: str, entity_id: str) -> Entity | None:
        try:
            body = await self.http.json("GET", self.location(entity_type, entity_id))
        except EntityNotFound:
            return None
        return self._resource(body, f"GET {self.endpoint(entity_type)}/{entity_id}")

    async def slice(
        self,
        entity_type: str,
        *,
        start_index: int = 1,
        count: int = 100,
        modified_after: str | None = None,
    ) -> Slice:
        """One page by ``startIndex``/``count`` with the server's ``totalResults`` (a
        proxy's page); the read filter applies."""
        endpoint = self.endpoint(entity_type)
        condition = self._configured_filter(entity_type)
        if modified_after:
            condition = filters.both(condition, filters.modified_after(modified_after))
        query: dict[str, str | int] = {"startIndex": max(1, start_index), "count": max(0, count)}
        if condition:
            query["filter"] = condition
        body = await self.http.json("GET", endpoint, params=query)
        resources, answer = paging.resources_of(body, f"GET {endpoint}")
        total = paging.integer(answer.get("totalResults"))
        if total is None:
            return Slice(resources, None, last=len(resources) < count)
        return Slice(resources, total, last=max(1, start_index) - 1 + len(resources) >= total)

    def _configured_filter(self, entity_type: str) -> str | None:
        opts = self.options
        return opts.user_filter if entity_type == EntityType.USER else opts.group_filter

    async def find(self, entity_type: str, attribute: str, value: str) -> list[Entity]:
        condition = filters.equals(attribute, value)
        configured = self._configured_filter(entity_type)
        if configured and self.config.role is Role.PROXY:  # a proxy serves what it reads
            condition = filters.both(configured, condition) or condition
        query: dict[str, str | int] = {"filter": condition, "startIndex": 1, "count": 100}
        body = await self.http.json("GET", self.endpoint(entity_type), params=query)
        if not isinstance(body, dict):
            raise BackendError(f"GET {self.endpoint(entity_type)}: not a SCIM ListResponse")
        resources = body.get("Resources") or []
        return [r for r in resources if isinstance(r, dict)]

    @staticmethod
    def _resource(body: Any, what: str) -> Entity:
        if not isinstance(body, dict):
            raise BackendError(f"{what}: the answer is not a SCIM resource")
        return body

    # -- what the target accepts -------------------------------------------------------------

    async def discover(self) -> Discovery:
        """A target's ``/Schemas`` and ``/ResourceTypes``, read once for this connector (a
        job, or a real-time route's few seconds), unless ``<prefix>.schema.discovery=false``."""
        if not self.options.schema_discovery or self.config.role is not Role.TARGET:
            return Discovery()
        async with self._discovering:
            if self._schema is None:
                self._schema = await schemas.discover(self.http)
        return Discovery(self._schema.fingerprint, self._schema.note)

    def fit(self, entity_type: str, entity: Entity) -> Fitted:
        return Fitted(entity) if self._schema is None else self._schema.fit(entity_type, entity)

    async def _accepted(self, entity_type: str, entity: Entity) -> Entity:
        """What is sent of an entity: without what the target does not declare."""
        await self.discover()
        return self.fit(entity_type, entity).entity

    # -- writing ----------------------------------------------------------------------------

    async def create(
        self, entity_type: str, entity: Entity, *, entity_id: str | None = None
    ) -> Written:
        endpoint = self.endpoint(entity_type)
        entity = await self._accepted(entity_type, entity)
        body = {k: v for k, v in entity.items() if k not in ("id", "meta")}
        members = patching.members_of(body) if entity_type == EntityType.GROUP else []
        threshold = self.options.member_threshold
        large = threshold is not None and len(members) > threshold
        if large:  # created without members, which follow in batches
            body = patching.without(body, "members")
        response = await self.http.request("POST", endpoint, body=body)
        created = self.http.decode(response)
        if isinstance(created, dict) and isinstance(created.get("id"), str):
            written = Written(id=created["id"], entity=created)
        else:
            location = response.headers.get("Location", "").rstrip("/")
            if not location:
                raise BackendError(f"POST {endpoint}: the answer names no id of what it created")
            written = Written(id=location.rsplit("/", 1)[-1])
        if large:
            await self._patch_group(written.id, [], members, [])
            written = Written(id=written.id)
        return written

    async def update(
        self, entity_type: str, entity_id: str, entity: Entity, *, previous: Entity | None = None
    ) -> Written:
        requested = patch_operations_of(entity)
        if requested is not None:
            return await self._patch(entity_type, entity_id, requested)
        entity = await self._accepted(entity_type, entity)
        opts = self.options
        members = patching.members_of(entity) if "members" in entity else None
        threshold = opts.member_threshold
        if (
            entity_type == EntityType.GROUP
            and members is not None
            and threshold is not None
            and len(members) > threshold
        ):
            return await self._update_large_group(entity_id, entity, members, previous)
        if opts.patch:
            keep = opts.keep_nested_groups
            if entity_type == EntityType.GROUP and members is not None and (previous or keep):
                # members as additions and removals, so nested groups can be kept
                if previous is not None:
                    current = patching.members_of(previous)
                    operations = patching.changes(previous, entity, skip=MEMBERS)
                else:
                    current = await self._current_members(entity_id)
                    operations = patching.replace_all(entity, skip=MEMBERS)
                add, remove = patching.member_diff(current, members, keep_groups=keep)
                return await self._patch_group(entity_id, operations, add, remove)
            if previous is not None:
                operations = patching.changes(previous, entity)
            else:
                operations = patching.replace_all(entity)
            return await self._patch(entity_type, entity_id, operations)
        body = {k: v for k, v in entity.items() if k != "meta"}
        body["id"] = entity_id
        if entity_type == EntityType.GROUP and opts.keep_nested_groups and previous is not None:
            kept = [
                m
                for m in patching.members_of(previous)
                if str(m.get("type", "")).lower() == "group"
            ]
            wanted = {m["value"] for m in members or []}
            body["members"] = [
                *(entity.get("members") or []),
                *(m for m in kept if m["value"] not in wanted),
            ]
        url = self.location(entity_type, entity_id)
        updated = await self.http.json("PUT", url, body=body, headers=self._write_headers())
        return Written(id=entity_id, entity=updated if isinstance(updated, dict) else None)

    async def _patch(
        self, entity_type: str, entity_id: str, operations: list[patching.Operation]
    ) -> Written:
        if not operations:
            return Written(id=entity_id)
        url = self.location(entity_type, entity_id)
        answer = await self.http.json(
            "PATCH", url, body=patching.body(operations), headers=self._write_headers()
        )
        return Written(id=entity_id, entity=answer if isinstance(answer, dict) else None)

    async def _update_large_group(
        self,
        group_id: str,
        entity: Entity,
        members: list[dict[str, Any]],
        previous: Entity | None,
    ) -> Written:
        """A group above the member threshold: its other attributes by PATCH, then its
        members as add/remove batches (spec §2.4), never one PUT with every member."""
        if previous is not None:
            current = patching.members_of(previous)
            operations = patching.changes(previous, entity, skip=MEMBERS)
        else:
            current = await self._current_members(group_id)
            operations = patching.replace_all(entity, skip=MEMBERS)
        add, remove = patching.member_diff(
            current, members, keep_groups=self.options.keep_nested_groups
        )
        return await self._patch_group(group_id, operations, add, remove)

    async def _patch_group(
        self,
        group_id: str,
        operations: list[patching.Operation],
        add: Sequence[dict[str, Any]],
        remove: Sequence[str],
    ) -> Written:
        """Attribute changes and member changes of a group: one PATCH when the member
        changes fit in one batch, else the attributes first, then a PATCH per batch."""
        size = self.options.member_threshold or MEMBER_BATCH
        batches = list(patching.member_batches(add, remove, size))
        if len(remove) <= patching.MAX_REMOVALS and len(add) <= size:
            return await self._patch(
                EntityType.GROUP, group_id, operations + [op for b in batches for op in b]
            )
        written = await self._patch(EntityType.GROUP, group_id, operations)
        for batch in batches:
            written = await self._patch(EntityType.GROUP, group_id, batch)
        return Written(id=group_id, entity=written.entity)

    async def _current_members(self, group_id: str) -> list[dict[str, Any]]:
        url = self.location(EntityType.GROUP, group_id)
        body = await self.http.json("GET", url, params={"attributes": "members"})
        return patching.members_of(body) if isinstance(body, dict) else []

    async def change_members(
        self, group_id: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> None:
        await self._patch_group(group_id, [], [{"value": v} for v in add], list(remove))

    async def delete(self, entity_type: str, entity_id: str) -> None:
        url = self.location(entity_type, entity_id)
        await self.http.request("DELETE", url, headers=self._write_headers())

    async def create_many(
        self, entity_type: str, entities: Sequence[Entity]
    ) -> list[Written | ConnectorError]:
        """Create several entities: with SCIM Bulk (``<prefix>.support.bulk.operation``), at
        most ``bulk.operations.max.count`` a request, else one POST each. One result per
        entity, in order: what was written, or why it was not."""
        results: list[Written | ConnectorError] = []
        if not self.options.bulk:
            for entity in entities:
                try:
                    results.append(await self.create(entity_type, entity))
                except ConnectorError as exc:
                    if exc.retryable:
                        raise
                    results.append(exc)
            return results
        size = self.options.bulk_count
        for start in range(0, len(entities), size):
            results.extend(await self._bulk(entity_type, entities[start : start + size]))
        return results

    async def _bulk(
        self, entity_type: str, entities: Sequence[Entity]
    ) -> list[Written | ConnectorError]:
        path = "/" + self.endpoint(entity_type)
        await self.discover()
        entities = [self.fit(entity_type, entity).entity for entity in entities]
        operations = [
            {
                "method": "POST",
                "path": path,
                "bulkId": f"b{index}",
                "data": {k: v for k, v in entity.items() if k not in ("id", "meta")},
            }
            for index, entity in enumerate(entities)
        ]
        answer = await self.http.json(
            "POST", "Bulk", body={"schemas": [BULK_REQUEST], "Operations": operations}
        )
        done = answer.get("Operations") if isinstance(answer, dict) else None
        if not isinstance(done, list):
            raise BackendError("POST Bulk: the answer is not a SCIM BulkResponse")
        by_id = {op.get("bulkId"): op for op in done if isinstance(op, dict)}
        results: list[Written | ConnectorError] = []
        for index in range(len(entities)):
            outcome = by_id.get(f"b{index}")
            results.append(self._bulk_result(path, outcome))
        return results

    @staticmethod
    def _bulk_result(path: str, outcome: dict[str, Any] | None) -> Written | ConnectorError:
        what = f"POST {path} (bulk)"
        if outcome is None:
            return BackendError(f"{what}: the BulkResponse has no result for this operation")
        status_value = outcome.get("status")
        if isinstance(status_value, dict):  # SCIM 1.1 style {"code": 201}
            status_value = status_value.get("code")
        try:
            status = int(str(status_value).strip())
        except ValueError:
            return BackendError(f"{what}: unreadable status {status_value!r}")
        if status < 300:
            location = str(outcome.get("location") or "").rstrip("/")
            if not location:
                return BackendError(f"{what}: created, but no location names its id")
            return Written(id=location.rsplit("/", 1)[-1])
        response = outcome.get("response")
        detail = ""
        if isinstance(response, dict):
            parts = [response.get("scimType"), response.get("detail")]
            detail = ": ".join(p for p in parts if isinstance(p, str) and p)
        return status_error(status, what, detail)

    # -- the connection ---------------------------------------------------------------------

    async def test_connection(self) -> str:
        try:
            body = await self.http.json(
                "GET", EntityType.USER.endpoint, params={"startIndex": 1, "count": 1}
            )
        except EntityNotFound as exc:
            raise ConnectorError(
                f"{exc.message}: no SCIM Users endpoint there; check the URL"
            ) from exc
        if not isinstance(body, dict) or not any(
            key in body for key in ("totalResults", "Resources")
        ):
            raise BackendError(
                f"GET {httpx.URL(self.base_url).path}/Users: the answer is not a SCIM "
                "ListResponse; check the URL"
            )
        total = body.get("totalResults")
        users = f"{total} users" if isinstance(total, int) else "users listed"
        return (
            f"{self.type_name} at {where(httpx.URL(self.base_url))} answers "
            f"GET {httpx.URL(self.base_url).path}/Users ({users}); "
            f"authentication: {self.http.auth_description}"
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self


class IASConnector(SCIMConnector):
    """SAP Identity Authentication: the Identity Directory SCIM API (``ias.api.version=2``,
    ``URL/scim``, properties ``ias.*`` then ``scim.*``) or the legacy IAS SCIM API
    (version 1, ``URL/service/scim``, properties ``scim.*``)."""

    type_name = "Identity Authentication"
    member_threshold_default = 20000
    schema_discovery_default = False  # SAP's write transformations are made for it

    def __init__(
        self, config: ConnectorConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        version = (config.get("ias.api.version") or "2").strip()
        if version not in ("1", "2"):
            raise ConfigError(
                f"System {config.system_name}: ias.api.version is 1 or 2, not {version!r}."
            )
        self.api_version = int(version)
        super().__init__(config, transport=transport)

    def prefixes(self) -> tuple[str, ...]:
        return ("ias", "scim") if self.api_version == 2 else ("scim",)

    def group_unique_default(self) -> str:
        if self.api_version == 2:
            return "['urn:sap:cloud:scim:schemas:extension:custom:2.0:Group']['name']"
        return "displayName"

    def resources_url(self) -> str:
        url = super().resources_url()
        suffix = "/scim" if self.api_version == 2 else "/service/scim"
        return url if url.endswith(suffix) else url + suffix
