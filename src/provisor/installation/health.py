"""Readiness, for orchestrators: the database answers, its schema is the code's, this node's
master key is the database's, and a job runner beats. Probed at most once per ``ttl`` seconds
per process (probes of every load balancer and orchestrator share one probe)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from provisor.errors import ProvisorError
from provisor.installation.keys import MasterKey, maintenance
from provisor.jobs.service import JobService
from provisor.storage import migrate
from provisor.storage.database import Database

TTL_SECONDS = 1.5


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Report:
    checks: tuple[Check, ...]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks)


class Readiness:
    """The readiness report of this process, cached ``ttl`` seconds."""

    def __init__(
        self, db: Database, key: MasterKey, jobs: JobService, *, ttl: float = TTL_SECONDS
    ) -> None:
        self.db = db
        self.key = key
        self.jobs = jobs
        self.ttl = ttl
        self._lock = threading.Lock()
        self._report: Report | None = None
        self._taken = 0.0
        self._head: str | None = None

    def report(self) -> Report:
        with self._lock:  # one probe at a time; the others wait for its answer
            if self._report is None or time.monotonic() - self._taken >= self.ttl:
                self._report = self._probe()
                self._taken = time.monotonic()
            return self._report

    def _probe(self) -> Report:
        try:
            self.db.ping()
        except ProvisorError as exc:
            skipped = "not checked: the database is unreachable"
            return Report(
                (
                    Check("database", False, f"unreachable: {exc.message}"),
                    *(Check(name, False, skipped) for name in ("migrations", "master_key", "jobs")),
                )
            )
        return Report(
            (
                Check("database", True, self.db.dialect),
                self._guarded("migrations", self._migrations),
                self._guarded("master_key", self._master_key),
                self._guarded("jobs", self._jobs),
            )
        )

    def _guarded(self, name: str, probe: Callable[[], tuple[bool, str]]) -> Check:
        try:
            ok, detail = probe()
        except ProvisorError as exc:
            return Check(name, False, exc.message)
        return Check(name, ok, detail)

    def _migrations(self) -> tuple[bool, str]:
        if self._head is None:
            self._head = migrate.head_revision(self.db)
        current = migrate.current_revision(self.db)
        if current == self._head:
            return True, f"at revision {current}"
        return False, (
            f"the database is at revision {current}, the code's is {self._head}: run "
            "provisor db upgrade (or start provisor serve, which applies them)"
        )

    def _master_key(self) -> tuple[bool, str]:
        problem = self.key.state()
        return (True, "matches the database's") if problem is None else (False, problem)

    def _jobs(self) -> tuple[bool, str]:
        runners = self.jobs.runners(maintenance())
        if runners:
            return True, f"{len(runners)} job runner(s) beating"
        return False, (
            f"no job runner has beaten in the last {self.jobs.stale_seconds} seconds "
            "(PROVISOR_JOB_STALE_SECONDS): servers started with --no-jobs run none; start "
            "provisor worker, or a server without --no-jobs"
        )
