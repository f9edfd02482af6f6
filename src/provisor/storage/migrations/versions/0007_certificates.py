"""certificates: the tenant CA, outbound certificates of systems, inbound certificates

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "certificate_authority",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("certificate", sa.Text(), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("created", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_authority")),
    )
    op.create_table(
        "outbound_certificates",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("system_id", sa.String(length=64), nullable=False),
        sa.Column("certificate", sa.Text(), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("active", sa.Integer(), nullable=False),
        sa.Column("created", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["system_id"],
            ["systems.id"],
            name=op.f("fk_outbound_certificates_system_id_systems"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_outbound_certificates")),
    )
    op.create_index(
        op.f("ix_outbound_certificates_system_id"), "outbound_certificates", ["system_id"]
    )
    op.create_table(
        "outbound_settings",
        sa.Column("system_id", sa.String(length=64), nullable=False),
        sa.Column("auto_regenerate", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["system_id"],
            ["systems.id"],
            name=op.f("fk_outbound_settings_system_id_systems"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("system_id", name=op.f("pk_outbound_settings")),
    )
    op.create_table(
        "certificate_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("system_id", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["system_id"],
            ["systems.id"],
            name=op.f("fk_certificate_events_system_id_systems"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_events")),
        sa.UniqueConstraint(
            "fingerprint", "kind", name=op.f("uq_certificate_events_fingerprint_kind")
        ),
    )
    op.create_index(op.f("ix_certificate_events_system_id"), "certificate_events", ["system_id"])
    op.create_index(op.f("ix_certificate_events_created"), "certificate_events", ["created"])
    op.create_table(
        "inbound_certificates",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("system_id", sa.String(length=64), nullable=True),
        sa.Column("certificate", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(length=1024), nullable=False),
        sa.Column("issuer", sa.String(length=1024), nullable=False),
        sa.Column("generated", sa.Integer(), nullable=False),
        sa.Column("created", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_inbound_certificates_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["system_id"],
            ["systems.id"],
            name=op.f("fk_inbound_certificates_system_id_systems"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_inbound_certificates")),
    )
    op.create_index(
        op.f("ix_inbound_certificates_client_id"), "inbound_certificates", ["client_id"]
    )
    op.create_index(
        op.f("ix_inbound_certificates_system_id"), "inbound_certificates", ["system_id"]
    )
    op.create_index(op.f("ix_inbound_certificates_subject"), "inbound_certificates", ["subject"])


def downgrade() -> None:
    for table in (
        "inbound_certificates",
        "certificate_events",
        "outbound_settings",
        "outbound_certificates",
        "certificate_authority",
    ):
        op.drop_table(table)
