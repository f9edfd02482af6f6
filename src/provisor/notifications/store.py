"""The SQL of notifications: subscriptions, the outbox of deliveries and their attempts, the
runs of failed jobs (through ``Transaction.scoped`` / ``tenant_values``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from provisor.notifications.model import Attempt, Channel, Delivery, Status, Subscription, Topic
from provisor.notifications.rules import Streak
from provisor.storage import tables as t
from provisor.storage.database import Transaction

_subs = t.notification_subscriptions
_out = t.notification_deliveries
_tries = t.notification_attempts
_state = t.job_notification_state


# -- subscriptions ---------------------------------------------------------------------------


def insert_subscription(tx: Transaction, values: dict[str, Any]) -> None:
    tx.execute(insert(_subs).values(**tx.tenant_values(_subs, values)))


def _subscription(row: Any, names: dict[str, str]) -> Subscription:
    return Subscription(
        id=row.id,
        topic=Topic(row.topic),
        system_id=row.system_id,
        system_name=names.get(row.system_id) if row.system_id else None,
        channel=Channel(row.channel),
        name=row.name,
        address=row.address,
        created=row.created,
        created_by=row.created_by,
        has_secret=row.secret is not None,
    )


def _names(tx: Transaction, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    s = t.systems
    query = select(s.c.id, s.c.name).where(s.c.id.in_(sorted(ids)))
    return {row.id: row.name for row in tx.execute(tx.scoped(query, s))}


def subscriptions(
    tx: Transaction, *, topic: Topic | None = None, system_id: str | None = None
) -> list[Subscription]:
    query = select(_subs).order_by(_subs.c.created, _subs.c.id)
    if topic is not None:
        query = query.where(_subs.c.topic == topic.value)
    if system_id is not None:
        query = query.where(_subs.c.system_id == system_id)
    rows = list(tx.execute(tx.scoped(query, _subs)))
    names = _names(tx, {r.system_id for r in rows if r.system_id})
    return [_subscription(r, names) for r in rows]


def subscription_row(tx: Transaction, subscription_id: str) -> Any:
    query = select(_subs).where(_subs.c.id == subscription_id)
    return tx.execute(tx.scoped(query, _subs)).first()


def subscription(tx: Transaction, subscription_id: str) -> Subscription | None:
    row = subscription_row(tx, subscription_id)
    if row is None:
        return None
    return _subscription(row, _names(tx, {row.system_id} if row.system_id else set()))


def delete_subscription(tx: Transaction, subscription_id: str) -> bool:
    statement = delete(_subs).where(_subs.c.id == subscription_id)
    return bool(tx.execute(tx.scoped(statement, _subs)).rowcount)


def count_subscriptions(tx: Transaction) -> int:
    query = select(func.count()).select_from(_subs)
    return int(tx.execute(tx.scoped(query, _subs)).scalar_one())


def subscribers(tx: Transaction, topic: Topic, system_id: str | None = None) -> list[Any]:
    """The subscription rows told of ``topic`` (of ``system_id``: its own, and for
    certificates those of every system)."""
    query = select(_subs.c.id, _subs.c.created).where(_subs.c.topic == topic.value)
    if topic is Topic.JOB:
        query = query.where(_subs.c.system_id == system_id)
    elif topic is Topic.CERTIFICATE:
        query = query.where(or_(_subs.c.system_id.is_(None), _subs.c.system_id == system_id))
    return list(tx.execute(tx.scoped(query, _subs)))


# -- the outbox ------------------------------------------------------------------------------


def enqueue(
    tx: Transaction,
    *,
    key: str,
    subscription_id: str,
    event: str,
    subject: str,
    payload: str,
    created: str,
) -> bool:
    """One message into the outbox, unless one with ``key`` is there (then False)."""
    values = tx.tenant_values(
        _out,
        {
            "key": key[:255],
            "subscription_id": subscription_id,
            "event": event,
            "subject": subject,
            "payload": payload,
            "status": Status.PENDING.value,
            "attempts": 0,
            "next_attempt": created,
            "created": created,
        },
    )
    dialect = postgresql if tx.conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(_out).values(**values)
    done = tx.execute(statement.on_conflict_do_nothing(index_elements=["tenant", "key"]))
    return bool(done.rowcount)


def due(tx: Transaction, moment: str, limit: int) -> list[Any]:
    """Pending deliveries whose time has come and that no loop is sending, oldest first."""
    o = _out.c
    query = (
        select(o.id, o.tenant, o.claimed_until)
        .where(
            o.status == Status.PENDING.value,
            o.next_attempt <= moment,
            or_(o.claimed_until.is_(None), o.claimed_until < moment),
        )
        .order_by(o.next_attempt, o.id)
        .limit(limit)
    )
    return list(tx.execute(tx.scoped(query, _out)))


def claim(tx: Transaction, delivery_id: int, seen: str | None, until: str) -> bool:
    """Take a delivery for sending until ``until``, unless another loop took it since it was
    seen with the claim ``seen``."""
    o = _out.c
    taken = o.claimed_until.is_(None) if seen is None else o.claimed_until == seen
    statement = update(_out).where(o.id == delivery_id, taken).values(claimed_until=until)
    return bool(tx.execute(tx.scoped(statement, _out)).rowcount)


def purge(tx: Transaction, before: str, limit: int) -> int:
    """Forget (at most ``limit``) deliveries done with (delivered or given up) created before
    ``before``, with their attempts."""
    o = _out.c
    ended = select(o.id).where(o.status != Status.PENDING.value, o.created < before).limit(limit)
    ids = list(tx.execute(tx.scoped(ended, _out)).scalars())
    if ids:
        gone = _tries.c.delivery_id.in_(ids)
        tx.execute(tx.scoped(delete(_tries).where(gone), _tries))
        tx.execute(tx.scoped(delete(_out).where(o.id.in_(ids)), _out))
    return len(ids)


def delivery_id(tx: Transaction, key: str) -> int:
    query = select(_out.c.id).where(_out.c.key == key)
    return int(tx.execute(tx.scoped(query, _out)).scalar_one())


def delivery_row(tx: Transaction, delivery_id: int) -> Any:
    query = select(_out).where(_out.c.id == delivery_id)
    return tx.execute(tx.scoped(query, _out)).first()


def record_attempt(
    tx: Transaction,
    delivery_id: int,
    *,
    at: str,
    channel: str,
    error: str | None,
    status: Status,
    attempts: int,
    next_attempt: str | None,
) -> None:
    """An attempt and what it leaves the delivery with, in one go."""
    tx.execute(
        insert(_tries).values(
            **tx.tenant_values(
                _tries,
                {
                    "delivery_id": delivery_id,
                    "at": at,
                    "channel": channel,
                    "status": "error" if error else "delivered",
                    "error": error,
                },
            )
        )
    )
    changes: dict[str, Any] = {
        "status": status.value,
        "attempts": attempts,
        "next_attempt": next_attempt,
        "claimed_until": None,
    }
    if error:
        changes["last_error"] = error
    else:
        changes["delivered"] = at
    statement = update(_out).where(_out.c.id == delivery_id).values(**changes)
    tx.execute(tx.scoped(statement, _out))


def deliveries(
    tx: Transaction,
    *,
    status: Status | None = None,
    subscription_id: str | None = None,
    ids: Sequence[int] | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Delivery], int]:
    """Deliveries, newest first, with their attempts; and how many there are."""
    o = _out.c
    query = select(_out, _subs.c.channel, _subs.c.address).join(
        _subs, _subs.c.id == o.subscription_id
    )
    counting = select(func.count()).select_from(_out)
    conditions = []
    if status is not None:
        conditions.append(o.status == status.value)
    if subscription_id is not None:
        conditions.append(o.subscription_id == subscription_id)
    if ids is not None:
        conditions.append(o.id.in_(list(ids)))
    if conditions:
        query = query.where(*conditions)
        counting = counting.where(*conditions)
    query = query.order_by(o.id.desc()).offset(offset).limit(limit)
    rows = list(tx.execute(tx.scoped(query, _out)))
    total = int(tx.execute(tx.scoped(counting, _out)).scalar_one())
    tried: dict[int, list[Attempt]] = {r.id: [] for r in rows}
    if rows:
        a = _tries.c
        attempts = select(_tries).where(a.delivery_id.in_(list(tried))).order_by(a.id)
        for row in tx.execute(tx.scoped(attempts, _tries)):
            tried[row.delivery_id].append(
                Attempt(at=row.at, channel=row.channel, status=row.status, error=row.error)
            )
    found = [
        Delivery(
            id=r.id,
            subscription_id=r.subscription_id,
            event=r.event,
            subject=r.subject,
            status=Status(r.status),
            attempts=r.attempts,
            next_attempt=r.next_attempt if r.status == Status.PENDING.value else None,
            created=r.created,
            delivered=r.delivered,
            last_error=r.last_error,
            channel=r.channel,
            recipient=r.address,
            tried=tried[r.id],
        )
        for r in rows
    ]
    return found, total


# -- runs of failed jobs ---------------------------------------------------------------------


def streak(tx: Transaction, source_id: str) -> Streak:
    query = select(_state.c.failures, _state.c.notified).where(_state.c.source_id == source_id)
    row = tx.execute(tx.scoped(query, _state)).first()
    return Streak() if row is None else Streak(row.failures, bool(row.notified))


def save_streak(tx: Transaction, source_id: str, value: Streak) -> None:
    values = tx.tenant_values(
        _state,
        {"source_id": source_id, "failures": value.failures, "notified": int(value.notified)},
    )
    dialect = postgresql if tx.conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(_state).values(**values)
    tx.execute(
        statement.on_conflict_do_update(
            index_elements=["source_id"],
            set_={"failures": value.failures, "notified": int(value.notified)},
        )
    )


# -- certificate events ----------------------------------------------------------------------


def certificate_events(tx: Transaction, since: str) -> list[Any]:
    """The certificate events recorded since ``since`` (of every tenant for ``ANY_TENANT``)."""
    ce, s = t.certificate_events, t.systems
    query = (
        select(ce, s.c.name.label("system_name"))
        .join(s, s.c.id == ce.c.system_id)
        .where(ce.c.created >= since)
        .order_by(ce.c.id)
    )
    return list(tx.execute(tx.scoped(query, ce)))


def certificate_subscriptions(tx: Transaction) -> list[Any]:
    query = select(_subs.c.id, _subs.c.tenant, _subs.c.system_id, _subs.c.created).where(
        _subs.c.topic == Topic.CERTIFICATE.value
    )
    return list(tx.execute(tx.scoped(query, _subs)))
