"""audit log: who acted from where, each tenant's records one hash chain (append-only and
tamper-evident: storage/auditchain.py), the chains' heads, indexes of the audit views' filters

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 13:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from provisor.storage.auditchain import record_hash

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

POLICY = "tenant_isolation"
CHECK = (
    "tenant = current_setting('provisor.tenant', true) "
    "OR current_setting('provisor.tenant', true) = '*'"
)
# On PostgreSQL a trigger keeps the audit log append-only: no UPDATE, and a DELETE only in a
# transaction that said it removes records (the retention purge, a tenant's deletion:
# storage/auditchain.allow_removal). A guard against mistakes and careless tools; the hash
# chain is what shows a change made by whoever can bypass it.
APPEND_ONLY = """
CREATE FUNCTION provisor_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('provisor.audit_removal', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: % of a record refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql
"""
TRIGGER = (
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION provisor_audit_append_only()"
)
INDEXES = {
    "ix_audit_log_tenant_id": ["tenant", "id"],
    "ix_audit_log_tenant_action_id": ["tenant", "action", "id"],
    "ix_audit_log_tenant_actor_id": ["tenant", "actor", "id"],
}


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("seq", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(
            sa.Column("address", sa.String(length=64), server_default="", nullable=False)
        )
        batch.add_column(
            sa.Column("prev_hash", sa.String(length=64), server_default="", nullable=False)
        )
        batch.add_column(sa.Column("hash", sa.String(length=64), server_default="", nullable=False))
    heads = op.create_table(
        "audit_heads",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("anchor_seq", sa.Integer(), nullable=False),
        sa.Column("anchor_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant", name=op.f("pk_audit_heads")),
    )
    for name, columns in INDEXES.items():
        op.create_index(name, "audit_log", columns)
    # The records written before: each tenant's chained in id order.
    bind = op.get_bind()
    log = sa.table(
        "audit_log",
        *(sa.column(name) for name in ("id", "at", "tenant", "actor_kind", "actor")),
        *(sa.column(name) for name in ("request_id", "action", "target", "detail")),
        *(sa.column(name) for name in ("seq", "address", "prev_hash", "hash")),
    )
    chains: dict[str, tuple[int, str]] = {}
    for row in bind.execute(sa.select(log).order_by(log.c.id)).mappings().all():
        seq, previous = chains.get(row["tenant"], (0, ""))
        record = {**row, "seq": seq + 1, "address": "", "prev_hash": previous}
        record["hash"] = record_hash(record)
        bind.execute(
            log.update()
            .where(log.c.id == row["id"])
            .values(seq=record["seq"], prev_hash=previous, hash=record["hash"])
        )
        chains[row["tenant"]] = (record["seq"], record["hash"])
    if chains:
        op.bulk_insert(
            heads,
            [
                {"tenant": k, "seq": s, "hash": h, "anchor_seq": 0, "anchor_hash": ""}
                for k, (s, h) in chains.items()
            ],
        )
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE audit_heads ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE audit_heads FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {POLICY} ON audit_heads USING ({CHECK}) WITH CHECK ({CHECK})")
        op.execute(APPEND_ONLY)
        op.execute(TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION provisor_audit_append_only()")
    for name in INDEXES:
        op.drop_index(name, table_name="audit_log")
    op.drop_table("audit_heads")
    with op.batch_alter_table("audit_log") as batch:
        for column in ("hash", "prev_hash", "address", "seq"):
            batch.drop_column(column)
