"""Locks per entity that hold across server processes (decision 0021), taken without waiting:
the caller polls (jobs/locking.py), so no thread and no connection waits for a lock.

- PostgreSQL: ``pg_try_advisory_xact_lock`` in a transaction of a connection of its own,
  held until the holder releases (commit); a process that dies loses its session, and the
  server releases its locks.
- SQLite: a POSIX record lock (``lockf``) on one byte of ``<database>.entitylocks`` at the
  key's offset; the kernel releases a process's locks when it dies. POSIX record locks
  belong to the process, so the keys held in this process are kept in a set as well (two
  holders in one process, or two ``Database`` objects on one file, exclude each other).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, text

from provisor.jobs.ports import LockHolder
from provisor.storage.database import Database

_TRY = text("SELECT k FROM unnest(CAST(:keys AS bigint[])) AS k WHERE pg_try_advisory_xact_lock(k)")


class EntityLockStore:
    """Where the entity locks of one database are taken."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._file = _LockFile.of(db)

    def holder(self) -> LockHolder:
        if self._file is not None:
            return _FileHolder(self._file)
        return _AdvisoryHolder(self.db)


class _AdvisoryHolder:
    """Keys held by one PostgreSQL transaction; its connection is taken with the first key."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: Connection | None = None
        self._holding = self._closed = False
        self._turn = threading.Lock()  # a take still running when its caller gave up

    def take(self, keys: Sequence[int]) -> set[int]:
        with self._turn:
            if self._closed:
                return set()
            if self._conn is None:
                self._conn = self.db.write_engine.connect()
                self._conn.begin()
            taken = {int(k) for k in self._conn.execute(_TRY, {"keys": list(keys)}).scalars()}
            self._holding = self._holding or bool(taken)
            if not self._holding:  # the connection goes back while the caller waits
                self._end()
            return taken

    def release(self) -> None:
        with self._turn:
            self._closed = True
            self._end()

    def _end(self) -> None:
        conn, self._conn, self._holding = self._conn, None, False
        if conn is not None:
            try:
                conn.commit()  # the end of the transaction releases its advisory locks
            finally:
                conn.close()


class _LockFile:
    """The lock file of an SQLite database and the keys this process holds in it."""

    _files: dict[str, _LockFile] = {}  # noqa: RUF012 - one per file in the process
    _guard = threading.Lock()

    def __init__(self, path: str | None) -> None:
        self.path = path  # None: an in-memory database, which only this process uses
        self.held: set[int] = set()
        self.fd: int | None = None

    @classmethod
    def of(cls, db: Database) -> _LockFile | None:
        if not db.is_sqlite:
            return None
        path = db.url.split("///", 1)[1]
        if path and path != ":memory:":
            name = os.path.realpath(path)
            lock_path: str | None = name + ".entitylocks"
        else:
            name, lock_path = f"memory:{id(db)}", None
        with cls._guard:
            return cls._files.setdefault(name, cls(lock_path))

    def take(self, keys: Iterable[int]) -> set[int]:
        taken = set()
        with self._guard:
            for key in keys:
                if key not in self.held and self._lock(key):
                    self.held.add(key)
                    taken.add(key)
        return taken

    def release(self, keys: Iterable[int]) -> None:
        with self._guard:
            for key in keys:
                if self.fd is not None:
                    fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, key)
                self.held.discard(key)
            if not self.held and self.fd is not None:
                # Closing a file descriptor drops every lock the process holds on the file:
                # only done when it holds none.
                os.close(self.fd)
                self.fd = None

    def _lock(self, key: int) -> bool:
        if self.path is None:
            return True
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, key)
        except OSError:  # held by another process (EAGAIN / EACCES)
            return False
        return True


class _FileHolder:
    def __init__(self, file: _LockFile) -> None:
        self.file = file
        self.keys: set[int] = set()
        self._closed = False
        self._turn = threading.Lock()  # a take still running when its caller gave up

    def take(self, keys: Sequence[int]) -> set[int]:
        with self._turn:
            if self._closed:
                return set()
            taken = self.file.take(keys)
            self.keys |= taken
            return taken

    def release(self) -> None:
        with self._turn:
            self._closed = True
            keys, self.keys = self.keys, set()
            self.file.release(keys)
