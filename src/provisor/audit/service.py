"""The AuditService: a tenant's audit log read newest first with filters and an id cursor,
exported oldest first (bounded), its hash chain verified, its old records purged by the
retention (the chain kept verifiable), and the sign-in events adapters record before there is
a signed-in actor (console sign-ins, token issuance, failed authentication).

Reading needs ``view`` (read-only administration reads every part of the admin API; the
records hold no secret) or, in the installation's scope, ``operator``. The records are the
ones ``Transaction.audit`` writes in the same commit as each change; nothing here changes a
record.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Select, select

from provisor.context import ANY_TENANT, Actor, ActorKind, Context, Permission, requires
from provisor.errors import InputError
from provisor.storage import auditchain
from provisor.storage import tables as t
from provisor.storage.database import Database
from provisor.timestamps import format_datetime

MAX_PAGE = 500
DEFAULT_PAGE = 50
EXPORT_MAX = 100_000  # records in one export: narrow the time range for more
EXPORT_BATCH = 1000
SIGNIN_FAILURE = "administrator.signin.failure"
TOKEN_ISSUED = "client.token"
AUTHENTICATION_FAILURE = "client.authentication.failure"


@dataclass(frozen=True, slots=True, kw_only=True)
class Filters:
    """What an audit view shows: records from ``since`` (inclusive) to ``until`` (exclusive,
    ISO 8601 timestamps), of one ``actor``, whose action starts with ``action``, on one
    ``target``; empty: any."""

    since: str = ""
    until: str = ""
    actor: str = ""
    action: str = ""
    target: str = ""

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value:
                object.__setattr__(self, name, _timestamp(name, value))
        for name in ("actor", "action", "target"):
            if len(getattr(self, name)) > 255:
                raise InputError(f"The {name} filter is longer than 255 characters.")

    def apply(self, query: Select[Any]) -> Select[Any]:
        log = t.audit_log.c
        if self.since:
            query = query.where(log.at >= self.since)
        if self.until:
            query = query.where(log.at < self.until)
        if self.actor:
            query = query.where(log.actor == self.actor)
        if self.action:
            # a prefix: "administrator." finds every administrator's action
            escaped = self.action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(log.action.like(f"{escaped}%", escape="\\"))
        if self.target:
            query = query.where(log.target == self.target)
        return query


def _timestamp(name: str, value: str) -> str:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{name} {value[:40]!r} is not a time: use ISO 8601, e.g. 2026-12-05T10:00:00Z."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_datetime(moment.astimezone(UTC))


def record(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A stored record as the APIs show it."""
    try:
        detail = orjson.loads(row["detail"])
    except orjson.JSONDecodeError:
        detail = row["detail"]
    return {
        "id": row["id"],
        "seq": row["seq"],
        "at": row["at"],
        "tenant": row["tenant"],
        "actorKind": row["actor_kind"],
        "actor": row["actor"],
        "address": row["address"],
        "requestId": row["request_id"],
        "action": row["action"],
        "target": row["target"],
        "detail": detail,
        "prevHash": row["prev_hash"],
        "hash": row["hash"],
    }


