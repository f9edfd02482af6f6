"""real-time provisioning: logs and loop prevention

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 11:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "realtime_logs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("source_name", sa.String(length=100), nullable=False),
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=512), nullable=True),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("started", sa.String(length=32), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("caller", sa.String(length=255), nullable=False),
        sa.Column("systems", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_realtime_logs")),
    )
    op.create_index(op.f("ix_realtime_logs_started"), "realtime_logs", ["started"])
    op.create_index(
        "ix_realtime_logs_source_entity", "realtime_logs", ["source_id", "entity_id"]
    )
    op.create_table(
        "echoes",
        sa.Column("endpoint", sa.String(length=64), nullable=False),
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=512), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=True),
        sa.Column("written", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint(
            "endpoint", "entity_type", "entity_id", name=op.f("pk_echoes")
        ),
    )


def downgrade() -> None:
    op.drop_table("echoes")
    op.drop_index("ix_realtime_logs_source_entity", table_name="realtime_logs")
    op.drop_index("ix_realtime_logs_started", table_name="realtime_logs")
    op.drop_table("realtime_logs")
