"""substring search: the directory's ``co``, ``sw`` and ``ew`` filters on userName,
emails.value and displayName served by an index, kept by triggers in the transaction that
writes the row (storage/search.py, decision 0031) — on PostgreSQL a B-tree of the values'
trigrams (``search_trigrams``, under row-level security); on SQLite an FTS5 table with the
trigram tokenizer over ``search_values``, a copy of the searched values

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 16:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# PostgreSQL: the trigrams of each searched value in search_trigrams (attribute, trigram,
# owner; a trigram of two e-mails of a user may be there twice), kept by triggers; one index
# (writes pay ~one entry per character of each value), which deletions use too. Not pg_trgm's GIN indexes: under row-level security (forced on
# every table of tenant data) PostgreSQL uses an index only for a leakproof operator, and
# neither LIKE nor any GIN operator is one; the B-tree's equality on text is. A value is
# wrapped in \x02 ... \x03 so that sw and ew of two characters have a trigram too.
# Attributes: 1 userName, 2 displayName (users), 3 emails.value, 4 displayName (groups).
POLICY = "tenant_isolation"
CHECK = (
    "tenant = current_setting('provisor.tenant', true) "
    "OR current_setting('provisor.tenant', true) = '*'"
)
PG_UP = [
    """CREATE TABLE search_trigrams (
        tenant VARCHAR(63) NOT NULL,
        attribute SMALLINT NOT NULL,
        trigram TEXT NOT NULL,
        owner_id VARCHAR(64) NOT NULL
    )""",
    # Not unique: a user's e-mails may share a trigram (no ON CONFLICT on every insert).
    """CREATE INDEX search_trigrams_lookup ON search_trigrams (attribute, trigram, owner_id)
    INCLUDE (tenant)""",
    "ALTER TABLE search_trigrams ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE search_trigrams FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY {POLICY} ON search_trigrams USING ({CHECK}) WITH CHECK ({CHECK})",
    """CREATE FUNCTION provisor_trigrams(value TEXT) RETURNS SETOF TEXT
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT DISTINCT substr(m, i, 3)
        FROM (SELECT chr(2) || value || chr(3) AS m) AS w, generate_series(1, length(m) - 2) AS i
    $$""",
    """CREATE FUNCTION provisor_search_users() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            DELETE FROM search_trigrams WHERE owner_id = OLD.id AND (
                attribute = 1 AND trigram IN (SELECT provisor_trigrams(OLD.user_name_key))
                OR attribute = 2 AND trigram IN (SELECT provisor_trigrams(OLD.display_name_key))
            );
        END IF;
        IF TG_OP <> 'DELETE' THEN
            INSERT INTO search_trigrams (tenant, attribute, trigram, owner_id)
            SELECT NEW.tenant, 1, g, NEW.id FROM provisor_trigrams(NEW.user_name_key) AS g
            UNION ALL
            SELECT NEW.tenant, 2, g, NEW.id FROM provisor_trigrams(NEW.display_name_key) AS g;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION provisor_search_groups() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            DELETE FROM search_trigrams WHERE owner_id = OLD.id AND attribute = 4
                AND trigram IN (SELECT provisor_trigrams(OLD.display_name_key));
        END IF;
        IF TG_OP <> 'DELETE' THEN
            INSERT INTO search_trigrams (tenant, attribute, trigram, owner_id)
            SELECT NEW.tenant, 4, g, NEW.id FROM provisor_trigrams(NEW.display_name_key) AS g;
        END IF;
        RETURN NULL;
    END $$""",
    # Each e-mail row holds one posting per distinct trigram of its value, so two e-mails of a
    # user sharing a trigram hold two. An e-mail leaving takes out one posting of each of its
    # trigrams: the work is that e-mail's own, however many e-mails its user has.
    """CREATE FUNCTION provisor_search_user_emails() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            DELETE FROM search_trigrams WHERE ctid = ANY (ARRAY(
                SELECT DISTINCT ON (trigram) ctid FROM search_trigrams
                WHERE attribute = 3 AND owner_id = OLD.user_id
                    AND trigram IN (SELECT provisor_trigrams(OLD.value_key))
            ));
        END IF;
        IF TG_OP <> 'DELETE' THEN
            INSERT INTO search_trigrams (tenant, attribute, trigram, owner_id)
            SELECT NEW.tenant, 3, g, NEW.user_id FROM provisor_trigrams(NEW.value_key) AS g;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER search_users_insert_delete AFTER INSERT OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION provisor_search_users()""",
    """CREATE TRIGGER search_users_update AFTER UPDATE ON users FOR EACH ROW
    WHEN (OLD.user_name_key IS DISTINCT FROM NEW.user_name_key
        OR OLD.display_name_key IS DISTINCT FROM NEW.display_name_key
        OR OLD.id <> NEW.id OR OLD.tenant <> NEW.tenant)
    EXECUTE FUNCTION provisor_search_users()""",
    """CREATE TRIGGER search_groups_insert_delete AFTER INSERT OR DELETE ON groups
    FOR EACH ROW EXECUTE FUNCTION provisor_search_groups()""",
    """CREATE TRIGGER search_groups_update AFTER UPDATE ON groups FOR EACH ROW
    WHEN (OLD.display_name_key IS DISTINCT FROM NEW.display_name_key
        OR OLD.id <> NEW.id OR OLD.tenant <> NEW.tenant)
    EXECUTE FUNCTION provisor_search_groups()""",
    """CREATE TRIGGER search_user_emails AFTER INSERT OR UPDATE OR DELETE ON user_emails
    FOR EACH ROW EXECUTE FUNCTION provisor_search_user_emails()""",
    # the values already stored
    """INSERT INTO search_trigrams (tenant, attribute, trigram, owner_id)
    SELECT tenant, 1, g, id FROM users, provisor_trigrams(user_name_key) AS g
    UNION ALL SELECT tenant, 2, g, id FROM users, provisor_trigrams(display_name_key) AS g
    UNION ALL SELECT tenant, 4, g, id FROM groups, provisor_trigrams(display_name_key) AS g""",
    """INSERT INTO search_trigrams (tenant, attribute, trigram, owner_id)
    SELECT tenant, 3, g, user_id FROM user_emails, provisor_trigrams(value_key) AS g""",
]
PG_DOWN = [
    "DROP TRIGGER search_user_emails ON user_emails",
    *(f"DROP TRIGGER search_{t}_{e} ON {t}" for t in ("users", "groups") for e in ("insert_delete", "update")),
    *(f"DROP FUNCTION provisor_search_{t}()" for t in ("users", "groups", "user_emails")),
    "DROP FUNCTION provisor_trigrams(TEXT)",
    "DROP TABLE search_trigrams",
]

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
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in PG_UP if postgresql else SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in PG_DOWN:
            op.execute(statement)
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {trigger}")
        op.execute("DROP TABLE search_text")
        op.execute("DROP TABLE search_values")
