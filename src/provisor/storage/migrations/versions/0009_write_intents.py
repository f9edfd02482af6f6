"""write intents: the creates a job is about to send, until its page is committed

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 19:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "write_intents",
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("source_entity_id", sa.String(length=512), nullable=False),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("created", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["systems.id"],
            name=op.f("fk_write_intents_source_id_systems"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["systems.id"],
            name=op.f("fk_write_intents_target_id_systems"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "source_id",
            "target_id",
            "entity_type",
            "source_entity_id",
            name=op.f("pk_write_intents"),
        ),
    )


def downgrade() -> None:
    op.drop_table("write_intents")
