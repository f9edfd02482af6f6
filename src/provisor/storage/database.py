"""Database engines and transactions, the same API on SQLite and PostgreSQL.

SQLite (the default) runs with the synchronous ``sqlite3`` driver in WAL mode: a pool of
reading connections, and one writing connection per process whose transactions start with
``BEGIN IMMEDIATE``. Writers of several processes take turns through a lock file, so they
queue instead of sleeping in SQLite's busy handler; the writers of a process that arrive
together share one commit (``write(ctx, grouped=True)``: :mod:`.groupcommit`). PostgreSQL
uses psycopg 3 with a connection pool; reads run in autocommit mode, writes in a
transaction. A write opened inside another write of the same thread is a savepoint of it.

``read(ctx)`` and ``write(ctx)`` yield a :class:`Transaction`: the connection together with
the context of the service call, so that every statement is scoped to the call's tenant by one
helper (:meth:`Transaction.scoped`) and a change can record its audit entry in its own commit
(:meth:`Transaction.audit`).
"""

from __future__ import annotations

import fcntl
import importlib
import os
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    Connection,
    CursorResult,
    Delete,
    Engine,
    Select,
    Table,
    Update,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.sql import ColumnElement, Executable

from provisor.context import ANY_TENANT, Context
from provisor.errors import ConfigError, StorageError
from provisor.storage import auditchain
from provisor.storage.groupcommit import CommitFailed, GroupCommit, savepoint
from provisor.text import storable
from provisor.timestamps import now

Scopable = TypeVar("Scopable", Select[Any], Update, Delete)
# Statements scoped before, by statement (while it lives), then by (table, tenant); and the
# tenant criterion of each (table, tenant).
_SCOPED: weakref.WeakKeyDictionary[Any, dict[tuple[Table, str], Any]] = weakref.WeakKeyDictionary()
_CRITERIA: dict[tuple[Table, str], ColumnElement[bool]] = {}

BACKENDS = ("sqlite", "postgresql")
POSTGRES_MODULES = ("psycopg", "psycopg_pool", "procrastinate")  # provisor's postgres extra
QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement stopped by statement_timeout
_URL_ADVICE = (
    "use postgresql://user:password@host:port/database, or leave PROVISOR_DATABASE_URL "
    "(--database-url) unset for SQLite in the data folder"
)


def backend_of(url: str) -> str:
    """The database a SQLAlchemy URL names (``sqlite`` or ``postgresql``); ConfigError for
    another one or for text that is no URL. The message never repeats the URL (it may hold
    a password)."""
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        raise ConfigError(f"The database URL is not a URL: {_URL_ADVICE}.") from None
    if backend not in BACKENDS:
        raise ConfigError(
            f"provisor keeps its data in SQLite or PostgreSQL, not {backend}: {_URL_ADVICE}."
        )
    return backend


