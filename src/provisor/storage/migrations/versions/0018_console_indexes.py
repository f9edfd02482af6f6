"""indexes of the console's biggest pages: job entity logs by job and action (a job's failed
or created entities are found and counted in the index, not by reading every log row of the
job); a tenant's real-time logs by time (its newest first read in order: the indexes led by
the tenant made SQLite read and sort every log of the tenant for each page)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 10:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_job_entities_job_id_action_tenant"),
        "job_entities",
        ["job_id", "action", "tenant"],
    )
    op.create_index(
        op.f("ix_realtime_logs_tenant_started"), "realtime_logs", ["tenant", "started"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_realtime_logs_tenant_started"), table_name="realtime_logs")
    op.drop_index(op.f("ix_job_entities_job_id_action_tenant"), table_name="job_entities")
