"""SQL of technical users (clients) and their secrets."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, or_, select
from sqlalchemy.exc import IntegrityError

from provisor.errors import ConflictError
from provisor.storage import tables as t


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


def insert_client(conn: Connection, client: ClientRow) -> None:
    try:
        conn.execute(
            insert(t.clients).values(
                id=client.id,
                name=client.name,
                description=client.description,
                permissions=" ".join(client.permissions),
                created=client.created,
            )
        )
    except IntegrityError as exc:
        raise ConflictError(f"A client named {client.name!r} already exists.") from exc


def insert_secret(conn: Connection, client_id: str, secret: SecretRow) -> None:
    conn.execute(
        insert(t.client_secrets).values(
            id=secret.id,
            client_id=client_id,
            secret_hash=secret.secret_hash,
            created=secret.created,
            expires=secret.expires,
        )
    )


def list_clients(conn: Connection) -> list[ClientRow]:
    rows = conn.execute(select(t.clients).order_by(t.clients.c.created, t.clients.c.name))
    return [_client(row) for row in rows]


def count_clients(conn: Connection) -> int:
    return len(conn.execute(select(t.clients.c.id).limit(1)).all())


def find_client(conn: Connection, id_or_name: str) -> ClientRow | None:
    row = conn.execute(
        select(t.clients).where(or_(t.clients.c.id == id_or_name, t.clients.c.name == id_or_name))
    ).first()
    return _client(row) if row else None


def secrets_of(conn: Connection, client_id: str) -> list[SecretRow]:
    cs = t.client_secrets
    rows = conn.execute(
        select(cs.c.id, cs.c.secret_hash, cs.c.created, cs.c.expires)
        .where(cs.c.client_id == client_id)
        .order_by(cs.c.created.desc())
    )
    return [
        SecretRow(id=r.id, secret_hash=r.secret_hash, created=r.created, expires=r.expires)
        for r in rows
    ]


def delete_secrets(conn: Connection, client_id: str, keep: set[str] | None = None) -> None:
    cs = t.client_secrets
    stmt = delete(cs).where(cs.c.client_id == client_id)
    if keep:
        stmt = stmt.where(cs.c.id.not_in(keep))
    conn.execute(stmt)


def delete_client(conn: Connection, client_id: str) -> bool:
    conn.execute(delete(t.client_secrets).where(t.client_secrets.c.client_id == client_id))
    return bool(conn.execute(delete(t.clients).where(t.clients.c.id == client_id)).rowcount)
