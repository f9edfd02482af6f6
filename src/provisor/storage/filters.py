"""SCIM filters (RFC 7644 §3.4.2.2) compiled to SQL, and sortBy to an ORDER BY expression.

Filters are parsed by scim2-models; this module turns the syntax tree into one SQLAlchemy
boolean expression, so the database does the filtering. Attributes that have a column of
their own (``userName``, ``externalId``, ``displayName``, ``meta.lastModified``, ...) and
``emails.value`` / group members (side tables) use their indexes; any other attribute is
read from the JSON document. ``co``, ``sw`` and ``ew`` on userName, displayName and
emails.value are served by the substring search's index (:mod:`provisor.storage.search`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scim2_models import ScimFilter
from scim2_models.exceptions import SCIMException
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    false,
    func,
    literal,
    not_,
    or_,
    select,
)

from provisor.scim import schemas as s
from provisor.scim.attributes import Attribute, AttrType
from provisor.scim.errors import InvalidFilterError, InvalidValueError
from provisor.scim.limits import DEFAULT_LIMITS, Limits, check_filter_text, check_filter_tree
from provisor.scim.registry import Resolved, ResourceType, resolve
from provisor.storage import search
from provisor.storage import tables as t
from provisor.storage.jsonsql import JSONSQL
from provisor.timestamps import format_datetime, parse_datetime

_STRINGY = (AttrType.STRING, AttrType.REFERENCE, AttrType.BINARY)
_ORDERING = {CompareOperator.gt, CompareOperator.ge, CompareOperator.lt, CompareOperator.le}
_TEXT_OPS = {CompareOperator.co, CompareOperator.sw, CompareOperator.ew}


def _member_column(member_table: Any, sub_name: str) -> Any:
    """The column of the group_members table that holds a sub-attribute of members."""
    column = {"value": "member_id", "type": "member_type", "display": "display"}.get(sub_name)
    if column is None:
        raise InvalidFilterError(f"Filtering members on {sub_name} is not supported.")
    return member_table.c[column]


def _sub(schema: Any, attr: str, sub: str) -> Attribute:
    found = schema.attribute(attr).sub(sub)
    assert found is not None
    return found  # type: ignore[no-any-return]


# The filters clients send most: `attrPath eq "string"` (userName, externalId, emails.value,
# displayName), and co, sw, ew (searches). Parsed here in microseconds; anything else goes to
# scim2-models' parser.
_SIMPLE = re.compile(
    r"\s*((?:urn:[A-Za-z0-9:._-]+:)?[A-Za-z][\w$-]*(?:\.[A-Za-z$][\w$-]*)?)\s+"
    r"([eE][qQ]|[cC][oO]|[sS][wW]|[eE][wW])\s+"
    r'("(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9A-Fa-f]{4})*")\s*'
)


def parse_filter(text: str, limits: Limits = DEFAULT_LIMITS) -> FilterNode:
    """The syntax tree of a filter within the limits (else InvalidFilterError)."""
    check_filter_text(text, limits)
    node = _parse(text)
    check_filter_tree(node, limits)
    return node


def _parse(text: str) -> FilterNode:
    simple = _SIMPLE.fullmatch(text)
    if simple is not None:
        raw, op, literal_ = simple.groups()
        uri, _, rest = raw.rpartition(":") if raw.lower().startswith("urn:") else ("", "", raw)
        attr, _, sub = rest.partition(".")
        try:
            path = AttrPath(attr=attr, sub_attr=sub or None, uri=uri or None)
            value = json.loads(literal_)
            return Comparison(attr_path=path, op=CompareOperator(op.lower()), value=value)
        except ValueError:
            pass  # let the full parser explain what is wrong
    try:
        return ScimFilter(text).ast
    except (SCIMException, RecursionError) as exc:
        raise InvalidFilterError(f"Invalid filter {text!r}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class _Column:
    """An attribute with a column of its own: the column, whether it holds folded text and
    its column in SQLite's search index (None: not searched by substring)."""

    column: Any
    folded: bool = False
    search: str | None = None


