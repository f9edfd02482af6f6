"""job entity logs name the entity and its target id; the job runners beat in the database

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 04:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job_entities", sa.Column("name", sa.Text(), nullable=True))
    op.add_column("job_entities", sa.Column("target_entity_id", sa.Text(), nullable=True))
    op.create_table(
        "job_runners",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("started", sa.String(length=32), nullable=False),
        sa.Column("heartbeat", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_runners")),
    )
    op.create_index(op.f("ix_job_runners_heartbeat"), "job_runners", ["heartbeat"])


def downgrade() -> None:
    op.drop_index(op.f("ix_job_runners_heartbeat"), table_name="job_runners")
    op.drop_table("job_runners")
    with op.batch_alter_table("job_entities") as batch:
        batch.drop_column("target_entity_id")
        batch.drop_column("name")
