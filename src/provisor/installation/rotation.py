"""Re-encrypting everything the master key protects under a new master key.

Crash-safe and resumable: the database records the new key's check value first (nodes then
refuse to start until the rotation ends); each batch of rows is re-encrypted in its own
transaction, decrypting with either key (a row already under the new key is re-encrypted
under it again), so a rotation stopped anywhere is finished by running it again with the same
new key; the check value becomes the new key's in the last transaction. Until then the old
key's check value stays, and until the first batch the data is the old key's alone.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from cryptography.fernet import InvalidToken, MultiFernet
from sqlalchemy import Column, ColumnElement, and_, select, tuple_, update

from provisor.errors import ConfigError, InputError, MasterKeyError
from provisor.installation import store
from provisor.installation.keys import (
    CHECK,
    ENCRYPTED,
    NEXT,
    Encrypted,
    check_value,
    decrypts,
    fernet,
    maintenance,
    sample,
)
from provisor.storage.database import Database

BATCH = 200  # rows re-encrypted per transaction

Progress = Callable[[Encrypted, int], None]  # after each batch: the column, rows so far


def rotation_done(db: Database, new: bytes) -> bool:
    """Whether the database's check value is already ``new``'s (a rotation ended)."""
    with db.read(maintenance()) as tx:
        stored, rotating = store.value(tx, CHECK), store.value(tx, NEXT)
    return rotating is None and stored is not None and hmac.compare_digest(stored, check_value(new))


def rotate(
    db: Database, old: bytes, new: bytes, *, batch: int = BATCH, progress: Progress | None = None
) -> dict[str, int]:
    """Re-encrypt every column of :data:`ENCRYPTED` from ``old`` to ``new``; the rows per
    column. ``old`` must be the database's key (or, on a database without a check value,
    decrypt what is stored)."""
    if hmac.compare_digest(old, new):
        raise InputError("The new master key is the current one.")
    _begin(db, old, new)
    counts: dict[str, int] = {}
    for column in ENCRYPTED:
        counts[column.name] = _column(db, column, old, new, batch, progress)
    with db.write(maintenance()) as tx:
        store.put(tx, CHECK, check_value(new))
        store.remove(tx, NEXT)
    return counts


def _begin(db: Database, old: bytes, new: bytes) -> None:
    """Record the rotation (the next key's check value), once the current key is known good."""
    with db.write(maintenance()) as tx:
        stored, rotating = store.value(tx, CHECK), store.value(tx, NEXT)
        if stored is None:
            found = sample(tx)
            if found is not None and not decrypts(old, *found):
                raise MasterKeyError(
                    f"The current master key cannot decrypt {found[0].name}: it is not the "
                    "database's."
                )
            store.put(tx, CHECK, check_value(old))
        elif not hmac.compare_digest(stored, check_value(old)):
            raise MasterKeyError("The current master key is not the database's.")
        if rotating is not None and not hmac.compare_digest(rotating, check_value(new)):
            raise ConfigError(
                "Another rotation, to another new key, is under way: finish it with its key "
                "(the same --new-key-file, or the data folder's secret.key.new)."
            )
        store.put(tx, NEXT, check_value(new))


def _column(
    db: Database, column: Encrypted, old: bytes, new: bytes, batch: int, progress: Progress | None
) -> int:
    table = column.table
    keys = list(table.primary_key.columns)
    value = table.c[column.column]
    cipher = MultiFernet([fernet(new, column.purpose), fernet(old, column.purpose)])
    last: tuple[object, ...] | None = None
    done = 0
    while True:
        query = select(*keys, value).where(*column.where()).order_by(*keys).limit(batch)
        if last is not None:
            query = query.where(_after(keys, last))
        with db.write(maintenance()) as tx:
            rows = tx.execute(tx.scoped(query, table)).all()
            for row in rows:
                key, token = tuple(row)[: len(keys)], row[-1]
                try:
                    rotated = cipher.rotate(str(token).encode("ascii")).decode("ascii")
                except (InvalidToken, ValueError) as exc:
                    raise MasterKeyError(
                        f"A value of {column.name} decrypts with neither key: it was not "
                        "encrypted with this installation's master key."
                    ) from exc
                match = and_(*(k == v for k, v in zip(keys, key, strict=True)))
                tx.execute(tx.scoped(update(table).where(match).values({value: rotated}), table))
            if rows:
                last = tuple(rows[-1])[: len(keys)]
        done += len(rows)
        if progress is not None and rows:
            progress(column, done)
        if len(rows) < batch:
            return done


def _after(keys: list[Column[Any]], last: tuple[object, ...]) -> ColumnElement[bool]:
    if len(keys) == 1:
        return keys[0] > last[0]
    return tuple_(*keys) > tuple_(*last)
