"""an index of jobs by status: the metrics' queue depth counts the queued jobs of every
tenant at each scrape in the index, not by reading every job row

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 13:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_jobs_status"), "jobs", ["status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_jobs_status"), table_name="jobs")
