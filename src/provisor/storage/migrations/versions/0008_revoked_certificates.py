"""revoked certificates: inbound certificates deleted, refused from then on

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 19:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revoked_certificates",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=1024), nullable=False),
        sa.Column("issuer", sa.String(length=1024), nullable=False),
        sa.Column("serial_number", sa.String(length=64), nullable=False),
        sa.Column("revoked", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_revoked_certificates")),
    )


def downgrade() -> None:
    op.drop_table("revoked_certificates")
