"""procrastinate's tables (PostgreSQL only): the task queue that hands jobs to workers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 11:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from procrastinate.schema import SchemaManager

    exists = bind.exec_driver_sql("SELECT to_regclass('procrastinate_jobs')").scalar()
    if exists is None:
        # The raw connection: the schema's text holds % and : that are no parameters.
        raw = bind.connection.driver_connection
        assert raw is not None
        raw.execute(SchemaManager.get_schema())


def downgrade() -> None:
    pass