class Transaction:
    """One service call's use of the database: the connection (a transaction when writing)
    and the call's context."""

    __slots__ = ("conn", "ctx", "writable")

    def __init__(self, conn: Connection, ctx: Context, *, writable: bool) -> None:
        self.conn = conn
        self.ctx = ctx
        self.writable = writable

    def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        return self.conn.execute(statement, parameters)

    def scoped(self, statement: Scopable, table: Table) -> Scopable:
        """``statement`` limited to the rows of the call's tenant: the one place where the
        tenant meets SQL. Tables without a ``tenant`` column hold the installation's rows;
        a context of every tenant (``ANY_TENANT``: provisor's own work) is not limited.

        A statement built once (a store's module-level statement with bind parameters) is
        scoped once per tenant and remembered while it lives: SQLAlchemy then finds its
        compiled form without building and hashing a new statement on every call."""
        column = table.c.get("tenant")
        tenant = self.ctx.tenant
        if column is None or tenant == ANY_TENANT:
            return statement
        key = (table, tenant)
        memo = _SCOPED.get(statement)
        if memo is not None:
            found = memo.get(key)
            if found is not None:
                return found  # type: ignore[no-any-return]
        criterion = _CRITERIA.get(key)
        if criterion is None:
            criterion = _CRITERIA.setdefault(key, column == tenant)
        limited = statement.where(criterion)
        if memo is None:
            _SCOPED[statement] = memo = {}
        memo[key] = limited
        return limited

    def tenant_values(self, table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
        """The values of a row to insert into ``table``, with the call's tenant (a context
        of every tenant must name the row's own)."""
        row = dict(values)
        if "tenant" in table.c:
            if self.ctx.tenant != ANY_TENANT:
                row["tenant"] = self.ctx.tenant
            elif not row.get("tenant"):
                raise RuntimeError(f"a row of {table.name} inserted for every tenant")
        return row

    def audit(
        self,
        action: str,
        target: str,
        detail: Mapping[str, Any] | None = None,
        *,
        tenant: str | None = None,
    ) -> None:
        """Record that the call's actor did ``action`` to ``target``, committed with the
        change itself (``detail`` is JSON and must hold no secret: a credential is named,
        never valued), at the end of the audit chain of the call's tenant (or ``tenant``: an
        operator's work over every tenant is the installation's), with the call's address
        and request id."""
        if not self.writable:
            raise RuntimeError("an audit entry is written in a write transaction")
        actor = self.ctx.actor
        auditchain.append(
            self.conn,
            {
                "at": now(),
                "tenant": tenant or self.ctx.tenant,
                "actor_kind": actor.kind.value,
                "actor": actor.name[:255],
                "address": self.ctx.address[:64],
                "request_id": self.ctx.request_id[:64],
                "action": action,
                "target": target[:255],
                "detail": _detail_json(dict(detail or {})),
            },
        )


def _detail_json(detail: dict[str, Any]) -> str:
    """An audit record's detail as JSON; a lone surrogate a caller sent (orjson refuses it)
    becomes U+FFFD."""
    try:
        return orjson.dumps(detail).decode()
    except orjson.JSONEncodeError:
        return orjson.dumps(_storable(detail)).decode()


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, Mapping):
        return {storable(str(k)): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


class Database:
    """Connections to provisor's database: ``read()`` and ``write()`` contexts."""

    def __init__(
        self,
        url: str,
        *,
        sqlite_synchronous: str = "FULL",
        pool_size: int = 16,
        statement_timeout: float = 0,
    ) -> None:
        """``statement_timeout``: seconds after which PostgreSQL cancels a statement (0: none)."""
        self.url = url
        self.statement_timeout = statement_timeout
        self.is_sqlite = backend_of(url) == "sqlite"
        self._lock_fd: int | None = None
        self._nested = threading.local()  # the connection of this thread's open write
        if self.is_sqlite:
            path = url.split("///", 1)[1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))  # private from the start
                self._lock_fd = os.open(path + ".writelock", os.O_RDWR | os.O_CREAT, 0o600)
            self.write_engine = _sqlite_engine(url, sqlite_synchronous, writer=True, pool_size=1)
            self.read_engine = _sqlite_engine(
                url, sqlite_synchronous, writer=False, pool_size=pool_size
            )
            self.writers: GroupCommit | None = GroupCommit(self.write_engine, self._writer_turn)
        else:
            # No pre-ping (a round trip per request): a connection that broke is discarded
            # when it fails, and the request that met it gets a 503.
            self.write_engine = _server_engine(url, pool_size, statement_timeout)
            self.read_engine = self.write_engine.execution_options(isolation_level="AUTOCOMMIT")
            self.writers = None

    @property
    def dialect(self) -> str:
        return self.write_engine.dialect.name

    def read(self, ctx: Context) -> AbstractContextManager[Transaction]:
        """Reading for a service call (a ``Transaction``); nothing it does is committed."""
        return self._scoped(self._read(), ctx, writable=False)

    def write(self, ctx: Context, *, grouped: bool = False) -> AbstractContextManager[Transaction]:
        """A transaction for a service call, committed when the block ends and rolled back if
        it raises. ``grouped``: on SQLite, the block may share its commit with the blocks
        of other threads that wait for the writer meanwhile (each in its own savepoint: one
        that raises leaves the others); the block ends only once its changes are committed.
        Inside another write of the same thread, the block is a savepoint of it."""
        return self._scoped(self._write(grouped=grouped), ctx, writable=True)

    def unscoped_read(self) -> AbstractContextManager[Connection]:
        """A bare connection over every tenant's rows: for migrations, health checks and
        tests, never for a service call."""
        return self._unscoped(self._read(), writable=False)

    def unscoped_write(self, *, foreign_keys: bool = True) -> AbstractContextManager[Connection]:
        """A bare transaction over every tenant's rows: for migrations, never for a service
        call. ``foreign_keys=False`` suspends SQLite's foreign keys for the transaction (a
        migration copying a parent table must not cascade its drop to the children)."""
        return self._unscoped(self._write(foreign_keys=foreign_keys), writable=True)

    @contextmanager
    def _unscoped(
        self, opened: AbstractContextManager[Connection], *, writable: bool
    ) -> Iterator[Connection]:
        with opened as conn:
            if not self.is_sqlite:
                _row_security(conn, ANY_TENANT, writable=writable)
            yield conn

    @contextmanager
    def _scoped(
        self, opened: AbstractContextManager[Connection], ctx: Context, *, writable: bool
    ) -> Iterator[Transaction]:
        with opened as conn:
            if self.is_sqlite:
                yield Transaction(conn, ctx, writable=writable)
            elif not writable:
                _row_security(conn, ctx.tenant, writable=False)
                yield Transaction(conn, ctx, writable=False)
            else:
                # A write nested in another of the same tenant needs no new setting; one of
                # another tenant sets its own and gives the outer one's back after it.
                outer = conn.info.get(_WRITE_TENANT)
                if outer != ctx.tenant:
                    _row_security(conn, ctx.tenant, writable=True)
                    conn.info[_WRITE_TENANT] = ctx.tenant
                try:
                    yield Transaction(conn, ctx, writable=True)
                except BaseException:  # a savepoint's rollback undoes its setting
                    _restore(conn.info, _WRITE_TENANT, outer)
                    raise
                if outer is not None and outer != ctx.tenant:
                    _row_security(conn, outer, writable=True)
                _restore(conn.info, _WRITE_TENANT, outer)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.read_engine.connect() as conn:
                yield conn
        except (OperationalError, DBAPIError) as exc:
            if _canceled(exc):
                raise self._timed_out() from exc
            if exc.connection_invalidated or isinstance(exc, OperationalError):
                raise _unavailable(exc) from exc
            raise

    @contextmanager
    def _write(self, *, foreign_keys: bool = True, grouped: bool = False) -> Iterator[Connection]:
        outer: Connection | None = getattr(self._nested, "conn", None)
        if outer is not None:  # inside a write of this thread: a savepoint of it
            with savepoint(outer):
                yield outer
            return
        try:
            with self._writing(foreign_keys=foreign_keys, grouped=grouped) as conn:
                self._nested.conn = conn
                try:
                    yield conn
                finally:
                    self._nested.conn = None
        except OperationalError as exc:
            if _canceled(exc):
                raise self._timed_out() from exc
            raise _unavailable(exc) from exc
        except CommitFailed as exc:
            raise StorageError(
                "Database unavailable: the commit failed, nothing of this request was "
                f"written: {_reason(exc.cause)}"
            ) from exc

    @contextmanager
    def _writing(self, *, foreign_keys: bool, grouped: bool) -> Iterator[Connection]:
        if self.writers is None:  # PostgreSQL: concurrent commits share their WAL flushes
            with self.write_engine.begin() as conn:
                yield conn
        elif foreign_keys:
            with self.writers.write(grouped=grouped) as conn:
                yield conn
        else:
            with self.writers.write(
                grouped=False, before=_foreign_keys_off, after=_foreign_keys_on
            ) as conn:
                yield conn
                problems = conn.exec_driver_sql("PRAGMA foreign_key_check")
                if problems.first() is not None:
                    raise StorageError("A migration broke a foreign key.")

    def _timed_out(self) -> StorageError:
        return StorageError(
            f"The database stopped a statement that ran longer than {self.statement_timeout:g} "
            "seconds (PROVISOR_STATEMENT_TIMEOUT_SECONDS); ask for less, e.g. a simpler filter."
        )

    @contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """The writer's turn between the processes of the SQLite database (its lock file);
        the threads of a process take turns in :class:`GroupCommit`."""
        if self._lock_fd is None:
            yield
            return
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def bypasses_row_security(self) -> bool:
        """Whether PostgreSQL skips the tenants' row-level security policies for this
        connection's role (a superuser or a ``BYPASSRLS`` role); never on SQLite."""
        if self.is_sqlite:
            return False
        with self.unscoped_read() as conn:
            found = conn.execute(
                text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
            ).scalar()
        return bool(found)

    def ping(self) -> None:
        """Raise StorageError unless the database answers."""
        with self.unscoped_read() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.read_engine.dispose()
        self.write_engine.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


