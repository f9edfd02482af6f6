"""proxy activity: the calls of proxy systems' SCIM APIs (time, system, operation, entity,
status, duration, request id), kept as long as the tenant's job logs; real-time logs name
their entity

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

POLICY = "tenant_isolation"
CHECK = (
    "tenant = current_setting('provisor.tenant', true) "
    "OR current_setting('provisor.tenant', true) = '*'"
)


def upgrade() -> None:
    op.create_table(
        "proxy_activity",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("time", sa.String(length=32), nullable=False),
        sa.Column("system_id", sa.String(length=64), nullable=False),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("endpoint", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=512), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("duration_us", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("caller", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proxy_activity")),
    )
    op.create_index("ix_proxy_activity_time", "proxy_activity", ["tenant", "time"])
    op.create_index("ix_proxy_activity_system", "proxy_activity", ["tenant", "system_id", "time"])
    op.create_index("ix_proxy_activity_entity", "proxy_activity", ["tenant", "entity_id"])
    op.add_column("realtime_logs", sa.Column("entity_name", sa.String(length=255), nullable=True))
    op.create_index("ix_realtime_logs_tenant_entity_name", "realtime_logs", ["tenant", "entity_name"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE proxy_activity ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE proxy_activity FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {POLICY} ON proxy_activity USING ({CHECK}) WITH CHECK ({CHECK})")


def downgrade() -> None:
    op.drop_index("ix_realtime_logs_tenant_entity_name", table_name="realtime_logs")
    with op.batch_alter_table("realtime_logs") as batch:
        batch.drop_column("entity_name")
    op.drop_index("ix_proxy_activity_entity", table_name="proxy_activity")
    op.drop_index("ix_proxy_activity_system", table_name="proxy_activity")
    op.drop_index("ix_proxy_activity_time", table_name="proxy_activity")
    op.drop_table("proxy_activity")
