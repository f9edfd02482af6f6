"""The audit log's hash chains: one per tenant. Each record holds its place in the chain
(``seq``), the previous record's hash and its own: SHA-256 over the canonical encoding of its
fields (JSON, keys sorted, no whitespace) and the previous hash. Appending locks the tenant's
head row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's writers take turns already), so
concurrent writers keep one chain. The retention purge deletes a chain's oldest records and
keeps the last deleted one's place and hash as the head's anchor: the chain still verifies from
there. Changing this encoding would break every stored chain: it is fixed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from provisor.storage import tables as t
from provisor.text import storable

FIELDS = (
    "seq",
    "at",
    "tenant",
    "actor_kind",
    "actor",
    "address",
    "request_id",
    "action",
    "target",
    "detail",
    "prev_hash",
)
"""What a record's hash covers (its id is the database's, not part of the chain)."""


def record_hash(record: Mapping[Any, Any]) -> str:
    """The SHA-256 (hex) of a record's canonical encoding, its previous hash included."""
    canonical = {name: record[name] for name in FIELDS}
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _head(conn: Connection, tenant: str) -> Any:
    """The tenant's head row, locked until the transaction ends (made on first use)."""
    heads = t.audit_heads
    query = (
        select(heads.c.seq, heads.c.hash, heads.c.anchor_seq, heads.c.anchor_hash)
        .where(heads.c.tenant == tenant)
        .with_for_update()
    )
    found = conn.execute(query).first()
    if found is not None:
        return found
    maker = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        maker(heads)
        .values(tenant=tenant, seq=0, hash="", anchor_seq=0, anchor_hash="")
        .on_conflict_do_nothing()
    )
    return conn.execute(query).one()


def append(conn: Connection, values: Mapping[str, Any]) -> dict[str, Any]:
    """Append a record (``values``: every field of :data:`FIELDS` but ``seq`` and
    ``prev_hash``) to its tenant's chain, in the caller's transaction; the record written."""
    head = _head(conn, values["tenant"])
    record = {k: storable(v) if isinstance(v, str) else v for k, v in values.items()}
    record.update(seq=head.seq + 1, prev_hash=head.hash)
    record["hash"] = record_hash(record)
    conn.execute(insert(t.audit_log).values(record))
    conn.execute(
        update(t.audit_heads)
        .where(t.audit_heads.c.tenant == values["tenant"])
        .values(seq=record["seq"], hash=record["hash"])
    )
    return record


@dataclass(frozen=True, slots=True)
class Verdict:
    """What checking a tenant's chain found: the records checked, and the first broken one
    (its id and sequence number, and why) or none."""

    tenant: str
    checked: int
    broken_id: int | None = None
    broken_seq: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_id is None and not self.reason

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "ok": self.ok,
            "checked": self.checked,
            "brokenId": self.broken_id,
            "brokenSeq": self.broken_seq,
            "reason": self.reason,
        }


def check(
    tenant: str, records: Iterable[Mapping[Any, Any]], head: Mapping[Any, Any] | None
) -> Verdict:
    """Check a tenant's ``records`` (in id order) against each other and its ``head``: every
    hash recomputed, every link to the previous record, the places without a gap, from the
    purge's anchor to the head."""
    seq = int(head["anchor_seq"]) if head else 0
    previous = str(head["anchor_hash"]) if head else ""
    checked = 0
    for record in records:
        checked += 1
        rid, place = int(record["id"]), int(record["seq"])
        if record["tenant"] != tenant:
            return Verdict(tenant, checked, rid, place, "the record names another tenant")
        if place != seq + 1:
            why = f"its place is {place}, the chain's next is {seq + 1}: records are missing"
            return Verdict(tenant, checked, rid, place, why)
        if record["prev_hash"] != previous:
            why = "it does not link to the previous record (one was changed or removed)"
            return Verdict(tenant, checked, rid, place, why)
        if record_hash(record) != record["hash"]:
            return Verdict(tenant, checked, rid, place, "its content does not match its hash")
        seq, previous = place, str(record["hash"])
    if head is not None and (int(head["seq"]) != seq or str(head["hash"]) != previous):
        why = (
            f"the chain's head is record {head['seq']} but the last record is {seq}: "
            "the newest records were removed or changed"
        )
        return Verdict(tenant, checked, None, int(head["seq"]), why)
    return Verdict(tenant, checked)


def verify(conn: Connection, tenant: str, batch: int = 1000) -> Verdict:
    """Check the chain of ``tenant`` as stored (read in pages of ``batch``)."""
    heads, log = t.audit_heads, t.audit_log
    found = conn.execute(select(heads).where(heads.c.tenant == tenant)).first()
    head = found._mapping if found is not None else None

    def records() -> Iterable[Mapping[Any, Any]]:
        after = 0
        while True:
            rows = conn.execute(
                select(log)
                .where(log.c.tenant == tenant, log.c.id > after)
                .order_by(log.c.id)
                .limit(batch)
            ).all()
            for row in rows:
                yield row._mapping
            if len(rows) < batch:
                return
            after = rows[-1].id

    return check(tenant, records(), head)


def allow_removal(conn: Connection) -> None:
    """Let this transaction delete audit records (PostgreSQL's trigger refuses it otherwise):
    the retention purge and a tenant's deletion only."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT set_config('provisor.audit_removal', 'on', true)"))


def purge(conn: Connection, tenant: str, before: str) -> int:
    """Delete the tenant's records older than ``before`` (a timestamp), in the caller's
    transaction, keeping the last deleted one's place and hash as the chain's anchor; the
    number deleted. The newest record is always kept (the head must point at one)."""
    log = t.audit_log
    head = _head(conn, tenant)
    last = conn.execute(
        select(func.max(log.c.seq)).where(
            log.c.tenant == tenant, log.c.at < before, log.c.seq < head.seq
        )
    ).scalar()
    if not last:
        return 0
    anchor = conn.execute(
        select(log.c.hash).where(log.c.tenant == tenant, log.c.seq == last)
    ).scalar_one()
    allow_removal(conn)
    deleted = conn.execute(delete(log).where(log.c.tenant == tenant, log.c.seq <= last)).rowcount
    conn.execute(
        update(t.audit_heads)
        .where(t.audit_heads.c.tenant == tenant)
        .values(anchor_seq=last, anchor_hash=anchor)
    )
    return int(deleted or 0)


def chained_tenants(conn: Connection) -> list[str]:
    """The tenants with an audit chain (visible to the connection)."""
    return list(conn.execute(select(t.audit_heads.c.tenant).order_by("tenant")).scalars())
