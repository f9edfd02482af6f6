"""administrators: the console's people (administrators, viewers, operators), their sessions,
and each tenant's OpenID Connect provider for console sign-in

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TABLES = ("administrators", "console_sessions", "console_sso")
POLICY = "tenant_isolation"
CHECK = (
    "tenant = current_setting('provisor.tenant', true) "
    "OR current_setting('provisor.tenant', true) = '*'"
)


def upgrade() -> None:
    op.create_table(
        "administrators",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("name_key", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("origin", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.String(length=512), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("totp_secret", sa.Text(), nullable=True),
        sa.Column("totp_pending", sa.Text(), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("created", sa.String(length=32), nullable=False),
        sa.Column("last_login", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_administrators")),
        sa.UniqueConstraint("name_key", "tenant", name=op.f("uq_administrators_name_key_tenant")),
    )
    op.create_table(
        "console_sessions",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("administrator_id", sa.String(length=64), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("created", sa.String(length=32), nullable=False),
        sa.Column("last_seen", sa.String(length=32), nullable=False),
        sa.Column("expires", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["administrator_id"],
            ["administrators.id"],
            name=op.f("fk_console_sessions_administrator_id_administrators"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
    )
    op.create_index(
        op.f("ix_console_sessions_administrator_id"), "console_sessions", ["administrator_id"]
    )
    op.create_table(
        "console_sso",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("client_secret", sa.Text(), nullable=False),
        sa.Column("role_claim", sa.String(length=255), nullable=False),
        sa.Column("administrator_values", sa.Text(), nullable=False),
        sa.Column("viewer_values", sa.Text(), nullable=False),
        sa.Column("scopes", sa.String(length=255), nullable=False),
        sa.Column("updated", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("tenant", name=op.f("pk_console_sso")),
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            op.execute(f"CREATE POLICY {POLICY} ON {table} USING ({CHECK}) WITH CHECK ({CHECK})")


def downgrade() -> None:
    op.drop_table("console_sso")
    op.drop_index(op.f("ix_console_sessions_administrator_id"), table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("administrators")
