"""The SQL of the ``installation`` table: named values of the installation, one row each."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from provisor.storage import tables as t
from provisor.storage.database import Transaction
from provisor.timestamps import now


def value(tx: Transaction, name: str) -> str | None:
    c = t.installation.c
    found = tx.execute(tx.scoped(select(c.value).where(c.name == name), t.installation)).first()
    return None if found is None else str(found.value)


def put(tx: Transaction, name: str, content: str) -> None:
    """Set ``name`` to ``content`` (insert or replace)."""
    dialect = postgresql if tx.conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(t.installation).values(name=name, value=content, updated=now())
    tx.execute(
        statement.on_conflict_do_update(
            index_elements=["name"],
            set_={"value": statement.excluded.value, "updated": statement.excluded.updated},
        )
    )


def put_first(tx: Transaction, name: str, content: str) -> None:
    """Set ``name`` to ``content`` unless it has a value (another node's, written first)."""
    dialect = postgresql if tx.conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(t.installation).values(name=name, value=content, updated=now())
    tx.execute(statement.on_conflict_do_nothing(index_elements=["name"]))


def remove(tx: Transaction, name: str) -> None:
    c = t.installation.c
    tx.execute(tx.scoped(delete(t.installation).where(c.name == name), t.installation))
