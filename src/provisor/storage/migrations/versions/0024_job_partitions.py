"""job partitions: a full read split into key ranges or pages of the source, each run by any
worker as its own task and committed page by page (decision 0032)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

POLICY = "tenant_isolation"
CHECK = (
    "tenant = current_setting('provisor.tenant', true) "
    "OR current_setting('provisor.tenant', true) = '*'"
)


def upgrade() -> None:
    op.create_table(
        "job_partitions",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("bounds", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("read", sa.Integer(), server_default="0", nullable=False),
        sa.Column("newest", sa.Text(), nullable=True),
        sa.Column("source_failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("fatal", sa.Text(), server_default="{}", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_job_partitions_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "job_id", "entity_type", "number", name=op.f("pk_job_partitions")
        ),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE job_partitions ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE job_partitions FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {POLICY} ON job_partitions USING ({CHECK}) WITH CHECK ({CHECK})")


def downgrade() -> None:
    op.drop_table("job_partitions")
