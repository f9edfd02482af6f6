"""SQL of technical users (clients) and their secrets.

Every function takes the caller's transaction (``Database.read(ctx)``/``write(ctx)``): selects
and deletes go through ``tx.scoped``, inserts through ``tx.tenant_values``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from provisor.errors import ConflictError
from provisor.storage import tables as t
from provisor.storage.database import Transaction


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientRow:
    id: str
    name: str
    description: str
    permissions: tuple[str, ...]
    created: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretRow:
    id: str
    secret_hash: str
    created: str
    expires: str | None


def _client(row: object) -> ClientRow:
    return ClientRow(
        id=row.id,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        description=row.description,  # type: ignore[attr-defined]
        permissions=tuple(row.permissions.split()),  # type: ignore[attr-defined]
        created=row.created,  # type: ignore[attr-defined]
    )


def insert_client(tx: Transaction, client: ClientRow) -> None:
    row = {
        "id": client.id,
        "name": client.name,
        "description": client.description,
        "permissions": " ".join(client.permissions),
        "created": client.created,
    }
    try:
        tx.execute(insert(t.clients).values(**tx.tenant_values(t.clients, row)))
    except IntegrityError as exc:
        raise ConflictError(f"A client named {client.name!r} already exists.") from exc


def update_client(
    tx: Transaction, client_id: str, *, permissions: tuple[str, ...], description: str
) -> None:
    c = t.clients
    values = {"permissions": " ".join(permissions), "description": description}
    tx.execute(tx.scoped(update(c).where(c.c.id == client_id), c).values(**values))


def insert_secret(tx: Transaction, client_id: str, secret: SecretRow) -> None:
    row = {
        "id": secret.id,
        "client_id": client_id,
        "secret_hash": secret.secret_hash,
        "created": secret.created,
        "expires": secret.expires,
    }
    tx.execute(insert(t.client_secrets).values(**tx.tenant_values(t.client_secrets, row)))


def list_clients(tx: Transaction) -> list[ClientRow]:
    stmt = select(t.clients).order_by(t.clients.c.created, t.clients.c.name)
    return [_client(row) for row in tx.execute(tx.scoped(stmt, t.clients))]


def page_clients(
    tx: Transaction, *, search: str, offset: int, limit: int
) -> tuple[list[ClientRow], int]:
    """A page of clients by name (those whose name holds ``search``, any case) and how many
    there are in all."""
    c = t.clients
    wanted = select(c)
    if search:
        wanted = wanted.where(func.lower(c.c.name).contains(search.lower(), autoescape=True))
    wanted = tx.scoped(wanted, c)
    total = int(tx.execute(select(func.count()).select_from(wanted.subquery())).scalar_one())
    stmt = wanted.order_by(c.c.name, c.c.id).offset(offset).limit(limit)
    return [_client(row) for row in tx.execute(stmt)], total


def count_clients(tx: Transaction) -> int:
    return len(tx.execute(tx.scoped(select(t.clients.c.id), t.clients).limit(1)).all())


def find_client(tx: Transaction, id_or_name: str) -> ClientRow | None:
    c = t.clients
    stmt = select(c).where(or_(c.c.id == id_or_name, c.c.name == id_or_name))
    row = tx.execute(tx.scoped(stmt, c)).first()
    return _client(row) if row else None


def secrets_of(tx: Transaction, client_id: str) -> list[SecretRow]:
    cs = t.client_secrets
    stmt = (
        select(cs.c.id, cs.c.secret_hash, cs.c.created, cs.c.expires)
        .where(cs.c.client_id == client_id)
        .order_by(cs.c.created.desc())
    )
    rows = tx.execute(tx.scoped(stmt, cs))
    return [
        SecretRow(id=r.id, secret_hash=r.secret_hash, created=r.created, expires=r.expires)
        for r in rows
    ]


def delete_secrets(tx: Transaction, client_id: str, keep: set[str] | None = None) -> list[str]:
    """Delete a client's secrets but those in ``keep``; the ids of those deleted."""
    cs = t.client_secrets
    stmt = delete(cs).where(cs.c.client_id == client_id)
    if keep:
        stmt = stmt.where(cs.c.id.not_in(keep))
    return sorted(tx.execute(tx.scoped(stmt, cs).returning(cs.c.id)).scalars())


def delete_client(tx: Transaction, client_id: str) -> bool:
    cs, c = t.client_secrets, t.clients
    tx.execute(tx.scoped(delete(cs).where(cs.c.client_id == client_id), cs))
    return bool(tx.execute(tx.scoped(delete(c).where(c.c.id == client_id), c)).rowcount)
