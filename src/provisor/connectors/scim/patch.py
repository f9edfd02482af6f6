"""PATCH operations (RFC 7644 §3.5.2) a SCIM target is sent: what changed, and members in
batches (spec §2.4: member changes of large groups, at most 50 removals per request)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from provisor.connectors.base import Entity
from provisor.connectors.scim.filters import quote

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SERVER_SET = frozenset({"id", "meta", "schemas"})  # never sent as changes
MAX_REMOVALS = 50  # members removed by one PATCH (SAP's limit)

Operation = dict[str, Any]


def body(operations: Sequence[Operation]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def replace_all(
    entity: Mapping[str, Any], *, skip: frozenset[str] = frozenset()
) -> list[Operation]:
    """One path-less replace of every attribute present (no previous state known)."""
    value = {k: v for k, v in entity.items() if k not in SERVER_SET and k not in skip}
    return [{"op": "replace", "value": value}] if value else []


def changes(
    previous: Mapping[str, Any], entity: Mapping[str, Any], *, skip: frozenset[str] = frozenset()
) -> list[Operation]:
    """Replace and remove operations turning ``previous`` into ``entity``.

    Complex attributes and extensions are compared one level down, so a changed
    ``name.givenName`` does not resend ``name`` and a removed sub-attribute is removed;
    multi-valued attributes are replaced as a whole. ``schemas`` is replaced only when an
    extension is added or removed.
    """
    ops = list(_diff(previous, entity, "", 0, skip))
    old_schemas, new_schemas = previous.get("schemas"), entity.get("schemas")
    if (
        isinstance(new_schemas, list)
        and isinstance(old_schemas, list)
        and set(map(str, old_schemas)) != set(map(str, new_schemas))
    ):
        ops.insert(0, {"op": "replace", "path": "schemas", "value": new_schemas})
    return ops


def _diff(
    old: Mapping[str, Any], new: Mapping[str, Any], prefix: str, depth: int, skip: frozenset[str]
) -> Iterator[Operation]:
    for key, value in new.items():
        if depth == 0 and (key in SERVER_SET or key in skip):
            continue
        path = prefix + key
        before = old.get(key)
        if key in old and before == value:
            continue
        if value is None:
            if before is not None:
                yield {"op": "remove", "path": path}
            continue
        descend = depth == 0 or (depth == 1 and prefix.lower().startswith("urn:"))
        if descend and isinstance(value, dict) and isinstance(before, dict | None):
            # an extension (urn:...:User → urn:...:User:attr) or a complex attribute (name.x)
            joiner = ":" if depth == 0 and key.lower().startswith("urn:") else "."
            yield from _diff(before or {}, value, path + joiner, depth + 1, skip)
            continue
        yield {"op": "replace", "path": path, "value": value}
    for key, before in old.items():
        if key in new or before is None:
            continue
        if depth == 0 and (key in SERVER_SET or key in skip):
            continue
        yield {"op": "remove", "path": prefix + key}


# -- members --------------------------------------------------------------------------------------


def member_value(member: Any) -> dict[str, Any] | None:
    """A member as sent in PATCH add: ``value`` and, when known, ``type``."""
    if isinstance(member, str):
        return {"value": member}
    if isinstance(member, Mapping) and isinstance(member.get("value"), str):
        out: dict[str, Any] = {"value": member["value"]}
        if isinstance(member.get("type"), str):
            out["type"] = member["type"]
        return out
    return None


def members_of(entity: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = entity.get("members")
    if not isinstance(raw, list):
        return []
    return [m for m in (member_value(item) for item in raw) if m is not None]


def member_diff(
    current: Sequence[Mapping[str, Any]],
    wanted: Sequence[Mapping[str, Any]],
    *,
    keep_groups: bool = False,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The members to add and the member ids to remove; ``keep_groups`` leaves nested
    groups that the target has alone (``patch.group.members.of.nested.groups``)."""
    have = {m["value"]: m for m in current}
    want = {m["value"]: m for m in wanted}
    add = [dict(m) for value, m in want.items() if value not in have]
    remove = [
        value
        for value, m in have.items()
        if value not in want and not (keep_groups and str(m.get("type", "")).lower() == "group")
    ]
    return add, remove


def member_batches(
    add: Sequence[Mapping[str, Any]], remove: Sequence[str], size: int
) -> Iterator[list[Operation]]:
    """The operations of each PATCH request: removals first, at most ``min(size, 50)`` a
    request, then additions, ``size`` a request."""
    size = max(1, size)
    step = min(size, MAX_REMOVALS)
    for start in range(0, len(remove), step):
        chunk = remove[start : start + step]
        condition = " or ".join(f"value eq {quote(value)}" for value in chunk)
        yield [{"op": "remove", "path": f"members[{condition}]"}]
    for start in range(0, len(add), size):
        yield [
            {"op": "add", "path": "members", "value": [dict(m) for m in add[start : start + size]]}
        ]


def without(entity: Mapping[str, Any], *keys: str) -> Entity:
    return {k: v for k, v in entity.items() if k not in keys}
