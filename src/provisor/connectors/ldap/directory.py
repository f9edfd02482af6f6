"""The entity model of the LDAP connectors: reads, ids and the connection test (blocking; the
connector runs each call in a thread). Writes are in ``writes``.

Entities are ``{"dn": dn, "distinguishedName": [dn], attribute: [str, ...]}``. An entity's id
is the first value of ``ldap.attribute.user.id`` (groups: ``ldap.attribute.group.id``), or its
DN when that property is ``distinguishedName``.

* Users read carry ``ldap.attribute.user.groups`` (memberOf): the unique names
  (``ldap.group.uniquename.attribute``) of the groups under ``ldap.group.path`` that list them,
  computed from the groups' member attribute (see ``memberships``), whatever the server has.
* Groups read carry their members' unique names: a member under the group path by the group id
  attribute, any other by ``ldap.member.uniquename.attribute``. The name is the member's RDN
  value when the RDN is that attribute (the entry is not read, so a member whose entry is gone
  still counts), else it is read from the member's entry (left out when that fails).
  ``distinguishedName`` keeps the DNs.
* Reads apply ``ldap.user.filter``/``ldap.group.filter``; get and find do not (they look
  for one entity by a unique value, e.g. to find a conflict before a create).
* With ``ad.group.flatten`` (AD), nested groups are replaced by their members, recursively,
  and users belong to the groups above their groups too.
* DNs of ids are remembered (from reads, creates and lookups), so writes need no lookup; a
  remembered DN that turns out to be gone is looked up again once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import ldap  # type: ignore[import-untyped]

from provisor.connectors.base import (
    BackendError,
    ConnectorError,
    Entity,
    EntityNotFound,
    InvalidEntity,
    InvalidId,
    Role,
)
from provisor.connectors.ldap.client import NO_ATTRIBUTES, Entry, Session
from provisor.connectors.ldap.dialects import Dialect
from provisor.connectors.ldap.memberships import (
    Group,
    GroupIndex,
    Groups,
    flattened_members,
    group_names,
)
from provisor.connectors.ldap.options import DN_ATTRIBUTE, EntityOptions, LDAPOptions
from provisor.connectors.ldap.reading import LookupGroups, MemberNames, Reader
from provisor.connectors.ldap.values import (
    decode_entry,
    decode_values,
    entity_values,
    escape_filter,
    is_attribute_name,
    is_dn,
    is_under,
    normalize_dn,
    parse_dn,
    raw_values,
    split_range,
    unique_names,
)
from provisor.types import EntityType

T = TypeVar("T")
ID_CACHE_SIZE = 100_000


def within(dn: str, base: str) -> bool:
    """Whether ``dn`` names an entry strictly below ``base``, compared RDN by RDN (types and
    values ignoring case), so an escaped ``,`` inside a value cannot fake a parent."""
    inner, outer = parse_dn(dn), parse_dn(base)
    if not inner or not outer or len(inner) <= len(outer):
        return False
    return _rdns(inner[len(inner) - len(outer) :]) == _rdns(outer)


def _rdns(parsed: list[list[tuple[str, str, int]]]) -> list[list[tuple[str, str]]]:
    return [sorted((t.lower(), v.strip().lower()) for t, v, _ in rdn) for rdn in parsed]


def check_within(options: EntityOptions, dn: str) -> str:
    """``dn`` when it lies below the entity type's path; InvalidId otherwise."""
    path = options.require_path()
    if not within(dn, path):
        raise InvalidId(f"{dn!r} is not below {options.entity_type} path {path}")
    return dn


