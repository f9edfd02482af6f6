"""substring search: the directory's ``co``, ``sw`` and ``ew`` filters on userName,
emails.value and displayName served by an index — pg_trgm GIN indexes on PostgreSQL; on SQLite
an FTS5 table with the trigram tokenizer over ``search_values``, a copy of the searched values
kept by triggers in the transaction that writes the row (storage/search.py)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 16:20:00
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

from provisor.errors import ConfigError

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# PostgreSQL: index name -> (table, folded column).
TRIGRAM_INDEXES = {
    "search_trgm_users_user_name_key": ("users", "user_name_key"),
    "search_trgm_users_display_name_key": ("users", "display_name_key"),
    "search_trgm_user_emails_value_key": ("user_emails", "value_key"),
    "search_trgm_groups_display_name_key": ("groups", "display_name_key"),
}

# SQLite: one row of search_values per searched value (its column says which attribute it
# is), owned by a user or group of one tenant; search_text indexes them (external content:
# the text is stored once, in search_values, whose INTEGER PRIMARY KEY is stable).
COLUMNS = ("user_name", "user_display_name", "user_email", "group_display_name")
_NEW = ", ".join(f"new.{c}" for c in COLUMNS)
_OLD = ", ".join(f"old.{c}" for c in COLUMNS)
_USER = "user_name IS NOT NULL OR user_display_name IS NOT NULL"
SQLITE_UP = [
    """CREATE TABLE search_values (
        id INTEGER PRIMARY KEY,
        tenant VARCHAR(63) NOT NULL,
        owner_id VARCHAR(64) NOT NULL,
        user_name TEXT,
        user_display_name TEXT,
        user_email TEXT,
        group_display_name TEXT
    )""",
    "CREATE INDEX search_values_owner_id ON search_values (owner_id)",
    f"""CREATE VIRTUAL TABLE search_text USING fts5(
        {", ".join(COLUMNS)}, content='search_values', content_rowid='id', tokenize='trigram'
    )""",
    f"""CREATE TRIGGER search_values_insert AFTER INSERT ON search_values BEGIN
        INSERT INTO search_text (rowid, {", ".join(COLUMNS)}) VALUES (new.id, {_NEW});
    END""",
    f"""CREATE TRIGGER search_values_delete AFTER DELETE ON search_values BEGIN
        INSERT INTO search_text (search_text, rowid, {", ".join(COLUMNS)})
        VALUES ('delete', old.id, {_OLD});
    END""",
    # users: userName and displayName
    """CREATE TRIGGER search_users_insert AFTER INSERT ON users BEGIN
        INSERT INTO search_values (tenant, owner_id, user_name)
        VALUES (new.tenant, new.id, new.user_name_key);
        INSERT INTO search_values (tenant, owner_id, user_display_name)
        SELECT new.tenant, new.id, new.display_name_key WHERE new.display_name_key IS NOT NULL;
    END""",
    f"""CREATE TRIGGER search_users_update AFTER UPDATE OF
        tenant, id, user_name_key, display_name_key ON users
    WHEN old.user_name_key IS NOT new.user_name_key
        OR old.display_name_key IS NOT new.display_name_key
        OR old.id IS NOT new.id OR old.tenant IS NOT new.tenant
    BEGIN
        DELETE FROM search_values WHERE owner_id = old.id AND ({_USER});
        INSERT INTO search_values (tenant, owner_id, user_name)
        VALUES (new.tenant, new.id, new.user_name_key);
        INSERT INTO search_values (tenant, owner_id, user_display_name)
        SELECT new.tenant, new.id, new.display_name_key WHERE new.display_name_key IS NOT NULL;
    END""",
    """CREATE TRIGGER search_users_delete AFTER DELETE ON users BEGIN
        DELETE FROM search_values WHERE owner_id = old.id AND group_display_name IS NULL;
    END""",
    # user_emails: emails.value
    """CREATE TRIGGER search_user_emails_insert AFTER INSERT ON user_emails BEGIN
        INSERT INTO search_values (tenant, owner_id, user_email)
        VALUES (new.tenant, new.user_id, new.value_key);
    END""",
    """CREATE TRIGGER search_user_emails_update AFTER UPDATE ON user_emails BEGIN
        DELETE FROM search_values WHERE owner_id = old.user_id AND user_email = old.value_key;
        INSERT INTO search_values (tenant, owner_id, user_email)
        VALUES (new.tenant, new.user_id, new.value_key);
    END""",
    """CREATE TRIGGER search_user_emails_delete AFTER DELETE ON user_emails BEGIN
        DELETE FROM search_values WHERE owner_id = old.user_id AND user_email = old.value_key;
    END""",
    # groups: displayName
    """CREATE TRIGGER search_groups_insert AFTER INSERT ON groups BEGIN
        INSERT INTO search_values (tenant, owner_id, group_display_name)
        VALUES (new.tenant, new.id, new.display_name_key);
    END""",
    """CREATE TRIGGER search_groups_update AFTER UPDATE OF tenant, id, display_name_key ON groups
    WHEN old.display_name_key IS NOT new.display_name_key
        OR old.id IS NOT new.id OR old.tenant IS NOT new.tenant
    BEGIN
        DELETE FROM search_values WHERE owner_id = old.id AND group_display_name IS NOT NULL;
        INSERT INTO search_values (tenant, owner_id, group_display_name)
        VALUES (new.tenant, new.id, new.display_name_key);
    END""",
    """CREATE TRIGGER search_groups_delete AFTER DELETE ON groups BEGIN
        DELETE FROM search_values WHERE owner_id = old.id AND group_display_name IS NOT NULL;
    END""",
    # the values already stored
    """INSERT INTO search_values (tenant, owner_id, user_name)
        SELECT tenant, id, user_name_key FROM users""",
    """INSERT INTO search_values (tenant, owner_id, user_display_name)
        SELECT tenant, id, display_name_key FROM users WHERE display_name_key IS NOT NULL""",
    """INSERT INTO search_values (tenant, owner_id, user_email)
        SELECT tenant, user_id, value_key FROM user_emails""",
    """INSERT INTO search_values (tenant, owner_id, group_display_name)
        SELECT tenant, id, display_name_key FROM groups""",
]
SQLITE_TRIGGERS = (
    "search_values_insert",
    "search_values_delete",
    *(f"search_{table}_{event}" for table in ("users", "user_emails", "groups") for event in ("insert", "update", "delete")),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _require_pg_trgm()
        for name, (table, column) in TRIGRAM_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON {table} USING gin ({column} gin_trgm_ops)")
    else:
        for statement in SQLITE_UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX {name}")
        # pg_trgm stays: other databases' objects may use it, and it costs nothing unused.
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {trigger}")
        op.execute("DROP TABLE search_text")
        op.execute("DROP TABLE search_values")


def _require_pg_trgm() -> None:
    """Create the pg_trgm extension unless it is there: a trusted extension, which the
    database's owner (or a role with CREATE on it) may create; else a ConfigError saying what
    the operator must do."""
    bind = op.get_bind()
    if bind.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).first():
        return
    available = bind.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    ).first()
    allowed = bind.execute(
        text("SELECT has_database_privilege(current_database(), 'CREATE')")
    ).scalar()
    if not available or not allowed:
        database = bind.execute(text("SELECT current_database()")).scalar()
        reason = (
            "is not installed on the server (it ships with PostgreSQL's contrib package)"
            if not available
            else "cannot be created by this role (it needs CREATE on the database)"
        )
        raise ConfigError(
            f"provisor's substring search needs the PostgreSQL extension pg_trgm, which {reason}. "
            f'Ask a superuser to run: CREATE EXTENSION pg_trgm; in the database "{database}" '
            "(or make provisor's role the database's owner), then start provisor again."
        )
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
