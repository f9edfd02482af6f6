"""Group memberships: which groups list a member, and nested groups flattened (AD).

Memberships are computed from the groups' member attribute, not from a server-side
``memberOf`` (which OpenLDAP has only with the memberof overlay): a full read loads every group
under ``ldap.group.path`` once into a ``GroupIndex``; single lookups ask the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from provisor.connectors.ldap.deltas import fingerprint, member_key
from provisor.connectors.ldap.values import normalize_dn


@dataclass(frozen=True, slots=True)
class Group:
    dn: str
    name: str | None  # its unique name (ldap.group.uniquename.attribute), for users' memberOf
    members: tuple[str, ...] = ()  # member DNs as stored
    stamp: str | None = None  # when it last changed: modifyTimestamp or uSNChanged


class Groups(Protocol):
    """Where groups come from: an index loaded by a full read, or lookups on the server."""

    def group(self, dn: str) -> Group | None:
        """The group at ``dn`` (any spelling), or None when ``dn`` is no group of ours."""

    def parents(self, dn: str) -> list[Group]:
        """The groups that list ``dn`` as a member."""


@dataclass
class GroupIndex:
    """Every group under the group path, by normalized DN, and who lists whom."""

    by_dn: dict[str, Group] = field(default_factory=dict)
    by_member: dict[str, list[Group]] = field(default_factory=dict)
    spelled: dict[str, str] = field(default_factory=dict)  # a member's DN as a group lists it

    @classmethod
    def of(cls, groups: Iterable[Group]) -> GroupIndex:
        index = cls()
        for group in groups:
            index.by_dn[normalize_dn(group.dn)] = group
            for member in group.members:
                normalized = normalize_dn(member)
                index.by_member.setdefault(normalized, []).append(group)
                index.spelled.setdefault(normalized, member)
        return index

    def group(self, dn: str) -> Group | None:
        return self.by_dn.get(normalize_dn(dn))

    def parents(self, dn: str) -> list[Group]:
        return self.by_member.get(normalize_dn(dn), [])


def group_names(groups: Groups, dn: str, *, nested: bool) -> list[str]:
    """The unique names of the groups ``dn`` belongs to; through nested groups when asked."""
    found = ancestors(groups, dn) if nested else groups.parents(dn)
    names: list[str] = []
    for group in found:
        if group.name is not None and group.name not in names:
            names.append(group.name)
    return names


def memberships(
    index: GroupIndex, is_user: Callable[[str], bool], *, nested: bool
) -> dict[bytes, tuple[str, bytes]]:
    """Every user a group lists (a member whose normalized DN ``is_user`` accepts) and that
    has named groups: its key -> (its DN as listed, the fingerprint of its groups' names)."""
    reach: dict[int, set[str]] = {}  # id of a group -> its name and, nested, those above it
    for group in index.by_dn.values():
        above = ancestors(index, group.dn) if nested else ()
        reach[id(group)] = {g.name for g in (group, *above) if g.name is not None}
    found: dict[bytes, tuple[str, bytes]] = {}
    fingerprints: dict[frozenset[int], bytes | None] = {}  # users often share their groups
    for normalized, groups in index.by_member.items():
        if not is_user(normalized):
            continue
        ids = frozenset(id(g) for g in groups)
        if ids not in fingerprints:
            names = set().union(*(reach[i] for i in ids))
            fingerprints[ids] = fingerprint(names) if names else None
        value = fingerprints[ids]
        if value is not None:
            found[member_key(normalized)] = (index.spelled[normalized], value)
    return found


def ancestors(groups: Groups, dn: str) -> Iterator[Group]:
    """The groups above ``dn``: its groups, their groups, ... (each once, cycles allowed)."""
    seen = {normalize_dn(dn)}
    frontier = [dn]
    while frontier:
        parents = [p for member in frontier for p in groups.parents(member)]
        frontier = []
        for parent in parents:
            key = normalize_dn(parent.dn)
            if key not in seen:
                seen.add(key)
                frontier.append(parent.dn)
                yield parent


def flattened_members(groups: Groups, group: Group) -> list[str]:
    """A group's members with nested groups replaced by their own members, recursively."""
    seen_groups = {normalize_dn(group.dn)}
    seen_members: set[str] = set()
    members: list[str] = []
    stack = list(reversed(group.members))
    while stack:
        dn = stack.pop()
        key = normalize_dn(dn)
        nested = groups.group(dn)
        if nested is not None:
            if key not in seen_groups:
                seen_groups.add(key)
                stack.extend(reversed(nested.members))
        elif key not in seen_members:
            seen_members.add(key)
            members.append(dn)
    return members
