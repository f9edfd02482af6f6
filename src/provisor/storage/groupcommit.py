"""Group commit on SQLite: the write transactions of a process that arrive together share
one durable commit, each in its own savepoint (decision 0030).

A process has one writing connection, and its writers take turns on it. The first writer
of a batch takes the writer's turn between processes (the lock file) and begins a
transaction; each writer's block runs inside a ``SAVEPOINT`` of it. When a block ends and
other writers of the process are waiting for the connection, the block's writer hands it
to the next one instead of committing, and waits; the last writer of the batch (no one
waiting, or the batch at its bound: ``MAX_MEMBERS`` blocks or ``MAX_SECONDS`` open)
commits, once, for every member. So:

* a writer returns only after the commit that holds its changes (or, when that commit
  fails, raises StorageError: a 503, nothing of the batch written);
* a block that raises is rolled back to its savepoint: the others of its batch are kept;
* the statements of a batch run one block after the other on one connection, so each sees
  what the blocks before it wrote (uniqueness, quotas, counters stay exact).

A writer that does not join batches (``grouped=False``: every write but the directory's)
waits until no batch is open and runs its own transaction, as before. A write opened inside
another one of the same thread is a savepoint of it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, RootTransaction

Hook = Callable[[Connection], None]
MAX_MEMBERS = 64  # blocks in one commit at most
MAX_SECONDS = 0.05  # a batch open longer than this commits at the end of the current block


_NAMES = itertools.count()


class Savepoint:
    """A savepoint of a connection's open transaction, in the driver's own SQL (SQLAlchemy's
    ``begin_nested`` compiles its statements anew on every call: ~10 times the cost)."""

    __slots__ = ("_name", "_raw")

    def __init__(self, conn: Connection) -> None:
        raw: Any = conn.connection.driver_connection
        self._raw = raw
        self._name = f"w{next(_NAMES)}"
        self._raw.execute(f"SAVEPOINT {self._name}")

    def release(self) -> None:
        self._raw.execute(f"RELEASE SAVEPOINT {self._name}")

    def rollback(self) -> None:
        self._raw.execute(f"ROLLBACK TO SAVEPOINT {self._name}")
        self._raw.execute(f"RELEASE SAVEPOINT {self._name}")


@contextmanager
def savepoint(conn: Connection) -> Iterator[Connection]:
    """A block in a savepoint of ``conn``'s transaction: rolled back alone if it raises."""
    point = Savepoint(conn)
    try:
        yield conn
    except BaseException:
        point.rollback()
        raise
    point.release()


class CommitFailed(Exception):
    """The commit of a batch failed: none of its members' changes were written."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass(eq=False)
class _Batch:
    conn: Connection
    trans: RootTransaction
    turn: AbstractContextManager[None]  # the writer's turn between processes, held
    grouped: bool
    after: Hook | None = None  # runs on the connection once the transaction has ended
    opened: float = field(default_factory=time.monotonic)
    members: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    failure: BaseException | None = None  # the batch cannot commit (or its commit failed)


class GroupCommit:
    """The writing connection of one process and the batches of writers sharing it."""

    def __init__(
        self,
        engine: Engine,
        turn: Callable[[], AbstractContextManager[None]],
        *,
        max_members: int = MAX_MEMBERS,
        max_seconds: float = MAX_SECONDS,
    ) -> None:
        self._engine = engine
        self._turn = turn
        self.max_members = max_members
        self.max_seconds = max_seconds
        self._cond = threading.Condition(threading.Lock())
        self._holder: int | None = None  # the thread whose block runs on the connection
        self._joining = 0  # grouped writers waiting for the connection
        self._alone = 0  # writers that do not join batches, waiting
        self._batch: _Batch | None = None
        self.commits = 0  # durable commits made (batches), for tests and benchmarks

    @property
    def joining(self) -> int:
        """How many grouped writers wait for the connection (for tests)."""
        with self._cond:
            return self._joining

    @contextmanager
    def write(
        self, *, grouped: bool, before: Hook | None = None, after: Hook | None = None
    ) -> Iterator[Connection]:
        """A block on the writing connection, in a batch (``grouped``) or alone; returns
        once the block's changes are committed. A lone writer's ``before`` runs on the
        connection before its transaction begins, ``after`` once it has ended."""
        batch = self._enter(grouped, before, after)
        own: BaseException | None = None
        point: Savepoint | None = None
        try:
            if grouped:
                point = Savepoint(batch.conn)
        except BaseException as exc:
            batch.failure = exc
            own = exc
        if own is None:
            try:
                yield batch.conn
            except BaseException as exc:
                own = exc
                if point is None:  # alone: the transaction is the block's
                    batch.failure = exc
                else:
                    try:
                        point.rollback()
                    except BaseException as broke:  # the transaction is unusable
                        batch.failure = broke
            else:
                if point is not None:
                    try:
                        point.release()
                    except BaseException as broke:
                        own = batch.failure = broke
        batch.members += 1
        self._leave(batch)
        batch.done.wait()
        if batch.failure is not None and batch.failure is not own:
            raise CommitFailed(batch.failure) from batch.failure
        if own is not None:
            raise own

    def _enter(self, grouped: bool, before: Hook | None, after: Hook | None) -> _Batch:
        """Wait for the connection (a grouped writer: for a batch to join or to open; a lone
        writer: for no batch at all), then the batch the caller's block runs in."""
        me = threading.get_ident()
        with self._cond:
            if grouped:
                self._joining += 1
                while self._holder is not None or (self._batch is None and self._alone):
                    self._cond.wait()
                self._joining -= 1
            else:
                self._alone += 1
                while self._holder is not None or self._batch is not None:
                    self._cond.wait()
                self._alone -= 1
            self._holder = me
            batch = self._batch
        if batch is not None:
            return batch
        try:
            batch = self._open(grouped, before, after)
        except BaseException:
            with self._cond:
                self._holder = None
                self._cond.notify_all()
            raise
        self._batch = batch
        return batch

    def _open(self, grouped: bool, before: Hook | None, after: Hook | None) -> _Batch:
        turn = self._turn()
        turn.__enter__()
        try:
            conn = self._engine.connect()
            try:
                if before is not None:
                    before(conn)
                trans = conn.begin()
            except BaseException:
                conn.close()
                raise
        except BaseException as exc:
            turn.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return _Batch(conn, trans, turn, grouped, after)

    def _leave(self, batch: _Batch) -> None:
        """Hand the connection to a waiting writer of the batch, or end the batch."""
        with self._cond:
            hand_over = (
                batch.grouped
                and batch.failure is None
                and self._joining > 0
                and not self._alone
                and batch.members < self.max_members
                and time.monotonic() - batch.opened < self.max_seconds
            )
            if hand_over:
                self._holder = None
                self._cond.notify_all()
                return
        self._end(batch)

    def _end(self, batch: _Batch) -> None:
        try:
            if batch.failure is None:
                batch.trans.commit()
                self.commits += 1
            else:
                batch.trans.rollback()
        except BaseException as exc:
            batch.failure = batch.failure or exc
        finally:
            try:
                try:
                    if batch.after is not None:
                        batch.after(batch.conn)
                finally:
                    batch.conn.close()  # back to the pool (rolled back if the commit failed)
            finally:
                batch.turn.__exit__(None, None, None)
                with self._cond:
                    self._batch = None
                    self._holder = None
                    self._cond.notify_all()
                batch.done.set()
