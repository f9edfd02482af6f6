"""the identity timeline finds a person's job entity logs and real-time logs by id or name

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 10:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_job_entities_tenant_entity_id", "job_entities", ["tenant", "entity_id", "id"]
    )
    op.create_index("ix_job_entities_tenant_name", "job_entities", ["tenant", "name", "id"])
    op.create_index(
        "ix_realtime_logs_tenant_entity", "realtime_logs", ["tenant", "entity_id", "started"]
    )


def downgrade() -> None:
    op.drop_index("ix_realtime_logs_tenant_entity", table_name="realtime_logs")
    op.drop_index("ix_job_entities_tenant_name", table_name="job_entities")
    op.drop_index("ix_job_entities_tenant_entity_id", table_name="job_entities")