class FilterCompiler:
    """Compiles filters on one resource type (User or Group) for one dialect; ``indexed=False``
    leaves the substring search's index out (a scan: what the tests compare it with)."""

    def __init__(self, rt: ResourceType, dialect: str, *, indexed: bool = True) -> None:
        self.rt = rt
        self.dialect = dialect
        self.indexed = indexed
        self.json = JSONSQL(dialect)
        self.table: Table = t.users if rt.name == "User" else t.groups
        c = self.table.c
        self.columns: dict[str, _Column] = {
            "id": _Column(c.id),
            "externalid": _Column(c.external_id),
            "meta.created": _Column(c.created),
            "meta.lastmodified": _Column(c.last_modified),
        }
        if rt.name == "User":
            self.columns["displayname"] = _Column(
                c.display_name_key, folded=True, search=search.USER_DISPLAY_NAME
            )
            self.columns["username"] = _Column(
                c.user_name_key, folded=True, search=search.USER_NAME
            )
        else:
            self.columns["displayname"] = _Column(
                c.display_name_key, folded=True, search=search.GROUP_DISPLAY_NAME
            )

    # -- filters --------------------------------------------------------------------------

    def compile(self, node: FilterNode) -> ColumnElement[bool]:
        if isinstance(node, LogicalExpr):
            terms = [self.compile(term) for term in node.terms]
            return and_(*terms) if node.op is LogicalOperator.and_ else or_(*terms)
        if isinstance(node, Not):
            return not_(func.coalesce(self.compile(node.expr), false()))
        if isinstance(node, ValuePath):
            return self._value_path(node)
        if isinstance(node, Present | Comparison):
            return self._attribute_test(node)
        raise InvalidFilterError(f"Unsupported filter expression {node}.")

    def _resolve(self, path: AttrPath) -> Resolved:
        return resolve(self.rt, path.uri, path.attr, path.sub_attr, error=InvalidFilterError)

    def _keys(self, res: Resolved) -> tuple[str, ...]:
        if res.schema is None or res.schema is self.rt.schema:
            return (res.attribute.name,)
        return (res.schema.id, res.attribute.name)

    def _attribute_test(self, node: Present | Comparison) -> ColumnElement[bool]:
        res = self._resolve(node.attr_path)
        attr, sub = res.attribute, res.sub
        core = res.schema is None or res.schema is self.rt.schema
        name = attr.name.lower() + (f".{sub.name.lower()}" if sub else "")
        if attr.name == "meta" and sub is not None and sub.name == "resourceType":
            return self._test(literal(self.rt.name), sub, node)
        if core and name in self.columns:
            col = self.columns[name]
            column = col.column
            found = self._searched(
                col.search,
                res.leaf,
                node,
                lambda owners, op, value: and_(
                    self.table.c.id.in_(owners), search.like(column, op, value)
                ),
            )
            if found is not None:
                return found
            return self._test(col.column, res.leaf, node, folded=col.folded)
        if attr.name == "meta":
            raise InvalidFilterError(f"Filtering on {node.attr_path} is not supported.")
        if core and self.rt.name == "User" and attr.name in ("emails", "groups"):
            return self._user_side_table(attr.name, sub, node)
        if core and self.rt.name == "Group" and attr.name == "members":
            return self._members(sub, node)
        if attr.multi_valued:
            if sub is None:
                sub = attr.sub("value")
                if sub is None:
                    raise InvalidFilterError(f"Name a sub-attribute of {attr.name} to filter on.")
            elements = self.json.elements(self.table.c.doc, self._keys(res))
            value = self.json.scalar(elements.c.value, (sub.name,), sub)
            return self._some_element(elements, self._test(value, sub, node), node)
        if attr.is_complex and sub is None:
            raise InvalidFilterError(f"Name a sub-attribute of {attr.name} to filter on.")
        keys = self._keys(res) + ((sub.name,) if sub else ())
        return self._test(self.json.scalar(self.table.c.doc, keys, res.leaf), res.leaf, node)

    def _value_path(self, node: ValuePath) -> ColumnElement[bool]:
        res = self._resolve(node.attr_path)
        attr = res.attribute
        if not (attr.multi_valued and attr.is_complex):
            raise InvalidFilterError(f"{node.attr_path} is not a multi-valued complex attribute.")
        if self.rt.name == "Group" and attr.name == "members" and res.schema is self.rt.schema:
            member = t.group_members.alias("m")
            cond = self._element_filter(node.val_filter, attr, member_table=member)
            return select(literal(1)).where(member.c.group_id == self.table.c.id, cond).exists()
        elements = self.json.elements(self.table.c.doc, self._keys(res))
        cond = self._element_filter(node.val_filter, attr, elements=elements)
        return select(literal(1)).select_from(elements).where(cond).exists()

    def members_filter(self, node: FilterNode) -> ColumnElement[bool]:
        """A value filter on group members (``members[value eq "..."]``) as a condition on
        the group_members table."""
        members_attr = s.CORE_GROUP.attribute("members")
        assert members_attr is not None
        return self._element_filter(node, members_attr, member_table=t.group_members)

    def _element_filter(
        self, node: FilterNode, attr: Attribute, *, elements: Any = None, member_table: Any = None
    ) -> ColumnElement[bool]:
        if isinstance(node, LogicalExpr):
            terms = [
                self._element_filter(x, attr, elements=elements, member_table=member_table)
                for x in node.terms
            ]
            return and_(*terms) if node.op is LogicalOperator.and_ else or_(*terms)
        if isinstance(node, Not):
            inner = self._element_filter(
                node.expr, attr, elements=elements, member_table=member_table
            )
            return not_(func.coalesce(inner, false()))
        if not isinstance(node, Present | Comparison):
            raise InvalidFilterError("Value filters cannot be nested.")
        sub = attr.sub(node.attr_path.attr)
        if sub is None or node.attr_path.sub_attr or node.attr_path.uri:
            raise InvalidFilterError(f"{attr.name} has no sub-attribute {node.attr_path}.")
        if member_table is not None:
            return self._test(_member_column(member_table, sub.name), sub, node)
        value = self.json.scalar(elements.c.value, (sub.name,), sub)
        return self._test(value, sub, node)

    def _user_side_table(
        self, name: str, sub: Attribute | None, node: Present | Comparison
    ) -> ColumnElement[bool]:
        if name == "emails":
            if sub is not None and sub.name != "value":
                elements = self.json.elements(self.table.c.doc, ("emails",))
                value = self.json.scalar(elements.c.value, (sub.name,), sub)
                return self._some_element(elements, self._test(value, sub, node), node)
            emails = t.user_emails
            leaf = _sub(s.CORE_USER, "emails", "value")
            found = self._searched(
                search.USER_EMAIL,
                leaf,
                node,
                lambda owners, op, value: self.table.c.id.in_(
                    select(emails.c.user_id).where(
                        emails.c.user_id.in_(owners), search.like(emails.c.value_key, op, value)
                    )
                ),
            )
            if found is not None:
                return found
            cond = self._test(emails.c.value_key, leaf, node, folded=True)
            return self._some_row(select(emails.c.user_id), cond, node)
        member, group = t.group_members.alias("gm"), t.groups.alias("g")
        sub_name = sub.name if sub else "value"
        leaf = _sub(s.CORE_USER, "groups", sub_name)
        if sub_name == "value":
            cond = self._test(member.c.group_id, leaf, node)
            return self._some_row(select(member.c.member_id), cond, node)
        if sub_name == "display":
            cond = self._test(group.c.display_name_key, leaf, node, folded=True)
            rows = select(member.c.member_id).select_from(
                member.join(group, group.c.id == member.c.group_id)
            )
            return self._some_row(rows, cond, node)
        raise InvalidFilterError(f"Filtering groups on {sub_name} is not supported.")

    def _members(self, sub: Attribute | None, node: Present | Comparison) -> ColumnElement[bool]:
        member = t.group_members.alias("m")
        sub_name = sub.name if sub else "value"
        leaf = _sub(s.CORE_GROUP, "members", sub_name)
        cond = self._test(_member_column(member, sub_name), leaf, node)
        return self._some_row(select(member.c.group_id), cond, node)

    def _searched(
        self,
        column: str | None,
        attr: Attribute,
        node: Present | Comparison,
        recheck: Callable[[Select[Any], CompareOperator, str], ColumnElement[bool]],
    ) -> ColumnElement[bool] | None:
        """``co``, ``sw`` or ``ew`` on a searched attribute (``column`` of the search index)
        through the index: on SQLite the ids it finds (checked there); on PostgreSQL
        ``recheck`` of the candidates it finds. None when the index cannot serve the test
        (another test, a value without trigrams on PostgreSQL, ``sw`` on SQLite: a B-tree
        range of the column serves it)."""
        if (
            column is None
            or not self.indexed
            or not isinstance(node, Comparison)
            or node.op not in _TEXT_OPS
            or node.value is None
            or attr.case_exact
        ):
            return None
        op = node.op
        value = str(self._operand(attr, op, node.value)).lower()
        if self.dialect == "sqlite":
            if op is CompareOperator.sw:
                return None
            return self.table.c.id.in_(search.owners(column, op, value))
        grams = search.trigrams(op, value)
        if not grams:
            return None
        return recheck(search.trigram_owners(column, grams), op, value)

    # A multi-valued attribute matches when one of its values does (RFC 7644 §3.4.2.2);
    # "ne" also matches when it has no value at all, as for a single-valued attribute.

    @staticmethod
    def _negative(node: Present | Comparison) -> bool:
        return (
            isinstance(node, Comparison)
            and node.op is CompareOperator.ne
            and (node.value is not None)
        )

    def _some_row(
        self, owners: Any, cond: ColumnElement[bool], node: Present | Comparison
    ) -> ColumnElement[bool]:
        """For values kept in a side table: ``owners`` selects the owning resource ids."""
        hit = self.table.c.id.in_(owners.where(cond))
        if self._negative(node):
            return or_(hit, self.table.c.id.not_in(owners))
        return hit

    def _some_element(
        self, elements: Any, cond: ColumnElement[bool], node: Present | Comparison
    ) -> ColumnElement[bool]:
        """For values kept in the JSON document: ``elements`` are the array's values."""
        rows = select(literal(1)).select_from(elements)
        hit = rows.where(cond).exists()
        if self._negative(node):
            return or_(hit, ~rows.exists())
        return hit

    # -- one comparison -------------------------------------------------------------------

    def _test(
        self,
        expr: Any,
        attr: Attribute,
        node: Present | Comparison,
        *,
        folded: bool = False,
    ) -> ColumnElement[bool]:
        if isinstance(node, Present):
            present: ColumnElement[bool] = expr.is_not(None)
            if attr.type in _STRINGY:
                present = and_(present, expr != "")
            return present
        op, value = node.op, node.value
        if value is None:  # "eq null" asks for absence, "ne null" for presence
            if op is CompareOperator.eq:
                return expr.is_(None)  # type: ignore[no-any-return]
            if op is CompareOperator.ne:
                return expr.is_not(None)  # type: ignore[no-any-return]
            raise InvalidFilterError(f"{op} cannot compare with null.")
        value = self._operand(attr, op, value)
        if attr.type in _STRINGY and not attr.case_exact:
            value = value.lower()
            if not folded:
                expr = self.json.fold(expr)
        elif attr.type is AttrType.BOOLEAN:
            value = self.json.boolean(value)
        result: ColumnElement[bool]
        match op:
            case CompareOperator.eq:
                result = expr == value
            case CompareOperator.ne:
                result = or_(expr.is_(None), expr != value)
            case CompareOperator.co | CompareOperator.sw | CompareOperator.ew:
                result = search.like(expr, op, value)
            case CompareOperator.gt:
                result = expr > value
            case CompareOperator.ge:
                result = expr >= value
            case CompareOperator.lt:
                result = expr < value
            case CompareOperator.le:
                result = expr <= value
        return result

    @staticmethod
    def _operand(attr: Attribute, op: CompareOperator, value: Any) -> Any:
        kind = attr.type
        where = f"{attr.name} {op}"
        if kind is AttrType.BOOLEAN:
            if op not in (CompareOperator.eq, CompareOperator.ne) or not isinstance(value, bool):
                raise InvalidFilterError(f"{where}: a boolean compares with eq/ne and true/false.")
            return value
        if op in _TEXT_OPS and kind not in _STRINGY:
            raise InvalidFilterError(f"{where}: co, sw and ew apply to strings only.")
        if kind in (AttrType.INTEGER, AttrType.DECIMAL):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidFilterError(f"{where}: compare a number with a number.")
            return value
        if kind is AttrType.DATETIME:
            if not isinstance(value, str):
                raise InvalidFilterError(f"{where}: compare a dateTime with a dateTime string.")
            try:
                return format_datetime(parse_datetime(value))
            except ValueError as exc:
                raise InvalidFilterError(f"{where}: {value!r} is not a dateTime.") from exc
        if not isinstance(value, str):
            raise InvalidFilterError(f"{where}: compare a string with a string.")
        return value

    # -- sorting --------------------------------------------------------------------------

    def sort_key(self, sort_by: str) -> ColumnElement[Any]:
        """The expression to ORDER BY for ``sortBy`` (RFC 7644 §3.4.2.3)."""
        uri, _, rest = (
            sort_by.rpartition(":") if sort_by.lower().startswith("urn:") else ("", "", sort_by)
        )
        attr_name, _, sub_name = rest.partition(".")
        res = resolve(self.rt, uri or None, attr_name, sub_name or None, error=InvalidValueError)
        attr, sub = res.attribute, res.sub
        core = res.schema is None or res.schema is self.rt.schema
        name = attr.name.lower() + (f".{sub.name.lower()}" if sub else "")
        if core and name in self.columns:
            return self.columns[name].column  # type: ignore[no-any-return]
        if attr.multi_valued:
            sub = sub or attr.sub("value")
            if sub is None:
                raise InvalidValueError(f"Cannot sort by {sort_by}.")
            elements = self.json.elements(self.table.c.doc, self._keys(res))
            value = self.json.scalar(elements.c.value, (sub.name,), sub)
            primary = attr.sub("primary")
            query = select(value).select_from(elements)
            if primary is not None:
                flag = self.json.scalar(elements.c.value, ("primary",), primary)
                query = query.order_by(func.coalesce(flag, false()).desc())
            key: ColumnElement[Any] = query.limit(1).scalar_subquery()
        elif attr.is_complex and sub is None:
            raise InvalidValueError(f"Cannot sort by the complex attribute {sort_by}.")
        else:
            keys = self._keys(res) + ((sub.name,) if sub else ())
            key = self.json.scalar(self.table.c.doc, keys, res.leaf)
        leaf = sub or attr
        if leaf.type in _STRINGY and not leaf.case_exact:
            key = self.json.fold(key)
        return key
