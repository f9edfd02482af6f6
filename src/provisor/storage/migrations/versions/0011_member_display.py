"""group members: the display name the client gave a member (RFC 7643 §2.4)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("group_members") as batch_op:
        batch_op.add_column(sa.Column("display", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("group_members") as batch_op:
        batch_op.drop_column("display")
