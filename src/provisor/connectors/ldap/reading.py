"""Reading users and groups: paged reads, group lookups and members' unique names."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import ldap  # type: ignore[import-untyped]

from provisor.connectors.base import EntityNotFound, Page
from provisor.connectors.ldap.client import Entry, Session
from provisor.connectors.ldap.dialects import Tracker
from provisor.connectors.ldap.memberships import Group, GroupIndex
from provisor.connectors.ldap.options import DN_ATTRIBUTE, EntityOptions
from provisor.connectors.ldap.values import (
    decode_values,
    escape_filter,
    normalize_dn,
    raw_values,
    rdn_of,
)

if TYPE_CHECKING:
    from provisor.connectors.ldap.directory import Directory


class Reader:
    """One read of users or groups, page by page."""

    def __init__(
        self, directory: Directory, session: Session, options: EntityOptions, delta: str | None
    ) -> None:
        self.directory = directory
        self.session = session
        self.options = options
        self.delta = delta
        self._pages: Iterator[tuple[list[Entry], bool]] | None = None
        self._tracker: Tracker | None = None
        self._groups: GroupIndex | None = None
        self._names: MemberNames | None = None

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
        return Page(entities, self._tracker.token() if last else None), last

    def _start(self) -> Iterator[tuple[list[Entry], bool]]:
        directory, options, session = self.directory, self.options, self.session
        path = options.require_path()  # before anything is asked of the server
        more = [directory.dialect.delta_filter(self.delta)] if self.delta else []
        self._tracker = directory.dialect.tracker(self.delta, self._root)
        needs_index = (
            options.entity_type == "user" and directory.options.group.path
        ) or directory.options.flatten
        if needs_index:
            self._groups = directory.group_index(session)
        if options.entity_type == "group":
            self._names = MemberNames(directory, session)
        return session.pages(
            path,
            directory.filter(options, *more),
            directory.read_attributes(options),
            directory.options.page_size,
        )

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
