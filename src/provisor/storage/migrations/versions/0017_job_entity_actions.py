"""job entity logs indexed by job and action: a job page's failed or created entities are
found and counted in the index, not by reading every log row of the job

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 10:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_job_entities_job_id_action_tenant"),
        "job_entities",
        ["job_id", "action", "tenant"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_job_entities_job_id_action_tenant"), table_name="job_entities")
