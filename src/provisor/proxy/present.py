"""What a proxy response shows of a resource: ``attributes``/``excludedAttributes``
(spec §5.4), and the body of a list."""

from __future__ import annotations

from typing import Any

import orjson

from provisor.proxy.model import Listing
from provisor.scim import schemas as s
from provisor.scim.errors import ResourceNotFoundError, SCIMError
from provisor.scim.projection import Projection
from provisor.scim.registry import ResourceType, resolve


def project(
    rt: ResourceType, doc: dict[str, Any], attributes: str | None, excluded: str | None
) -> dict[str, Any]:
    """``doc`` with the attributes chosen; attributes outside the schemas stay with the
    default set and go when ``attributes`` is given."""
    if attributes is None and excluded is None:
        return doc
    projection = Projection.parse(rt, attributes, excluded)
    if projection.is_default:
        return doc
    known: dict[str, Any] = {}
    other: dict[str, Any] = {}
    for key, value in doc.items():
        (known if _known(rt, key) else other)[key] = value
    out = projection.apply(known)
    if projection.include is None:
        names = {p.strip().lower() for p in (excluded or "").split(",")}
        out.update({k: v for k, v in other.items() if k.lower() not in names})
    return out


def _known(rt: ResourceType, key: str) -> bool:
    if key in ("schemas", "id") or (key.startswith("urn:") and rt.extension(key) is not None):
        return True
    try:
        resolve(rt, None, key, None, error=ResourceNotFoundError)
    except SCIMError:
        return False
    return True


def list_body(listing: Listing) -> bytes:
    """The SCIM ListResponse of a listing."""
    return orjson.dumps(
        {
            "schemas": [s.LIST_RESPONSE],
            "totalResults": listing.total,
            "itemsPerPage": listing.items_per_page,
            "startIndex": listing.start_index,
            "Resources": listing.resources,
        }
    )
