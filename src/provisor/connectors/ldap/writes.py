"""Creates, updates, deletes and membership changes of the LDAP connectors (blocking).

* ``create`` builds the DN ``<id attribute>=<escaped id>,<path>`` (with ``distinguishedName``
  as the id attribute: the id when it is a DN, else ``<required attribute>=<id>,<path>``), adds
  the configured object classes when the entity has none, and drops empty values.
* ``update`` replaces the attributes given; with ``previous``, only those that changed, the
  members as adds and deletes (in the same modify when there are at most ``BATCH``), and the
  attributes of ``previous`` that are gone are removed, except objectClass, the id, the RDN,
  the required attribute (create-only values of the default transformations), the
  operational attributes every read asks for (``modifyTimestamp``, ``uSNChanged``, ...), and
  passwords (a source that stops sending one does not mean to remove it). When the
  update drops the entry's RDN value, the entry is renamed (modrdn) and the answer carries the
  new id.
* Members are DNs (what the default write transformation builds) or unique names, made into
  ``<ldap.member.uniquename.attribute>=<name>,<ldap.user.path>``. Membership changes go
  ``BATCH`` values per modify with the permissive modify control; values already there (add)
  or not there (delete) are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import ldap  # type: ignore[import-untyped]

from provisor.connectors.base import Entity, InvalidEntity, Role, Written
from provisor.connectors.ldap.client import Session, ValueConflict
from provisor.connectors.ldap.directory import Directory, check_within
from provisor.connectors.ldap.options import DN_ATTRIBUTE, EntityOptions, SSLMode
from provisor.connectors.ldap.values import (
    SECRET,
    attribute_key,
    decode_values,
    encode_values,
    ensure_value,
    escape_dn,
    is_attribute_name,
    is_dn,
    listed,
    normalize_dn,
    raw_values,
    rdn_of,
    replace_rdn,
    unique_dns,
)
from provisor.types import EntityType

BATCH = 100  # member values per modify (a 10k-member group takes ~13 ms per modify of 100)
Change = tuple[int, str, list[bytes] | None]


class Writer:
    """The writes to one LDAP system."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.options = directory.options

    def create(
        self, session: Session, entity_type: str, entity: Entity, entity_id: str | None
    ) -> Written:
        options = self.options.entity(entity_type)
        path = options.require_path()
        attributes = {k: v for k, v in self._attributes(options, entity).items() if v}
        ident = entity_id or self._id_in(options, attributes)
        if not ident:
            raise InvalidEntity(
                f"a new {entity_type} needs an id: no entityIdTargetSystem and no "
                f"{options.id_attribute} value"
            )
        if options.id_is_dn:
            dn = (
                check_within(options, ident)
                if is_dn(ident)
                else f"{options.required_attribute}={escape_dn(ident)},{path}"
            )
        else:
            dn = f"{options.id_attribute}={escape_dn(ident)},{path}"
            ensure_value(attributes, options.id_attribute, ident)
        rdn = rdn_of(dn)
        if rdn is not None:
            ensure_value(attributes, *rdn)
        if attribute_key(attributes, "objectClass") is None:
            attributes["objectClass"] = [c.encode() for c in options.object_classes]
        session.add(dn, attributes)
        new_id = dn if options.id_is_dn else ident
        self.directory.remember(entity_type, new_id, dn)
        shown = {k: decode_values(k, v) for k, v in attributes.items() if k.lower() not in SECRET}
        written: Entity = {"dn": dn, **shown}
        if self.options.role is Role.PROXY and self.options.respond_after_create:
            written = self.directory.get(session, entity_type, new_id) or written
        return Written(new_id, written)

    def update(
        self,
        session: Session,
        entity_type: str,
        entity_id: str,
        entity: Entity,
        previous: Entity | None,
    ) -> Written:
        options = self.options.entity(entity_type)
        attributes = self._attributes(options, entity)
        before = self._attributes(options, previous) if previous is not None else None

        def apply(dn: str) -> Written:
            dn = self._rename_if_needed(session, entity_type, entity_id, dn, attributes)
            changes, add, remove = self._changes(options, dn, attributes, before)
            self._modify(session, dn, changes, add, remove)
            if options.id_is_dn:
                new_id = dn
            else:
                ids = attributes.get(attribute_key(attributes, options.id_attribute) or "", [])
                new_id = ids[0].decode() if ids else entity_id
            self.directory.remember(entity_type, new_id, dn)
            result = None
            if self.options.role is Role.PROXY and self.options.respond_after_update:
                result = self.directory.get(session, entity_type, new_id)
            return Written(new_id, result)

        return self.directory.on_entry(session, entity_type, entity_id, apply)

    def delete(self, session: Session, entity_type: str, entity_id: str) -> None:
        def apply(dn: str) -> None:
            session.delete(dn)
            self.directory.forget(entity_type, entity_id)

        self.directory.on_entry(session, entity_type, entity_id, apply)

    def change_members(
        self, session: Session, group_id: str, add: Sequence[str], remove: Sequence[str]
    ) -> None:
        additions = unique_dns(self.member_dn(v) for v in add)
        removals = unique_dns(self.member_dn(v) for v in remove)

        def apply(dn: str) -> None:
            self._change_members(session, dn, additions, removals)

        self.directory.on_entry(session, EntityType.GROUP, group_id, apply)

    def member_dn(self, member: str) -> str:
        """A member as a DN: DNs as they are, unique names placed under the user path."""
        if is_dn(member):
            return member
        attribute = self.options.member_name_attribute
        if attribute.lower() == DN_ATTRIBUTE.lower():
            raise InvalidEntity(f"member {member!r} is not a DN")
        return f"{attribute}={escape_dn(member)},{self.options.user.require_path()}"

    def _attributes(self, options: EntityOptions, entity: Entity) -> dict[str, list[bytes]]:
        """An entity's attributes as LDAP values (empty lists kept: they mean "none")."""
        attributes: dict[str, list[bytes]] = {}
        member = (
            self.options.member_attribute.lower()
            if options.entity_type is EntityType.GROUP
            else None
        )
        for key, value in entity.items():
            if key.lower() in ("dn", DN_ATTRIBUTE.lower()):
                continue
            if not is_attribute_name(key):
                raise InvalidEntity(f"{key!r} is not an LDAP attribute name")
            if key.lower() == member:
                value = [
                    self.member_dn(v) if isinstance(v, str) else v
                    for v in listed(value)
                    if v is not None and v != ""
                ]
            attributes[key] = encode_values(key, value)
        tls = self.options.ssl_mode is not SSLMode.NONE
        self.directory.dialect.prepare(options.entity_type, attributes, tls)
        return attributes

    def _id_in(self, options: EntityOptions, attributes: dict[str, list[bytes]]) -> str | None:
        attribute = options.required_attribute if options.id_is_dn else options.id_attribute
        values = attributes.get(attribute_key(attributes, attribute) or "", [])
        return values[0].decode() if values else None

    def _rename_if_needed(
        self,
        session: Session,
        entity_type: str,
        entity_id: str,
        dn: str,
        attributes: dict[str, list[bytes]],
    ) -> str:
        """Rename the entry when the update drops its RDN value; its new DN."""
        rdn = rdn_of(dn)
        key = attribute_key(attributes, rdn[0]) if rdn else None
        if rdn is None or key is None or not attributes[key]:
            return dn
        wanted = [v.decode(errors="replace") for v in attributes[key]]
        if any(v.strip().lower() == rdn[1].strip().lower() for v in wanted):
            return dn
        new_rdn, new_dn = replace_rdn(dn, rdn[0], wanted[0])
        session.rename(dn, new_rdn)
        self.directory.forget(entity_type, entity_id)
        return new_dn

    def _changes(
        self,
        options: EntityOptions,
        dn: str,
        attributes: dict[str, list[bytes]],
        before: dict[str, list[bytes]] | None,
    ) -> tuple[list[Change], list[str], list[str]]:
        """The modify of an update, and the member DNs to add and remove apart from it."""
        rdn = rdn_of(dn)
        kept = {"objectclass", options.id_attribute.lower(), options.required_attribute.lower()}
        kept.update(a.lower() for a in self.directory.dialect.read_extras)  # operational
        if rdn is not None:
            kept.add(rdn[0].lower())
        member = (
            self.options.member_attribute.lower()
            if options.entity_type is EntityType.GROUP
            else None
        )
        changes: list[Change] = []
        add: list[str] = []
        remove: list[str] = []
        for key, values in attributes.items():
            old = None
            if before is not None:
                old = before.get(attribute_key(before, key) or "")
            if key.lower() == member and old is not None:
                new_dns = {normalize_dn(v.decode()): v.decode() for v in values}
                old_dns = {normalize_dn(v.decode()): v.decode() for v in old}
                add.extend(v for k, v in new_dns.items() if k not in old_dns)
                remove.extend(v for k, v in old_dns.items() if k not in new_dns)
                continue
            if old is not None and set(old) == set(values):
                continue
            if not values and (key.lower() in kept or key.lower() in SECRET):
                continue
            changes.append((ldap.MOD_REPLACE, key, values or None))
        for key in before or {}:
            gone = attribute_key(attributes, key) is None
            if gone and key.lower() not in kept and key.lower() not in SECRET:
                changes.append((ldap.MOD_REPLACE, key, None))
        return changes, add, remove

    def _modify(
        self, session: Session, dn: str, changes: list[Change], add: list[str], remove: list[str]
    ) -> None:
        """One modify with the changes and, when few, the member changes; else batches."""
        attribute = self.options.member_attribute
        if len(add) + len(remove) <= BATCH:
            members: list[Change] = []
            if add:
                members.append((ldap.MOD_ADD, attribute, [v.encode() for v in add]))
            if remove:
                members.append((ldap.MOD_DELETE, attribute, [v.encode() for v in remove]))
            try:
                session.modify(dn, changes + members, permissive=bool(members))
                return
            except ValueConflict:
                if not members:
                    raise
        session.modify(dn, changes)
        self._change_members(session, dn, add, remove)

    def _change_members(self, session: Session, dn: str, add: list[str], remove: list[str]) -> None:
        """Add and remove member DNs, ``BATCH`` values per modify; values already there (on
        add) or not there (on remove) are left alone."""
        attribute = self.options.member_attribute
        current: set[str] | None = None  # the members, read when the server objects to a batch
        for operation, values in ((ldap.MOD_ADD, add), (ldap.MOD_DELETE, remove)):
            adding = operation == ldap.MOD_ADD
            for start in range(0, len(values), BATCH):
                batch = values[start : start + BATCH]
                try:
                    changes = [(operation, attribute, _encoded(batch))]
                    session.modify(dn, changes, permissive=True)
                except ValueConflict:  # the server ignores the permissive modify control
                    if current is None:
                        current = self._members(session, dn)
                    known = current
                    batch = [v for v in batch if (normalize_dn(v) in known) != adding]
                    self._modify_each(session, dn, operation, batch)
                if current is not None:
                    keys = {normalize_dn(v) for v in batch}
                    current = current | keys if adding else current - keys

    def _members(self, session: Session, dn: str) -> set[str]:
        attribute = self.options.member_attribute
        entry = session.base(dn, [attribute])
        found = decode_values(attribute, raw_values(entry[1], attribute)) if entry else []
        return {normalize_dn(v) for v in found}

    def _modify_each(self, session: Session, dn: str, operation: int, values: list[str]) -> None:
        """One modify for the values, or one per value when the server still objects (its DN
        comparison differs from ours), leaving alone those it objects to."""
        attribute = self.options.member_attribute
        if not values:
            return
        try:
            session.modify(dn, [(operation, attribute, _encoded(values))])
            return
        except ValueConflict:
            if len(values) == 1:
                return
        for value in values:
            try:
                session.modify(dn, [(operation, attribute, _encoded([value]))])
            except ValueConflict:
                pass


def _encoded(values: Iterable[str]) -> list[bytes]:
    return [v.encode() for v in values]
