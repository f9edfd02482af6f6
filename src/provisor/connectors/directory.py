"""The Local Identity Directory connector: this tenant's own directory (spec §7).

No connection properties: the connector calls the directory service of the same process
(lent as ``config.services["directory"]``), with the same SCIM semantics as ``/scim``, in
the context of the job or call that built it (``config.services["context"]``: a system
context holds every permission).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, TypeVar

import orjson

from provisor.connectors.base import (
    PATCH_OP,
    Capabilities,
    Connector,
    ConnectorConfig,
    ConnectorError,
    Entity,
    EntityConflict,
    EntityNotFound,
    InvalidEntity,
    Page,
    Role,
    Slice,
    Written,
    patch_operations_of,
)
from provisor.connectors.types import (
    ALL_ROLES,
    SP,
    TP,
    ConnectorType,
    Kind,
    PropertySpec,
    T,
    generic_properties,
    register,
)
from provisor.context import Context
from provisor.directory.service import Directory, ListQuery
from provisor.errors import ConfigError, ProvisorError
from provisor.scim.errors import (
    MemberNotFoundError,
    ResourceNotFoundError,
    SCIMError,
    UniquenessError,
)
from provisor.types import EntityType

CUSTOM_GROUP_NAME = "['urn:sap:cloud:scim:schemas:extension:custom:2.0:Group']['name']"
BASE_URL = "/scim"  # meta.location of what the connector returns: the tenant's own /scim
_KINDS = {kind.value: kind for kind in EntityType}
_READ_ONLY = ("id", "meta", "schemas", "groups")
ID_PAGE = 1000  # ids read per request to split a read (the directory's most per page)

TYPE = register(
    ConnectorType(
        id="local-identity-directory",
        name="Local Identity Directory",
        prefix="idds",
        roles=ALL_ROLES,
        implementation="provisor.connectors.directory:DirectoryConnector",
        aliases=("LID", "Identity Directory (local)"),
        description="This tenant's own directory, served at /scim.",
        properties=(
            PropertySpec("idds.user.filter", roles=SP, description="SCIM filter of users read."),
            PropertySpec("idds.group.filter", roles=SP, description="SCIM filter of groups read."),
            PropertySpec(
                "idds.user.groups.paging.enabled", Kind.BOOLEAN, default="false", roles=SP
            ),
            PropertySpec(
                "idds.group.members.paging.enabled", Kind.BOOLEAN, default="false", roles=SP
            ),
            PropertySpec(
                "idds.user.unique.attribute",
                default="userName",
                seeded=True,
                roles=T,
                description="Attribute(s) finding an existing user when a create conflicts: "
                "userName, emails[0].value, phoneNumbers[0].value, externalId or a comma list.",
            ),
            PropertySpec(
                "idds.group.unique.attribute",
                default=CUSTOM_GROUP_NAME,
                roles=T,
                description="Attribute finding an existing group when a create conflicts.",
            ),
            PropertySpec(
                "idds.user.automatic.conflict.resolution", Kind.BOOLEAN, default="true", roles=T
            ),
            PropertySpec(
                "idds.support.patch.operation",
                Kind.BOOLEAN,
                default="false",
                roles=TP,
                description="Update with PATCH (what changed) instead of PUT (everything).",
            ),
            PropertySpec(
                "idds.patch.group.members.above.threshold",
                Kind.INTEGER,
                default="20000",
                minimum=1,
                maximum=200000,
                roles=T,
            ),
            PropertySpec("idds.support.bulk.operation", Kind.BOOLEAN, default="false", roles=T),
            PropertySpec(
                "idds.bulk.operations.max.count",
                Kind.INTEGER,
                default="20",
                minimum=1,
                maximum=100,
                roles=T,
            ),
            PropertySpec(
                "idds.user.update.instead.delete",
                Kind.BOOLEAN,
                default="false",
                roles=T,
                description="Deletions become updates built from deleteEntity mappings.",
            ),
            PropertySpec("idds.content.type", default="application/scim+json", roles=TP),
            PropertySpec(
                "idds.include.if.match.wildcard.header", Kind.BOOLEAN, default="false", roles=TP
            ),
            PropertySpec(
                "idds.page.size",
                Kind.INTEGER,
                default="1000",
                minimum=1,
                maximum=1000,
                roles=SP,
                description="Entities per page of a read.",
            ),
            *generic_properties(),
        ),
    )
)

_T = TypeVar("_T")


GROUP_PAGE = 20  # groups per page of a read, at most


class DirectoryConnector(Connector):
    capabilities = Capabilities(delta_read=True, patch=True, scim_patch=True)

    def __init__(self, config: ConnectorConfig) -> None:
        super().__init__(config)
        directory = config.services.get("directory")
        if not isinstance(directory, Directory):
            raise ConfigError("The Local Identity Directory connector runs inside provisor only.")
        self.directory = directory
        # provisor's own directory, used by provisor for an authorised job or call: a system
        # actor of the call's tenant and request (the caller's permissions were checked for
        # the proxy, job or real-time operation, not for the directory's)
        call = config.services.get("context")
        if not isinstance(call, Context):
            call = Context.system("connector")
        self.ctx = call.as_system("connector")
        self.page_size = config.integer("idds.page.size", 1000)
        self.patch = config.flag("idds.support.patch.operation")

    async def _call(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        try:
            return await asyncio.to_thread(fn, self.ctx, *args, **kwargs)
        except MemberNotFoundError as exc:  # the entity names a missing member: it is invalid
            raise InvalidEntity(exc.message) from exc
        except ResourceNotFoundError as exc:
            raise EntityNotFound(exc.message) from exc
        except UniquenessError as exc:
            raise EntityConflict(exc.message) from exc
        except SCIMError as exc:
            raise InvalidEntity(exc.message) from exc
        except ProvisorError as exc:
            raise ConnectorError(exc.message) from exc

    async def read(self, entity_type: str, *, delta: str | None = None) -> AsyncIterator[Page]:
        pages = self._pages(_kind(entity_type), self._filter(entity_type, delta), "initial", delta)
        async for page in pages:
            yield page

    async def _pages(
        self, kind: EntityType, query: str | None, cursor: str, newest: str | None
    ) -> AsyncIterator[Page]:
        """The entities matching ``query`` from ``cursor`` on, page by page; the last page
        carries the newest ``lastModified`` seen (``newest`` at the least)."""
        while True:
            # Groups carry their members: smaller pages keep a read's memory bounded.
            count = self.page_size if kind is EntityType.USER else min(self.page_size, GROUP_PAGE)
            q = ListQuery(filter=query, start_id=cursor, count=count)
            data = orjson.loads(await self._call(self.directory.search, kind, q, BASE_URL))
            entities: list[Entity] = data.get("Resources", [])
            for entity in entities:
                modified = entity.get("meta", {}).get("lastModified")
                if isinstance(modified, str) and (newest is None or modified > newest):
                    newest = modified
            cursor = data.get("nextId", "end")
            if cursor == "end" or not entities:
                yield Page(entities, delta_token=newest)
                return
            yield Page(entities)

    async def split(self, entity_type: str, size: int) -> list[dict[str, Any]] | None:
        """Key ranges of the directory's ids ({"from": first id or None, "to": first id of
        the next range or None}), each about ``size`` entities (whole pages of ids)."""
        kind = _kind(entity_type)
        query = self._filter(entity_type, None)
        starts: list[str | None] = [None]
        cursor, counted = "initial", 0
        while True:
            step = min(size, ID_PAGE)
            q = ListQuery(filter=query, start_id=cursor, count=step, attributes="id")
            data = orjson.loads(await self._call(self.directory.search, kind, q, BASE_URL))
            counted += len(data.get("Resources", []))
            cursor = data.get("nextId", "end")
            if cursor == "end" or not data.get("Resources"):
                break
            if counted >= size:
                starts.append(cursor)
                counted = 0
        ends = [*starts[1:], None]
        return [{"from": a, "to": b} for a, b in zip(starts, ends, strict=True)]

    async def read_part(self, entity_type: str, bounds: Mapping[str, Any]) -> AsyncIterator[Page]:
        """The entities whose id is in [from, to), by cursor, page by page."""
        kind = _kind(entity_type)
        upto = bounds.get("to")
        filters = [self._filter(entity_type, None)]
        if upto is not None:
            filters.append(f"id lt {orjson.dumps(upto).decode()}")
        query = " and ".join(f"({f})" for f in filters if f)
        async for page in self._pages(kind, query, bounds.get("from") or "initial", None):
            yield page

    async def slice(
        self,
        entity_type: str,
        *,
        start_index: int = 1,
        count: int = 100,
        modified_after: str | None = None,
    ) -> Slice:
        """One page by index, with the directory's total (a proxy's page)."""
        query = self._filter(entity_type, modified_after)
        q = ListQuery(filter=query, start_index=max(1, start_index), count=max(0, count))
        body = await self._call(self.directory.search, _kind(entity_type), q, BASE_URL)
        data = orjson.loads(body)
        entities: list[Entity] = data.get("Resources", [])
        total = int(data.get("totalResults", 0))
        return Slice(entities, total, last=max(1, start_index) - 1 + len(entities) >= total)

    def _filter(self, entity_type: str, modified_after: str | None) -> str | None:
        """The system's filter (``idds.<type>.filter``), and only what changed after a time."""
        filters = [self.config.get(f"idds.{entity_type}.filter")]
        if modified_after:
            filters.append(f"meta.lastModified gt {orjson.dumps(modified_after).decode()}")
        return " and ".join(f"({f})" for f in filters if f) or None

    async def get(self, entity_type: str, entity_id: str) -> Entity | None:
        try:
            rendered = await self._call(self.directory.get, _kind(entity_type), entity_id, BASE_URL)
        except EntityNotFound:
            return None
        assert rendered.body is not None
        entity: Entity = orjson.loads(rendered.body)
        return entity

    async def find(self, entity_type: str, attribute: str, value: str) -> list[Entity]:
        path = scim_filter_path(attribute)
        quoted = orjson.dumps(value).decode()
        query = f"{path} eq {quoted}"
        configured = self.config.get(f"idds.{entity_type}.filter")
        if configured and self.config.role is Role.PROXY:  # a proxy serves what it reads
            query = f"({configured}) and {query}"
        q = ListQuery(filter=query, count=2)
        body = await self._call(self.directory.search, _kind(entity_type), q, BASE_URL)
        found: list[Entity] = orjson.loads(body).get("Resources", [])
        return found

    async def create(
        self, entity_type: str, entity: Entity, *, entity_id: str | None = None
    ) -> Written:
        body = {k: v for k, v in entity.items() if k != "id"}
        rendered = await self._call(self.directory.create, _kind(entity_type), body, BASE_URL)
        assert rendered.body is not None
        return Written(rendered.id, orjson.loads(rendered.body))

    async def update(
        self, entity_type: str, entity_id: str, entity: Entity, *, previous: Entity | None = None
    ) -> Written:
        kind = _kind(entity_type)
        requested = patch_operations_of(entity)
        if requested is not None or self.patch:
            ops = requested if requested is not None else patch_operations(entity, previous)
            body: Entity = {"schemas": [PATCH_OP], "Operations": ops}
            rendered = await self._call(self.directory.patch, kind, entity_id, body, BASE_URL)
        else:
            replacement = {k: v for k, v in entity.items() if k != "id"}
            rendered = await self._call(
                self.directory.replace, kind, entity_id, replacement, BASE_URL
            )
        assert rendered.body is not None
        return Written(entity_id, orjson.loads(rendered.body))

    async def delete(self, entity_type: str, entity_id: str) -> None:
        await self._call(self.directory.delete, _kind(entity_type), entity_id)

    async def change_members(
        self, group_id: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> None:
        ops: list[dict[str, Any]] = []
        if add:
            ops.append({"op": "add", "path": "members", "value": [{"value": m} for m in add]})
        ops.extend({"op": "remove", "path": f'members[value eq "{m}"]'} for m in remove)
        if ops:
            body = {"schemas": [PATCH_OP], "Operations": ops}
            await self._call(self.directory.patch, EntityType.GROUP, group_id, body, BASE_URL)

    def unique_attributes(self, entity_type: str) -> tuple[str, ...]:
        default = "userName" if entity_type == "user" else CUSTOM_GROUP_NAME
        text = self.config.get(f"idds.{entity_type}.unique.attribute", default) or default
        return tuple(a.strip() for a in text.split(",") if a.strip())

    async def test_connection(self) -> str:
        q = ListQuery(count=0)
        search = self.directory.search
        users = orjson.loads(await self._call(search, EntityType.USER, q, BASE_URL))
        groups = orjson.loads(await self._call(search, EntityType.GROUP, q, BASE_URL))
        return (
            f"The Local Identity Directory answers: {users['totalResults']:,} users, "
            f"{groups['totalResults']:,} groups."
        )


def _kind(entity_type: str) -> EntityType:
    try:
        return _KINDS[entity_type]
    except KeyError:
        raise ConnectorError(f"The Local Identity Directory has no {entity_type}s.") from None


def scim_filter_path(attribute: str) -> str:
    """A unique-attribute path as a filter attribute: ``emails[0].value`` → ``emails.value``,
    ``['urn:...:Group']['name']`` → ``urn:...:Group:name``."""
    text = attribute.strip()
    if text.startswith("$"):
        text = text[1:].lstrip(".")
    if text.startswith("['"):
        parts = [p.strip("'") for p in text.strip("[]").split("']['")]
        return ":".join(parts)
    out, skip = [], False
    for char in text:
        if char == "[":
            skip = True
        elif char == "]":
            skip = False
        elif not skip:
            out.append(char)
    return "".join(out)


def patch_operations(entity: Entity, previous: Entity | None) -> list[dict[str, Any]]:
    """PATCH operations turning ``previous`` into ``entity`` (top-level attributes): a
    replace for each attribute that changed (all present ones without ``previous``) and a
    remove for each one that is gone."""
    ops: list[dict[str, Any]] = []
    for key, value in entity.items():
        if key in _READ_ONLY:
            continue
        if previous is None or previous.get(key) != value:
            ops.append({"op": "replace", "path": key, "value": value})
    for key in previous or {}:
        if key not in entity and key not in _READ_ONLY:
            ops.append({"op": "remove", "path": key})
    return ops