class Directory:
    """Users and groups of one LDAP system, as entities."""

    def __init__(self, options: LDAPOptions, dialect: Dialect) -> None:
        self.options = options
        self.dialect = dialect
        self._dns: dict[tuple[str, str], str] = {}  # (entity type, id) -> DN
        self._group_base = normalize_dn(options.group.path) if options.group.path else None
        self._user_base = normalize_dn(options.user.path) if options.user.path else None

    def session(self) -> Session:
        return Session(self.options)

    # -- reading ----------------------------------------------------------------------------------

    def reader(self, session: Session, entity_type: str, delta: str | None) -> Reader:
        return Reader(self, session, self.options.entity(entity_type), delta)

    def get(self, session: Session, entity_type: str, entity_id: str) -> Entity | None:
        options = self.options.entity(entity_type)
        found = self._lookup(session, options, entity_id, self.read_attributes(options))
        if len(found) > 1:
            raise BackendError(
                f"{len(found)} {entity_type}s have {options.id_attribute}={entity_id} "
                f"under {options.path}"
            )
        if not found:
            return None
        return self.entities(session, options, found)[0]

    def find(self, session: Session, entity_type: str, attribute: str, value: str) -> list[Entity]:
        options = self.options.entity(entity_type)
        attributes = self.read_attributes(options)
        if attribute.lower() in ("dn", DN_ATTRIBUTE.lower()):
            found = self.by_dn(session, options, value, attributes)
        else:
            if not is_attribute_name(attribute):
                raise InvalidEntity(f"{attribute!r} is not an LDAP attribute name")
            assertion = f"({attribute}={escape_filter(value)})"
            found = session.search(
                options.require_path(), self.filter(options, assertion), attributes
            )
        return self.entities(session, options, found)

    def _lookup(
        self, session: Session, options: EntityOptions, entity_id: str, attributes: list[str]
    ) -> list[Entry]:
        if options.id_is_dn:
            return self.by_dn(session, options, entity_id, attributes)
        assertion = f"({options.id_attribute}={escape_filter(entity_id)})"
        return session.search(options.require_path(), self.filter(options, assertion), attributes)

    def by_dn(
        self, session: Session, options: EntityOptions, dn: str, attributes: list[str]
    ) -> list[Entry]:
        """The entry at ``dn`` when it is one of the entity type's (path and filters)."""
        if not is_dn(dn) or not within(dn, options.require_path()):
            return []  # no entity of this system: only entries below its path are
        try:
            return session.search(dn, self.filter(options), attributes, scope=ldap.SCOPE_BASE)
        except EntityNotFound:
            return []

    def entities(
        self,
        session: Session,
        options: EntityOptions,
        entries: Iterable[Entry],
        groups: Groups | None = None,
        names: MemberNames | None = None,
    ) -> list[Entity]:
        """Entries as entities: memberships for users, members' unique names for groups."""
        if options.entity_type is EntityType.USER:
            if groups is None and self.options.group.path:
                groups = LookupGroups(self, session)
        else:
            names = names or MemberNames(self, session)
            if groups is None and self.options.flatten:
                groups = LookupGroups(self, session)
        hidden = self.hidden(options)
        entities = []
        for dn, attributes in entries:
            attributes = self.complete_ranges(session, dn, attributes)
            entity = decode_entry(dn, attributes)
            for key in [k for k in entity if k.lower() in hidden]:
                del entity[key]
            if options.entity_type is EntityType.USER:
                if groups is not None:
                    self._set_groups(entity, dn, groups)
            else:
                assert names is not None
                self._set_members(entity, dn, groups, names)
            if not options.id_is_dn:
                ids = entity_values(entity, options.id_attribute)
                if ids:
                    self.remember(options.entity_type, ids[0], dn)
            entities.append(entity)
        return entities

    def _set_groups(self, entity: Entity, dn: str, groups: Groups) -> None:
        attribute = self.options.groups_attribute
        for key in [k for k in entity if k.lower() == attribute.lower()]:
            del entity[key]
        found = group_names(groups, dn, nested=self.options.flatten)
        if found:
            entity[attribute] = found

    def _set_members(
        self, entity: Entity, dn: str, groups: Groups | None, names: MemberNames
    ) -> None:
        attribute = self.options.member_attribute
        members: list[str] = []
        for key in [k for k in entity if k.lower() == attribute.lower()]:
            members.extend(entity.pop(key))
        if groups is not None and self.options.flatten:
            members = flattened_members(groups, Group(dn, None, tuple(members)))
        resolved = [name for name in map(names.name, members) if name is not None]
        if resolved:
            entity[attribute] = resolved

    def complete_ranges(
        self, session: Session, dn: str, attributes: dict[str, list[bytes]]
    ) -> dict[str, list[bytes]]:
        """Attributes with every value, following AD's ranged retrieval (``member;range=``)."""
        if not any(";range=" in key.lower() for key in attributes):
            return attributes
        complete: dict[str, list[bytes]] = {}
        for key, values in attributes.items():
            ranged = split_range(key)
            if ranged is None:
                complete.setdefault(key, []).extend(values)
                continue
            name, _, end = ranged
            collected = complete.setdefault(name, [])
            collected.extend(values)
            while end is not None:
                entry = session.base(dn, [f"{name};range={end + 1}-*"])
                following = None
                for next_key, next_values in (entry[1] if entry else {}).items():
                    following = split_range(next_key)
                    if following is not None:
                        collected.extend(next_values)
                        break
                end = following[2] if following is not None else None
        return complete

    def read_attributes(self, options: EntityOptions) -> list[str]:
        extras = list(self.dialect.read_extras)
        if options.attributes is None:
            return ["*", *extras]
        wanted = [*options.attributes, "objectClass", *extras]
        if not options.id_is_dn:
            wanted.append(options.id_attribute)
        if options.entity_type is EntityType.USER:
            wanted.extend(self.dialect.user_attributes)
        else:
            wanted.append(self.options.member_attribute)
        return unique_names(wanted)

    def hidden(self, options: EntityOptions) -> frozenset[str]:
        if self.options.role is Role.PROXY:
            return frozenset()
        listed = {a.lower() for a in options.attributes or ()}
        return frozenset(a for a in self.dialect.hidden if a not in listed)

    def filter(self, options: EntityOptions, *more: str, configured: bool = True) -> str:
        """The object classes, ``ldap.*.filter`` (unless not ``configured``) and ``more``."""
        parts = [f"(objectClass={escape_filter(c)})" for c in options.object_classes]
        parts = [*(parts or ["(objectClass=*)"]), options.filter if configured else "", *more]
        parts = [p for p in parts if p]
        return parts[0] if len(parts) == 1 else "(&" + "".join(parts) + ")"

    def group_index(self, session: Session) -> GroupIndex:
        """Every group under the group path (whatever ldap.group.filter says)."""
        options = self.options.group
        attributes = [
            self.options.member_attribute,
            self.options.group_name_attribute,
            *self.dialect.read_extras,
        ]
        size = self.options.flatten_page_size if self.options.flatten else self.options.page_size
        groups = []
        filterstr = self.filter(options, configured=False)
        pages = session.pages(options.require_path(), filterstr, attributes, size)
        for entries, _ in pages:
            for dn, found in entries:
                groups.append(self.group_of(dn, self.complete_ranges(session, dn, found)))
        return GroupIndex.of(groups)

    def group_of(self, dn: str, attributes: dict[str, list[bytes]]) -> Group:
        name_attribute = self.options.group_name_attribute
        if name_attribute.lower() == DN_ATTRIBUTE.lower():
            name: str | None = dn
        else:
            names = raw_values(attributes, name_attribute)
            name = decode_values(name_attribute, names[:1])[0] if names else None
        members = decode_values(
            self.options.member_attribute, raw_values(attributes, self.options.member_attribute)
        )
        stamps = [raw_values(attributes, extra) for extra in self.dialect.read_extras]
        stamp = next((v[0].decode("ascii", "replace") for v in stamps if v), None)
        return Group(dn, name, tuple(members), stamp)

    def in_group_path(self, dn: str) -> bool:
        return self._group_base is not None and is_under(normalize_dn(dn), self._group_base)

    def in_user_path(self, normalized_dn: str) -> bool:
        return self._user_base is not None and is_under(normalized_dn, self._user_base)

    # -- ids --------------------------------------------------------------------------------------

    def on_entry(
        self, session: Session, entity_type: str, entity_id: str, action: Callable[[str], T]
    ) -> T:
        """Run ``action`` on the DN of an entity; once more with a fresh lookup when a
        remembered DN turns out to be gone (renamed or deleted by someone else)."""
        dn, remembered = self._dn(session, entity_type, entity_id)
        try:
            return action(dn)
        except EntityNotFound:
            if not remembered:
                raise
        self.forget(entity_type, entity_id)
        dn, _ = self._dn(session, entity_type, entity_id)
        return action(dn)

    def _dn(self, session: Session, entity_type: str, entity_id: str) -> tuple[str, bool]:
        options = self.options.entity(entity_type)
        if options.id_is_dn:
            if not is_dn(entity_id):
                raise EntityNotFound(f"{entity_id!r} is not a DN, so no {entity_type} id")
            return check_within(options, entity_id), False
        remembered = self._dns.get((entity_type, entity_id))
        if remembered is not None:
            return remembered, True
        found = self._lookup(session, options, entity_id, NO_ATTRIBUTES)
        if not found:
            raise EntityNotFound(
                f"no {entity_type} with {options.id_attribute}={entity_id} under {options.path}"
            )
        if len(found) > 1:
            raise BackendError(
                f"{len(found)} {entity_type}s have {options.id_attribute}={entity_id} "
                f"under {options.path}"
            )
        self.remember(entity_type, entity_id, found[0][0])
        return found[0][0], False

    def forget(self, entity_type: str, entity_id: str) -> None:
        self._dns.pop((entity_type, entity_id), None)

    def remember(self, entity_type: str, entity_id: str, dn: str) -> None:
        if len(self._dns) >= ID_CACHE_SIZE:
            self._dns.clear()
        self._dns[(entity_type, entity_id)] = dn

    # -- checking ---------------------------------------------------------------------------------

    def test(self, session: Session) -> str:
        """Bind, and read the base entries of the user and group paths."""
        who = self.options.who
        readable = []
        for key, path in (
            ("ldap.user.path", self.options.user.path),
            ("ldap.group.path", self.options.group.path),
        ):
            if not path:
                continue
            if session.base(path, NO_ATTRIBUTES) is None:
                raise ConnectorError(
                    f"{key} {path} does not exist on {self.options.url} or {who} cannot read it"
                )
            readable.append(path)
        text = f"Bound as {who} to {self.options.url}"
        if readable:
            verb = "is" if len(readable) == 1 else "are"
            text += f"; {' and '.join(readable)} {verb} readable"
        return text
