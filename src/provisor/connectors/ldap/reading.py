"""Reading users and groups: paged reads, group lookups and members' unique names."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

import ldap  # type: ignore[import-untyped]

from provisor.connectors.base import Entity, EntityNotFound, Page
from provisor.connectors.ldap.client import NO_ATTRIBUTES, Entry, Session
from provisor.connectors.ldap.deltas import DeltaToken, changed_members, member_key
from provisor.connectors.ldap.dialects import Dialect, Tracker
from provisor.connectors.ldap.memberships import (
    Group,
    GroupIndex,
    Groups,
    ancestors,
    flattened_members,
    memberships,
)
from provisor.connectors.ldap.options import DN_ATTRIBUTE, EntityOptions, LDAPOptions
from provisor.connectors.ldap.values import (
    decode_values,
    escape_filter,
    normalize_dn,
    raw_values,
    rdn_of,
)
from provisor.types import EntityType


class Directory(Protocol):
    """What reads ask of the directory (``directory.Directory``, which builds the readers:
    declared here so that neither module imports the other)."""

    @property
    def options(self) -> LDAPOptions: ...

    @property
    def dialect(self) -> Dialect: ...

    def entities(
        self,
        session: Session,
        options: EntityOptions,
        entries: Iterable[Entry],
        groups: Groups | None = None,
        names: MemberNames | None = None,
    ) -> list[Entity]: ...

    def by_dn(
        self, session: Session, options: EntityOptions, dn: str, attributes: list[str]
    ) -> list[Entry]: ...

    def read_attributes(self, options: EntityOptions) -> list[str]: ...

    def filter(self, options: EntityOptions, *more: str, configured: bool = True) -> str: ...

    def group_index(self, session: Session) -> GroupIndex: ...

    def group_of(self, dn: str, attributes: dict[str, list[bytes]]) -> Group: ...

    def in_group_path(self, dn: str) -> bool: ...

    def in_user_path(self, normalized_dn: str) -> bool: ...


class Reader:
    """One read of users or groups, page by page.

    A delta read of users also returns the users whose groups changed (see ``deltas``); with
    ``ad.group.flatten``, a delta read of groups also returns the groups above a changed one
    (their flattened members changed with it)."""

    def __init__(
        self, directory: Directory, session: Session, options: EntityOptions, delta: str | None
    ) -> None:
        self.directory = directory
        self.session = session
        self.options = options
        self.delta = DeltaToken.parse(delta) if delta is not None else None
        self._pages: Iterator[tuple[list[Entry], bool]] | None = None
        self._tracker: Tracker | None = None
        self._groups: GroupIndex | None = None
        self._names: MemberNames | None = None
        self._memberships: dict[bytes, tuple[str, bytes]] | None = None
        self._read: set[str] = set()  # normalized DNs a delta read has returned

    def next_page(self) -> tuple[Page, bool]:
        """The next page, and whether it is the last (which carries the delta token)."""
        if self._pages is None:
            self._pages = self._start()
        assert self._tracker is not None
        entries, last = next(self._pages, ([], True))
        for _, attributes in entries:
            self._tracker.see(attributes)
        entities = self.directory.entities(
            self.session, self.options, entries, self._groups, self._names
        )
        return Page(entities, self._token() if last else None), last

    def _token(self) -> str | None:
        assert self._tracker is not None
        marker = self._tracker.token()
        if marker is None:
            return None
        snapshot = self._memberships
        found = None if snapshot is None else {k: v for k, (_, v) in snapshot.items()}
        return DeltaToken(marker, found).text()

    def _start(self) -> Iterator[tuple[list[Entry], bool]]:
        directory, options, session = self.directory, self.options, self.session
        path = options.require_path()  # before anything is asked of the server
        delta = self.delta
        more = [directory.dialect.delta_filter(delta.marker)] if delta else []
        self._tracker = directory.dialect.tracker(delta.marker if delta else None, self._root)
        users = options.entity_type is EntityType.USER
        if (users and directory.options.group.path) or directory.options.flatten:
            self._groups = directory.group_index(session)
            if users:
                self._memberships = memberships(
                    self._groups, directory.in_user_path, nested=directory.options.flatten
                )
        if not users:
            self._names = MemberNames(directory, session)
        pages = session.pages(
            path,
            directory.filter(options, *more),
            directory.read_attributes(options),
            directory.options.page_size,
        )
        return self._with_changed_groups(pages) if delta and self._groups else pages

    def _with_changed_groups(
        self, pages: Iterator[tuple[list[Entry], bool]]
    ) -> Iterator[tuple[list[Entry], bool]]:
        """The pages of a delta read, then the entries it left out whose groups changed."""
        held: list[Entry] | None = None
        for entries, _ in pages:
            if held is not None:
                yield held, False
            self._read.update(normalize_dn(dn) for dn, _ in entries)
            held = entries
        for batch in self._changed_entries():
            if held is not None:
                yield held, False
            held = batch
        yield held or [], True

    def _changed_entries(self) -> Iterator[list[Entry]]:
        directory, options, session = self.directory, self.options, self.session
        dns = (
            self._changed_users()
            if options.entity_type is EntityType.USER
            else self._changed_groups()
        )
        wanted = []
        for dn in dns:  # each once, and none the delta search returned
            key = normalize_dn(dn)
            if key not in self._read:
                self._read.add(key)
                wanted.append(dn)
        attributes = directory.read_attributes(options)
        size = directory.options.page_size
        for start in range(0, len(wanted), size):
            batch = wanted[start : start + size]
            yield [e for dn in batch for e in directory.by_dn(session, options, dn, attributes)]

    def _changed_users(self) -> list[str]:
        """The users whose groups changed since the delta token."""
        assert self.delta is not None and self._groups is not None
        current = self._memberships or {}
        previous = self.delta.memberships
        if previous is None:  # no snapshot: the members of the groups changed since
            return self._members_of(self._changed_since_token())
        keys = changed_members(previous, {k: v for k, (_, v) in current.items()})
        dns = [current[key][0] for key in keys if key in current]
        gone = keys - current.keys()  # in no group any more: find their DNs
        return dns + (self._users_with_keys(gone) if gone else [])

    def _changed_groups(self) -> list[str]:
        """With flattening, the groups above those changed since the delta token."""
        assert self._groups is not None
        changed = self._changed_since_token()
        return [above.dn for group in changed for above in ancestors(self._groups, group.dn)]

    def _changed_since_token(self) -> list[Group]:
        assert self.delta is not None and self._groups is not None
        dialect, marker = self.directory.dialect, self.delta.marker
        return [g for g in self._groups.by_dn.values() if dialect.changed_since(g.stamp, marker)]

    def _members_of(self, groups: list[Group]) -> list[str]:
        directory, index = self.directory, self._groups
        assert index is not None
        members = (
            flattened_members(index, g) if directory.options.flatten else g.members for g in groups
        )
        return [
            dn for listed in members for dn in listed if directory.in_user_path(normalize_dn(dn))
        ]

    def _users_with_keys(self, keys: set[bytes]) -> list[str]:
        """The DNs of the users with these snapshot keys (their DNs only are read)."""
        directory, options = self.directory, self.options
        pages = self.session.pages(
            options.require_path(),
            directory.filter(options),
            NO_ATTRIBUTES,
            directory.options.page_size,
        )
        return [
            dn for entries, _ in pages for dn, _ in entries if member_key(normalize_dn(dn)) in keys
        ]

    def _root(self, attributes: Sequence[str]) -> dict[str, list[bytes]]:
        entry = self.session.base("", attributes)
        return entry[1] if entry else {}


class LookupGroups:
    """Groups asked of the server one at a time (for get and find)."""

    def __init__(self, directory: Directory, session: Session) -> None:
        self.directory = directory
        self.session = session

    def group(self, dn: str) -> Group | None:
        directory = self.directory
        if not directory.in_group_path(dn):
            return None
        options = directory.options
        try:
            found = self.session.search(
                dn,
                directory.filter(options.group, configured=False),
                [options.member_attribute, options.group_name_attribute],
                scope=ldap.SCOPE_BASE,
            )
        except EntityNotFound:
            return None
        return directory.group_of(*found[0]) if found else None

    def parents(self, dn: str) -> list[Group]:
        directory = self.directory
        options = directory.options
        assertion = f"({options.member_attribute}={escape_filter(dn)})"
        found = self.session.search(
            options.group.require_path(),
            directory.filter(options.group, assertion, configured=False),
            [options.group_name_attribute],
        )
        return [directory.group_of(group, attributes) for group, attributes in found]


class MemberNames:
    """Members' DNs as unique names, with the entries read once per read."""

    def __init__(self, directory: Directory, session: Session) -> None:
        self.directory = directory
        self.session = session
        self._known: dict[str, str | None] = {}

    def name(self, dn: str) -> str | None:
        options = self.directory.options
        if options.member_name_attribute.lower() == DN_ATTRIBUTE.lower():
            return dn
        if self.directory.in_group_path(dn):
            attribute = options.group.id_attribute
            if attribute.lower() == DN_ATTRIBUTE.lower():
                return dn
        else:
            attribute = options.member_name_attribute
        rdn = rdn_of(dn)
        if rdn is not None and rdn[0].lower() == attribute.lower():
            return rdn[1]
        key = normalize_dn(dn)
        if key not in self._known:
            entry = self.session.base(dn, [attribute])
            values = raw_values(entry[1], attribute) if entry else []
            self._known[key] = decode_values(attribute, values[:1])[0] if values else None
        return self._known[key]