TENANT_SETTING = "provisor.tenant"  # what PostgreSQL's row-level security policies compare
_WRITE_TENANT = "provisor.write_tenant"  # the tenant set for the connection's transaction


def _restore(info: dict[Any, Any], key: str, value: Any) -> None:
    if value is None:
        info.pop(key, None)
    else:
        info[key] = value


def _foreign_keys_off(conn: Connection) -> None:
    """Suspend SQLite's foreign keys (outside a transaction: no effect inside one; on the
    driver's connection: SQLAlchemy's would begin one)."""
    raw: Any = conn.connection.driver_connection
    raw.execute("PRAGMA foreign_keys=OFF")


def _foreign_keys_on(conn: Connection) -> None:
    raw: Any = conn.connection.driver_connection
    raw.execute("PRAGMA foreign_keys=ON")


_SET_TENANT = text("SELECT set_config('provisor.tenant', :tenant, :local)")


def _row_security(conn: Connection, tenant: str, *, writable: bool) -> None:
    """Tell PostgreSQL the tenant of the statements to come, for its row-level security
    policies (the second wall behind ``Transaction.scoped``). A read (autocommit) sets it for
    the session and remembers it on the connection: a connection serving one tenant pays no
    round trip. A write whose session holds another tenant sets it for its transaction only
    (a session setting made in a transaction would be undone by a rollback)."""
    info = conn.info
    if info.get(TENANT_SETTING) == tenant:
        return
    if writable:
        conn.execute(_SET_TENANT, {"tenant": tenant, "local": True})
    else:
        conn.execute(_SET_TENANT, {"tenant": tenant, "local": False})
        info[TENANT_SETTING] = tenant


