"""SQL of administrators, their console sessions and the tenant's single sign-on settings.

Every function takes the caller's transaction: selects, updates and deletes go through
``tx.scoped``, inserts through ``tx.tenant_values``.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from provisor.admins.model import Administrator, Role, SsoSettings, values_json
from provisor.errors import ConflictError
from provisor.storage import tables as t
from provisor.storage.database import Transaction

A = t.administrators
S = t.console_sessions
SSO = t.console_sso


def administrator(row: Any) -> Administrator:
    return Administrator(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        origin=row.origin,
        has_password=row.password_hash is not None,
        totp_enabled=row.totp_secret is not None,
        created=row.created,
        last_login=row.last_login,
    )


def insert_administrator(tx: Transaction, values: dict[str, Any]) -> None:
    try:
        tx.execute(insert(A).values(**tx.tenant_values(A, values)))
    except IntegrityError as exc:
        raise ConflictError(f"An administrator named {values['name']!r} already exists.") from exc


def find(tx: Transaction, name_key: str) -> Any:
    return tx.execute(tx.scoped(select(A).where(A.c.name_key == name_key), A)).first()


def find_by_id(tx: Transaction, admin_id: str) -> Any:
    return tx.execute(tx.scoped(select(A).where(A.c.id == admin_id), A)).first()


def find_by_subject(tx: Transaction, subject: str) -> Any:
    return tx.execute(tx.scoped(select(A).where(A.c.subject == subject), A)).first()


def page(tx: Transaction, *, after: str, count: int, search: str) -> list[Any]:
    stmt = select(A).where(A.c.name_key > after).order_by(A.c.name_key).limit(count)
    if search:
        stmt = stmt.where(A.c.name_key.contains(search, autoescape=True))
    return list(tx.execute(tx.scoped(stmt, A)))


def count_role(tx: Transaction, role: Role) -> int:
    stmt = select(func.count()).select_from(A).where(A.c.role == role.value)
    return int(tx.execute(tx.scoped(stmt, A)).scalar_one())


def count(tx: Transaction) -> int:
    return int(tx.execute(tx.scoped(select(func.count()).select_from(A), A)).scalar_one())


def change(tx: Transaction, admin_id: str, **values: Any) -> None:
    tx.execute(tx.scoped(update(A).where(A.c.id == admin_id).values(**values), A))


def remove(tx: Transaction, admin_id: str) -> None:
    tx.execute(tx.scoped(delete(S).where(S.c.administrator_id == admin_id), S))
    tx.execute(tx.scoped(delete(A).where(A.c.id == admin_id), A))


# -- sessions -----------------------------------------------------------------------------------


def insert_session(tx: Transaction, values: dict[str, Any]) -> None:
    tx.execute(insert(S).values(**tx.tenant_values(S, values)))


def session(tx: Transaction, session_id: str) -> Any:
    """The session and its administrator's columns (the session's own as ``session_*``)."""
    stmt = (
        select(
            S.c.id.label("session_id"),
            S.c.csrf,
            S.c.method,
            S.c.created.label("session_created"),
            S.c.last_seen,
            S.c.expires,
            A,
        )
        .join(A, A.c.id == S.c.administrator_id)
        .where(S.c.id == session_id)
    )
    return tx.execute(tx.scoped(stmt, S)).first()


def touch_session(tx: Transaction, session_id: str, moment: str) -> None:
    tx.execute(tx.scoped(update(S).where(S.c.id == session_id).values(last_seen=moment), S))


def change_session(tx: Transaction, session_id: str, **values: Any) -> None:
    tx.execute(tx.scoped(update(S).where(S.c.id == session_id).values(**values), S))


def delete_session(tx: Transaction, session_id: str) -> None:
    tx.execute(tx.scoped(delete(S).where(S.c.id == session_id), S))


def delete_sessions_of(tx: Transaction, admin_id: str) -> int:
    found = tx.execute(tx.scoped(delete(S).where(S.c.administrator_id == admin_id), S))
    return int(found.rowcount or 0)


def delete_expired_sessions(tx: Transaction, moment: str, idle_before: str) -> int:
    stmt = delete(S).where((S.c.expires < moment) | (S.c.last_seen < idle_before))
    return int(tx.execute(tx.scoped(stmt, S)).rowcount or 0)


# -- single sign-on -----------------------------------------------------------------------------


def sso(tx: Transaction, decrypt: Any) -> SsoSettings | None:
    row = tx.execute(tx.scoped(select(SSO), SSO)).first()
    if row is None:
        return None
    return SsoSettings(
        label=row.label,
        issuer=row.issuer,
        client_id=row.client_id,
        client_secret=decrypt(row.client_secret),
        role_claim=row.role_claim,
        administrator_values=tuple(json.loads(row.administrator_values)),
        viewer_values=tuple(json.loads(row.viewer_values)),
        scopes=row.scopes,
        updated=row.updated,
    )


def put_sso(tx: Transaction, settings: SsoSettings, encrypted_secret: str) -> None:
    tx.execute(tx.scoped(delete(SSO), SSO))
    values = {
        "label": settings.label,
        "issuer": settings.issuer,
        "client_id": settings.client_id,
        "client_secret": encrypted_secret,
        "role_claim": settings.role_claim,
        "administrator_values": values_json(settings.administrator_values),
        "viewer_values": values_json(settings.viewer_values),
        "scopes": settings.scopes,
        "updated": settings.updated,
    }
    tx.execute(insert(SSO).values(**tx.tenant_values(SSO, values)))


def delete_sso(tx: Transaction) -> bool:
    return bool(tx.execute(tx.scoped(delete(SSO), SSO)).rowcount)
