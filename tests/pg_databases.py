"""The test workers' PostgreSQL databases: copies of the migrated template, emptied between tests
and used again.

Creating a database from the template and dropping it costs PostgreSQL a copy of the template
and a checkpoint per test (0.3 to 3 s on a loaded machine: the suite's largest single cost). A
database given back is emptied instead: the other sessions on it are ended, each table is
emptied (TRUNCATE for the few large ones, DELETE for the rest, with triggers and foreign keys
off for the transaction), the template's rows and sequence positions are put back, and it is
renamed (what a test left running that connects again finds no database). A database
whose structure a test changed (a table, column, index, constraint, trigger and whether it is
enabled, policy, function, grant, owner, database setting...) is not reused: it is dropped, as
is one whose emptying fails.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

# Everything a test could change that a later test would see, but the rows: compared with the
# template's before a database is used again.
_USER_SCHEMAS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' "
    "AND n.nspname NOT LIKE 'pg_temp%'"
)
_STRUCTURE = f"""
SELECT md5(string_agg(part, E'\\n' ORDER BY part)) FROM (
    SELECT format('schema %s %s', n.nspname, n.nspowner::regrole) AS part
    FROM pg_namespace AS n WHERE {_USER_SCHEMAS}
    UNION ALL
    SELECT format('relation %s %s %s %s %s %s %s', c.oid::regclass, c.relkind, c.relowner::regrole,
        c.relrowsecurity, c.relforcerowsecurity, c.relacl, c.reloptions)
    FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE {_USER_SCHEMAS}
    UNION ALL
    SELECT format('column %s %s %s %s %s %s', c.oid::regclass, a.attname,
        format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attgenerated,
        pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped AND {_USER_SCHEMAS}
    UNION ALL
    SELECT format('index %s', pg_get_indexdef(i.indexrelid))
    FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE {_USER_SCHEMAS}
    UNION ALL
    SELECT format('constraint %s %s %s', o.conrelid::regclass, o.conname,
        pg_get_constraintdef(o.oid))
    FROM pg_constraint AS o JOIN pg_namespace AS n ON n.oid = o.connamespace WHERE {_USER_SCHEMAS}
    UNION ALL
    SELECT format('trigger %s %s %s %s', t.tgrelid::regclass, t.tgname, t.tgenabled,
        pg_get_triggerdef(t.oid))
    FROM pg_trigger AS t WHERE NOT t.tgisinternal
    UNION ALL
    SELECT format('policy %s %s %s %s %s', p.polrelid::regclass, p.polname, p.polcmd,
        pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
    FROM pg_policy AS p
    UNION ALL
    SELECT format('function %s %s %s %s', p.oid::regprocedure, p.proowner::regrole,
        md5(p.prosrc), p.proacl)
    FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace WHERE {_USER_SCHEMAS}
    UNION ALL
    SELECT format('type %s %s', t.oid::regtype, e.enumlabel)
    FROM pg_enum AS e JOIN pg_type AS t ON t.oid = e.enumtypid
    UNION ALL
    SELECT format('extension %s %s', x.extname, x.extversion) FROM pg_extension AS x
    UNION ALL
    SELECT format('setting %s %s', s.setrole, s.setconfig) FROM pg_db_role_setting AS s
    WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
) AS parts
"""
_TABLES = f"""
SELECT n.nspname, c.relname, pg_relation_size(c.oid)
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND {_USER_SCHEMAS}
"""
_SEQUENCES = f"""
SELECT n.nspname, c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind = 'S' AND {_USER_SCHEMAS}
"""
_OTHERS = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
"""
_ON = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
LARGE = 256 * 1024  # bytes: a table this large is truncated (DELETE would leave it as large)


class Databases:
    """One test worker's databases made from ``template``: :meth:`take` one, :meth:`give_back`
    it after the test, :meth:`close` at the end of the session."""

    def __init__(
        self,
        template: str,
        connect: Callable[[str], psycopg.Connection[Any]],
        create: Callable[[str, str], None],
        drop: Callable[[str], None],
        new_name: Callable[[], str],
    ) -> None:
        self.template = template
        self._connect, self._create, self._drop, self._new_name = connect, create, drop, new_name
        self._free: list[str] = []
        with self._connect(template) as conn:
            self._structure = _structure(conn)
            self._rows: dict[tuple[str, str], str] = {}  # the template's rows, as JSON
            for schema, table, _ in conn.execute(_TABLES).fetchall():
                rows = conn.execute(
                    sql.SQL("SELECT json_agg(t) FROM {} AS t").format(sql.Identifier(schema, table))
                ).fetchone()
                if rows is not None and rows[0] is not None:
                    self._rows[schema, table] = json.dumps(rows[0])
            self._sequences: dict[tuple[str, str], tuple[int, bool]] = {}
            for schema, sequence in conn.execute(_SEQUENCES).fetchall():
                position = conn.execute(
                    sql.SQL("SELECT last_value, is_called FROM {}").format(
                        sql.Identifier(schema, sequence)
                    )
                ).fetchone()
                assert position is not None
                self._sequences[schema, sequence] = (position[0], position[1])

    def take(self) -> str:
        """A database holding what the template holds, for one test."""
        if self._free:
            return self._free.pop()
        name = self._new_name()
        self._create(name, self.template)
        return name

    def give_back(self, name: str) -> None:
        """Empty the database for the next test, under a new name; drop it if that cannot be
        done safely."""
        fresh = self._new_name()
        try:
            with self._connect(name) as conn:
                conn.execute(_OTHERS)
                if _structure(conn) != self._structure:
                    raise _Changed
                self._empty(conn)
            # A new name: whatever the test left running (a thread's pool, a process) that
            # connects again finds no database, as if it had been dropped.
            with self._connect("postgres") as admin:
                _ended(admin, name)
                admin.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(name), sql.Identifier(fresh)
                    )
                )
        except (psycopg.Error, _Changed):  # e.g. a session connected again before the rename
            self._drop(name)
            return
        self._free.append(fresh)

    def _empty(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")  # no trigger, no FK
            tables = conn.execute(_TABLES).fetchall()
            large = [sql.Identifier(s, t) for s, t, size in tables if size >= LARGE]
            if large:
                conn.execute(sql.SQL("TRUNCATE {} CASCADE").format(sql.SQL(", ").join(large)))
            for schema, table, size in tables:
                if size < LARGE:
                    conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(schema, table)))
            insert = "INSERT INTO {0} SELECT * FROM json_populate_recordset(NULL::{0}, %s)"
            for (schema, table), rows in self._rows.items():
                conn.execute(sql.SQL(insert).format(sql.Identifier(schema, table)), [rows])
            for (schema, sequence), (value, called) in self._sequences.items():
                name = sql.Identifier(schema, sequence).as_string(conn)
                conn.execute("SELECT setval(%s::regclass, %s, %s)", [name, value, called])

    def close(self) -> None:
        """Drop the databases kept for reuse."""
        while self._free:
            self._drop(self._free.pop())


class _Changed(Exception):
    """A test changed the database's structure: it is not used again."""


def _ended(admin: psycopg.Connection[Any], name: str) -> None:
    """Wait (a second at most) until no session is on database ``name``, ending any."""
    for _ in range(50):
        if not admin.execute(_ON, [name]).fetchall():
            return
        time.sleep(0.02)


def _structure(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(_STRUCTURE).fetchone()
    return str(row[0] if row else "")