def _require_postgres_extra() -> None:
    """ConfigError with the command that installs it unless the postgres extra loads."""
    for module in POSTGRES_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(
                f"PostgreSQL needs provisor's postgres extra, which is not installed ({exc}). "
                "Install it with: pip install 'provisor[postgres]'"
            ) from None


def _server_engine(url: str, pool_size: int, statement_timeout: float) -> Engine:
    """PostgreSQL's engine (no connection yet); ConfigError when a driver is missing."""
    _require_postgres_extra()
    options = f"-c statement_timeout={round(statement_timeout * 1000)}"
    try:
        return create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_recycle=3600,
            connect_args={"options": options},
        )
    except ImportError as exc:  # another driver than psycopg (postgresql+psycopg2://)
        raise ConfigError(f"The database driver cannot be loaded ({exc}): {_URL_ADVICE}.") from None
    except ArgumentError as exc:  # a driver SQLAlchemy does not know (postgresql+foo://)
        raise ConfigError(f"The database URL cannot be used ({exc}): {_URL_ADVICE}.") from None


def _canceled(exc: DBAPIError) -> bool:
    """Whether PostgreSQL stopped the statement (statement_timeout)."""
    return getattr(exc.orig, "sqlstate", None) == QUERY_CANCELED


def _unavailable(exc: DBAPIError) -> StorageError:
    return StorageError(f"Database unavailable: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    """The driver's reason on one line (libpq spreads it over several)."""
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return " ".join(line if line.endswith((".", "?", ":")) else line + "." for line in lines)


def _sqlite_engine(url: str, synchronous: str, *, writer: bool, pool_size: int) -> Engine:
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0 if writer else pool_size,
        pool_timeout=120,
        connect_args={"check_same_thread": False, "timeout": 60},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA case_sensitive_like=ON")  # LIKE follows caseExact
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.execute("PRAGMA mmap_size=268435456")
        cursor.close()
        dbapi_conn.create_function("casefold", 1, _casefold, deterministic=True)

    if writer:

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _casefold(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value