class AuditService:
    """Reading, exporting, verifying and purging the audit log; recording sign-in events."""

    def __init__(self, db: Database, *, retention_days: int = 365) -> None:
        self.db = db
        self.retention_days = retention_days

    @requires(Permission.VIEW, Permission.ADMIN, Permission.OPERATOR)
    def listing(
        self,
        ctx: Context,
        filters: Filters,
        *,
        before: int | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """The records of the call's tenant matching ``filters``, newest first, older than
        the record ``before`` (an id: the cursor), at most ``limit``; and the cursor of the
        next page (None: the last page)."""
        if not 1 <= limit <= MAX_PAGE:
            raise InputError(f"limit must be between 1 and {MAX_PAGE}.")
        log = t.audit_log
        query = filters.apply(select(log)).order_by(log.c.id.desc()).limit(limit + 1)
        if before is not None:
            query = query.where(log.c.id < before)
        with self.db.read(ctx) as tx:
            rows = tx.execute(tx.scoped(query, log)).mappings().all()
        found = [record(row) for row in rows[:limit]]
        return found, (found[-1]["id"] if len(rows) > limit else None)

    @requires(Permission.VIEW, Permission.ADMIN, Permission.OPERATOR)
    def export(
        self, ctx: Context, filters: Filters, *, limit: int = EXPORT_MAX
    ) -> Iterator[dict[str, Any]]:
        """The records of the call's tenant matching ``filters``, oldest first, at most
        ``limit`` (read in batches, one short read transaction each: a generator to stream)."""
        if not 1 <= limit <= EXPORT_MAX:
            raise InputError(f"limit must be between 1 and {EXPORT_MAX}.")
        return self._export(ctx, filters, limit)

    def _export(self, ctx: Context, filters: Filters, limit: int) -> Iterator[dict[str, Any]]:
        log = t.audit_log
        after, left = 0, limit
        while left > 0:
            batch = min(EXPORT_BATCH, left)
            query = filters.apply(select(log)).where(log.c.id > after).order_by(log.c.id)
            with self.db.read(ctx) as tx:
                rows = tx.execute(tx.scoped(query.limit(batch), log)).mappings().all()
            for row in rows:
                yield record(row)
            if len(rows) < batch:
                return
            after, left = rows[-1]["id"], left - len(rows)

    @requires(Permission.VIEW, Permission.ADMIN, Permission.OPERATOR)
    def verify(self, ctx: Context) -> auditchain.Verdict:
        """Check the hash chain of the call's tenant: the first broken record, if any."""
        with self.db.read(ctx) as tx:
            return auditchain.verify(tx.conn, ctx.tenant)

    def verify_all(self, ctx: Context) -> list[auditchain.Verdict]:
        """Check every tenant's chain (the installation's included): the local operator's
        ``provisor audit verify``, in a context of every tenant."""
        ctx.require(Permission.OPERATOR, action="verify every tenant's audit log")
        with self.db.read(ctx.in_tenant(ANY_TENANT)) as tx:
            tenants = auditchain.chained_tenants(tx.conn)
            return [auditchain.verify(tx.conn, tenant) for tenant in tenants]

    def purge(self, ctx: Context, *, moment: datetime | None = None) -> dict[str, int]:
        """Delete every tenant's records older than the retention (maintenance; 0 days: keep
        them all), each purge recorded at the end of its chain; the records deleted per
        tenant."""
        ctx.require(Permission.OPERATOR, action="purge the audit log")
        if self.retention_days <= 0:
            return {}
        cutoff = format_datetime((moment or datetime.now(UTC)) - timedelta(self.retention_days))
        with self.db.read(ctx.in_tenant(ANY_TENANT)) as tx:
            tenants = auditchain.chained_tenants(tx.conn)
        purged: dict[str, int] = {}
        for tenant in tenants:
            with self.db.write(ctx.in_tenant(tenant)) as tx:
                deleted = auditchain.purge(tx.conn, tenant, cutoff)
                if deleted:
                    detail = {"deleted": deleted, "before": cutoff, "days": self.retention_days}
                    tx.audit("audit.purge", tenant, detail)
            if deleted:
                purged[tenant] = deleted
        return purged

    def signin_event(
        self,
        tenant: str,
        actor: Actor,
        action: str,
        detail: Mapping[str, Any],
        *,
        address: str,
        request_id: str,
    ) -> None:
        """Record a sign-in event (a failed console sign-in, a token issued, a failed
        authentication on the APIs) for ``actor`` as claimed: adapters call it before there
        is an authenticated caller, and only for attempts the failure budget admitted."""
        ctx = Context(actor, tenant, request_id, address)
        with self.db.write(ctx) as tx:
            tx.audit(action, actor.name, detail)


def claimed(kind: ActorKind, name: str) -> Actor:
    """The actor a sign-in names (not proven): no permission."""
    return Actor(kind, name[:255], frozenset())
