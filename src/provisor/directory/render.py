"""Building SCIM response bodies from stored documents, as JSON text.

The stored document is served as it is: the meta attribute and the computed attributes
(User ``groups``, Group ``members``) are spliced into its text, so a plain GET never
decodes the document. Only ``attributes``/``excludedAttributes`` make it decode and
re-encode.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from provisor.directory.store import MemberRow, StoredResource
from provisor.scim import schemas as s
from provisor.scim.projection import Projection
from provisor.types import EntityType

_ENDPOINT = {kind.resource_type: kind.endpoint for kind in EntityType}  # a member's type


def etag(version: int) -> str:
    return f'W/"{version}"'


def location(kind: EntityType, resource_id: str, base_url: str) -> str:
    return f"{base_url}/{kind.endpoint}/{resource_id}"


def meta(kind: EntityType, res: StoredResource, base_url: str) -> dict[str, str]:
    return {
        "resourceType": kind.resource_type,
        "created": res.created,
        "lastModified": res.last_modified,
        "location": location(kind, res.id, base_url),
        "version": etag(res.version),
    }


def refs(rows: Iterable[MemberRow], base_url: str, *, groups: bool) -> list[Any]:
    """User.groups (``groups=True``) or Group.members values."""
    out = []
    for row in rows:
        target = "Group" if groups else row.type
        item: dict[str, Any] = {
            "value": row.id,
            "$ref": f"{base_url}/{_ENDPOINT[target]}/{row.id}",
        }
        if row.display is not None:
            item["display"] = row.display
        item["type"] = row.type
        out.append(item)
    return out


def resource(
    kind: EntityType,
    res: StoredResource,
    base_url: str,
    projection: Projection,
    related: list[MemberRow] | None,
) -> bytes:
    """The JSON text of one resource; ``related`` is its groups (User) or members (Group)."""
    user = kind is EntityType.USER
    extra: dict[str, Any] = {}
    if related:
        extra["groups" if user else "members"] = refs(related, base_url, groups=user)
    extra["meta"] = meta(kind, res, base_url)
    if projection.is_default:
        doc = res.doc.encode() if isinstance(res.doc, str) else res.doc
        return doc[:-1] + b"," + orjson.dumps(extra)[1:]
    full = orjson.loads(res.doc)
    full.update(extra)
    if kind is EntityType.GROUP and projection.requests(s.SAP_GROUP, "children"):
        children = [r for r in related or () if r.type == "Group"]
        if children:  # SAP's hierarchy: the groups that are members of this one
            ext = full.setdefault(s.SAP_GROUP, {})
            ext["children"] = [
                {"value": r.id, "$ref": f"{base_url}/Groups/{r.id}"} for r in children
            ]
            if s.SAP_GROUP not in full["schemas"]:
                full["schemas"] = [*full["schemas"], s.SAP_GROUP]
    return orjson.dumps(projection.apply(full))


def list_response(
    items: list[bytes],
    total: int,
    start_index: int | None,
    cursor: tuple[str, str] | None = None,
) -> bytes:
    head: dict[str, Any] = {
        "schemas": [s.LIST_RESPONSE],
        "totalResults": total,
        "itemsPerPage": len(items),
    }
    if start_index is not None:
        head["startIndex"] = start_index
    if cursor is not None:
        head["startId"], head["nextId"] = cursor
    return orjson.dumps(head)[:-1] + b',"Resources":[' + b",".join(items) + b"]}"
