"""tenants: the tenants table, a tenant column on every table of a tenant's data (today's
rows become the ``default`` tenant's), uniqueness per tenant, and on PostgreSQL row-level
security policies keyed on the ``provisor.tenant`` setting

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 07:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

DEFAULT = "default"
# Every table holding a tenant's data, as of this revision (audit_log had its column).
TABLES = (
    "clients",
    "client_secrets",
    "users",
    "user_emails",
    "groups",
    "group_members",
    "unique_values",
    "custom_schemas",
    "counters",
    "systems",
    "system_properties",
    "system_sources",
    "transformation_versions",
    "jobs",
    "job_statistics",
    "job_entities",
    "operational_data",
    "write_intents",
    "source_state",
    "deletion_holds",
    "schedules",
    "tenant_settings",
    "realtime_logs",
    "echoes",
    "certificate_authority",
    "outbound_certificates",
    "outbound_settings",
    "certificate_events",
    "inbound_certificates",
    "revoked_certificates",
)
# Natural keys that were the installation's and are now the tenant's: table -> columns after.
PRIMARY_KEYS = {
    "unique_values": ("tenant", "scope", "value_key"),
    "custom_schemas": ("tenant", "id"),
    "counters": ("tenant", "name"),
    "tenant_settings": ("tenant", "key"),
    "echoes": ("tenant", "endpoint", "entity_type", "entity_id"),
    "certificate_authority": ("tenant", "id"),
    "inbound_certificates": ("tenant", "fingerprint"),
    "revoked_certificates": ("tenant", "fingerprint"),
}
# The name first: an index led by the tenant would tempt SQLite's planner into scanning all a
# tenant's rows for "tenant = ? AND id > ? ORDER BY id" (paging) instead of the id's index.
UNIQUE: dict[str, tuple[str, tuple[str, ...]]] = {  # table -> (old column, new columns)
    "clients": ("name", ("name", "tenant")),
    "users": ("user_name_key", ("user_name_key", "tenant")),
    "systems": ("name_key", ("name_key", "tenant")),
}
POLICY = "tenant_isolation"
# The tenant of the session ('*': provisor's own work over every tenant, and migrations).
CHECK = (
    "tenant = current_setting('provisor.tenant', true) "
    "OR current_setting('provisor.tenant', true) = '*'"
)
POLICY_TABLES = (*TABLES, "audit_log")


def upgrade() -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    tenants = op.create_table(
        "tenants",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("title", sa.String(length=255), server_default="", nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("bundle", sa.String(length=64), nullable=True),
        sa.Column("enabled", sa.Integer(), nullable=False),
        sa.Column("quotas", sa.Text(), server_default="{}", nullable=False),
        sa.Column("created", sa.String(length=32), nullable=False),
        sa.Column("last_modified", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_tenants")),
    )
    op.bulk_insert(
        tenants,
        [
            {
                "name": DEFAULT,
                "title": "Default tenant",
                "kind": "standalone",
                "bundle": None,
                "enabled": 1,
                "quotas": "{}",
                "created": stamp,
                "last_modified": stamp,
            }
        ],
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        # Existing rows are the default tenant's. SQLite keeps the column's default (it can
        # drop one only by copying the table); PostgreSQL drops it, so that a row inserted
        # without a tenant fails rather than landing in the default tenant.
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("tenant", sa.String(length=63), server_default=DEFAULT, nullable=False)
            )
        if postgres:
            op.alter_column(table, "tenant", server_default=None)
    for table, columns in PRIMARY_KEYS.items():
        with op.batch_alter_table(table, recreate="always" if not postgres else "auto") as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", list(columns))
    for table, (column, columns) in UNIQUE.items():
        with op.batch_alter_table(table, recreate="always" if not postgres else "auto") as batch:
            batch.drop_constraint(f"uq_{table}_{column}", type_="unique")
            batch.create_unique_constraint(f"uq_{table}_{'_'.join(columns)}", list(columns))
    if postgres:
        for table in POLICY_TABLES:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            op.execute(f"CREATE POLICY {POLICY} ON {table} USING ({CHECK}) WITH CHECK ({CHECK})")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        for table in POLICY_TABLES:
            op.execute(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
            op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    for table in TABLES:  # only the default tenant's rows fit the schema before
        op.execute(sa.text(f"DELETE FROM {table} WHERE tenant <> :t").bindparams(t=DEFAULT))
    for table, (column, columns) in UNIQUE.items():
        with op.batch_alter_table(table, recreate="always" if not postgres else "auto") as batch:
            batch.drop_constraint(f"uq_{table}_{'_'.join(columns)}", type_="unique")
            batch.create_unique_constraint(f"uq_{table}_{column}", [column])
    for table, columns in PRIMARY_KEYS.items():
        with op.batch_alter_table(table, recreate="always" if not postgres else "auto") as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", list(columns[1:]))
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("tenant")
    op.drop_table("tenants")
