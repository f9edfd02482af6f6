"""``/health/live`` and ``/health/ready``: unauthenticated, one entry per check, 200 or 503,
each check failing for its own reason."""

from __future__ import annotations

import time

import httpx
from sqlalchemy import text

from provisor.context import Context
from provisor.installation.health import Readiness
from provisor.installation.keys import MasterKey
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.storage.database import Database
from provisor.timestamps import now
from tests.conftest import LiveServer, free_port

CHECKS = {"database", "migrations", "master_key", "jobs"}


def test_live_and_ready_need_no_credentials_and_ready_waits_for_a_job_runner(
    sqlite_server: LiveServer,
) -> None:
    with httpx.Client(base_url=sqlite_server.url) as anonymous:
        live = anonymous.get("/health/live")
        assert live.status_code == 200 and live.json()["status"] == "ok"
        unready = anonymous.get("/health/ready")
        assert anonymous.get("/health").json()["status"] == "ok"  # as it was
        # The test server runs no job runner (as provisor serve --no-jobs without a worker).
        assert unready.status_code == 503, unready.text
        body = unready.json()
        assert body["status"] == "unready" and set(body["checks"]) == CHECKS
        assert {name for name, c in body["checks"].items() if not c["ok"]} == {"jobs"}
        assert "--no-jobs" in body["checks"]["jobs"]["detail"]
        assert body["checks"]["migrations"]["detail"].startswith("at revision ")

        runner = Context.system("worker")
        sqlite_server.services.jobs.beat(runner, "host:1", now())
        deadline = time.monotonic() + 20  # the answer is cached a second and a half
        while (ready := anonymous.get("/health/ready")).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.2)
        assert ready.json()["status"] == "ready"
        assert ready.json()["checks"]["jobs"]["detail"] == "1 job runner(s) beating"


def test_each_check_fails_for_its_reason(services: Services) -> None:
    db, jobs = services.db, services.jobs
    jobs.beat(Context.system("worker"), "host:1", now())
    readiness = Readiness(db, services.master_key, jobs, ttl=0)
    first = readiness.report()
    assert not first.ready  # nothing wrote the check value: neither serve nor init ran
    assert "no check value" in {c.name: c for c in first.checks}["master_key"].detail
    services.master_key.verify()
    assert readiness.report().ready

    other = MasterKey(db, b"k" * 44, "PROVISOR_SECRET_KEY", services.settings.data_dir)
    found = {c.name: c for c in Readiness(db, other, jobs, ttl=0).report().checks}
    assert not found["master_key"].ok and "PROVISOR_SECRET_KEY" in found["master_key"].detail

    with db.unscoped_write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0018'"))
    found = {c.name: c for c in readiness.report().checks}
    assert not found["migrations"].ok and "provisor db upgrade" in found["migrations"].detail

    cached = Readiness(db, services.master_key, jobs, ttl=3600)
    assert cached.report() is cached.report()  # one probe per ttl


def test_an_unreachable_database_fails_every_check(sqlite_settings: Settings) -> None:
    services = Services.open(sqlite_settings)
    gone = Database(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")
    try:
        report = Readiness(gone, services.master_key, services.jobs, ttl=0).report()
    finally:
        gone.dispose()
        services.close()
    assert not report.ready and not any(check.ok for check in report.checks)
    assert report.checks[0].detail.startswith("unreachable")
    assert {c.name for c in report.checks} == CHECKS
