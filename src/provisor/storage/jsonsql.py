"""Reading inside stored JSON documents with SQL, for SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Numeric, Text, cast, func, literal
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import TableValuedAlias

from provisor.scim.attributes import Attribute, AttrType


class JSONSQL:
    """SQL expressions that look inside a JSON document column, per dialect."""

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"

    @staticmethod
    def _sqlite_path(keys: tuple[str, ...]) -> str:
        return "$" + "".join(f'."{k}"' for k in keys)

    def scalar(self, doc: Any, keys: tuple[str, ...], attr: Attribute) -> ColumnElement[Any]:
        """The value at ``keys``, typed for comparison with values of ``attr``."""
        if not self.pg:
            return func.json_extract(doc, self._sqlite_path(keys))
        raw = func.jsonb_extract_path_text(doc, *[literal(k, Text) for k in keys])
        if attr.type in (AttrType.INTEGER, AttrType.DECIMAL):
            return cast(raw, Numeric)
        if attr.type is AttrType.BOOLEAN:
            return cast(raw, Boolean)
        return raw

    def elements(self, doc: Any, keys: tuple[str, ...]) -> TableValuedAlias:
        """The values of the JSON array at ``keys``, as a table with a ``value`` column."""
        if not self.pg:
            return func.json_each(doc, self._sqlite_path(keys)).table_valued("value").alias()
        array = func.jsonb_extract_path(doc, *[literal(k, Text) for k in keys])
        return func.jsonb_array_elements(array).table_valued("value").alias()

    def has_key(self, doc: Any, key: str) -> ColumnElement[bool]:
        """Whether the document has a top-level ``key``."""
        if not self.pg:
            return func.json_type(doc, self._sqlite_path((key,))).is_not(None)
        return func.jsonb_extract_path(doc, literal(key, Text)).is_not(None)

    def fold(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        """Case-fold a text expression the way Python's str.lower() does."""
        return func.lower(expr) if self.pg else func.casefold(expr)

    def boolean(self, value: bool) -> Any:
        """A boolean as the dialect's JSON extraction yields it (SQLite: 1 or 0)."""
        return value if self.pg else int(value)
