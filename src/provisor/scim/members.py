"""Group membership changes, taken out of PATCH operations and PUT bodies.

Members are stored apart from the group document so that adding or removing one member of
a group with 100,000 members touches one row, never the whole list.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from scim2_models import Path
from scim2_models.exceptions import SCIMException
from scim2_models.path import AttrPath, FilterNode, ValuePath

from provisor.scim import schemas as s
from provisor.scim.errors import InvalidPathError, InvalidValueError, MutabilityError
from provisor.scim.limits import DEFAULT_LIMITS, Budget, Limits, check_filter_tree, check_string
from provisor.scim.matching import matches
from provisor.scim.patch import Operation


class MemberAction(StrEnum):
    ADD = "add"
    REPLACE = "replace"
    REMOVE = "remove"  # the listed members
    REMOVE_ALL = "remove_all"
    REMOVE_MATCHING = "remove_matching"  # members passing a filter on value/type/display


@dataclass(frozen=True, slots=True)
class Member:
    value: str
    type: str | None = None  # "User" or "Group"; None: whichever the id names
    display: str | None = None  # a human-readable name, kept as the client gave it


@dataclass(frozen=True, slots=True)
class MemberChange:
    action: MemberAction
    members: tuple[Member, ...] = ()
    value_filter: FilterNode | None = None


def parse_members(value: Any, where: str = "members") -> tuple[Member, ...]:
    """Read a list of member values ({"value": id, "type": "User"|"Group", "display": ...})."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    out: list[Member] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidValueError(f"{where}[{index}]: a member is an object with a 'value'.")
        lowered = {str(k).lower(): v for k, v in item.items()}
        member_id = lowered.get("value")
        if not isinstance(member_id, str) or not member_id:
            raise InvalidValueError(f"{where}[{index}].value: the id of a User or Group.")
        check_string(member_id, f"{where}[{index}].value", DEFAULT_LIMITS)
        kind = lowered.get("type")
        if kind is not None:
            if not isinstance(kind, str) or kind.lower() not in ("user", "group"):
                raise InvalidValueError(f"{where}[{index}].type: 'User' or 'Group'.")
            kind = "User" if kind.lower() == "user" else "Group"
        display = lowered.get("display")
        if display is not None:
            if not isinstance(display, str):
                raise InvalidValueError(f"{where}[{index}].display: a string.")
            check_string(display, f"{where}[{index}].display", DEFAULT_LIMITS)
        out.append(Member(value=member_id, type=kind, display=display))
    return tuple(out)


def _is_members(attr_path: AttrPath) -> bool:
    return attr_path.attr.lower() == "members" and (
        attr_path.uri is None or attr_path.uri.lower() == s.GROUP.lower()
    )


def split_members(ops: list[Operation]) -> tuple[list[Operation], list[MemberChange]]:
    """Separate the operations on ``members`` from those on the group document."""
    doc_ops: list[Operation] = []
    changes: list[MemberChange] = []
    for operation in ops:
        if operation.path is None:
            if isinstance(operation.value, dict):
                rest = {}
                for key, value in operation.value.items():
                    if key.lower() == "members" or key.lower() == f"{s.GROUP}:members".lower():
                        action = MemberAction.ADD if operation.op == "add" else MemberAction.REPLACE
                        changes.append(MemberChange(action, parse_members(value)))
                    else:
                        rest[key] = value
                if rest:
                    doc_ops.append(Operation(operation.op, None, rest))
            else:
                doc_ops.append(operation)
            continue
        try:
            node = Path(operation.path).ast
        except SCIMException as exc:
            raise InvalidPathError(f"Invalid path {operation.path!r}: {exc}") from exc
        if isinstance(node, AttrPath) and _is_members(node):
            if node.sub_attr is not None:
                raise MutabilityError("The sub-attributes of a member are immutable.")
            changes.append(_plain_members_change(operation))
        elif isinstance(node, ValuePath) and _is_members(node.attr_path):
            if operation.op != "remove" or node.sub_attr is not None:
                raise MutabilityError(
                    "Members can be added, removed or replaced, but not modified in place."
                )
            check_filter_tree(node.val_filter, DEFAULT_LIMITS)
            changes.append(MemberChange(MemberAction.REMOVE_MATCHING, value_filter=node.val_filter))
        else:
            doc_ops.append(operation)
    return doc_ops, changes


def _plain_members_change(operation: Operation) -> MemberChange:
    if operation.op == "add":
        return MemberChange(MemberAction.ADD, parse_members(operation.value))
    if operation.op == "replace":
        return MemberChange(MemberAction.REPLACE, parse_members(operation.value))
    if operation.value is None:
        return MemberChange(MemberAction.REMOVE_ALL)
    return MemberChange(MemberAction.REMOVE, parse_members(operation.value))


def apply_member_changes(
    members: Any, changes: list[MemberChange], limits: Limits = DEFAULT_LIMITS
) -> list[dict[str, Any]]:
    """A group's member list after ``changes``, in memory: for back-ends that hold the list
    in the group (proxy systems). A member already listed is not added twice."""
    current = [dict(m) for m in members if isinstance(m, dict)] if isinstance(members, list) else []
    attr = s.CORE_GROUP.attribute("members")
    assert attr is not None
    budget = Budget(limits)
    for change in changes:
        if change.action in (MemberAction.REPLACE, MemberAction.REMOVE_ALL):
            current = []
        if change.action in (MemberAction.ADD, MemberAction.REPLACE):
            listed = {m.get("value") for m in current}
            for member in change.members:
                if member.value not in listed:
                    listed.add(member.value)
                    current.append(_member_value(member))
        elif change.action is MemberAction.REMOVE:
            gone = {m.value for m in change.members}
            current = [m for m in current if m.get("value") not in gone]
        elif change.action is MemberAction.REMOVE_MATCHING:
            assert change.value_filter is not None
            budget.spend(len(current))
            current = [m for m in current if not matches(attr, change.value_filter, m)]
    return current


def _member_value(member: Member) -> dict[str, Any]:
    return {"value": member.value, "type": member.type} if member.type else {"value": member.value}
