"""Issue 19: ``provisor serve --workers 2`` answers ``/metrics`` with the sum of every process
(its two web workers and its jobs process), whichever worker the scrape reaches."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from provisor.context import INSTALLATION, Context
from provisor.runtime import Services, initialise
from provisor.settings import Settings
from tests.conftest import free_port
from tests.helpers import wait_until_serving
from tests.integration.test_metrics import Samples, parse, value
from tests.jobs.conftest import add_users, lid_source
from tests.jobs.test_pipeline import csv_target

pytestmark = pytest.mark.slow  # a live server of three processes

CALLS = 40


def _scrape(url: str, auth: tuple[str, str]) -> Samples:
    answer = httpx.get(url + "/metrics", auth=auth, timeout=30)  # a new connection each time
    assert answer.status_code == 200, answer.text
    return parse(answer.text)


def test_every_process_counts_in_every_workers_answer(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    setup = initialise(settings)
    assert setup.admin_file is not None
    services = Services.open(settings)
    try:
        _, reader = services.clients.create(
            Context.administrator("op", tenant=INSTALLATION), "scraper", ["metrics"]
        )
        _, admin = services.clients.create(Context.administrator("op"), "admin", ["admin"])
        add_users(services, "ada", "grace")
        source = lid_source(services)
        target = csv_target(services, source.id, settings.data_dir)
    finally:
        services.close()
    auth = (reader.client_id, reader.client_secret)
    admin_auth = (admin.client_id, admin.client_secret)
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"")  # a previous run's: emptied at start
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    env.update({k: v for k, v in os.environ.items() if k.startswith("PROVISOR_SECRET_HASH")})
    env.update(PROVISOR_DATA_DIR=str(settings.data_dir), PROMETHEUS_MULTIPROC_DIR=str(folder))
    command = [sys.executable, "-m", "provisor", "serve", "--port", str(port), "--workers", "2"]
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "serve.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_until_serving(url, process, tmp_path / "serve.log")
            assert not (folder / "counter_999999.db").exists()
            before = _scrape(url, auth)
            for _ in range(CALLS):
                # a new connection each; not /health, which the start-up polls call (one that
                # timed out while the server started is answered later, and counted)
                assert httpx.get(url + "/no-such-page").status_code == 404
            pids = {p.name.split("_")[-1] for p in folder.glob("counter_*.db")}
            assert len(pids) == 2, "both workers served requests"
            unknown = {"group": "other", "method": "GET", "status": "404"}
            for _ in range(4):  # whichever worker answers
                after = _scrape(url, auth)
                counted = value(after, "provisor_http_requests_total", **unknown)
                assert counted - value(before, "provisor_http_requests_total", **unknown) == CALLS

            api = httpx.Client(base_url=url + "/api/v1", auth=admin_auth, timeout=30)
            with api:
                job = api.post(f"/systems/{source.id}/jobs", json={"type": "READ"}).json()
                deadline = time.monotonic() + 120
                while api.get(f"/jobs/{job['id']}").json()["status"] != "Success":
                    assert time.monotonic() < deadline, "the jobs process ran the job"
                    time.sleep(0.2)
            samples = _scrape(url, auth)
            assert value(samples, "provisor_jobs_finished_total", state="success") == 1
            written = {"tenant": "default", "system": target.id, "action": "created"}
            assert value(samples, "provisor_target_entities_total", **written) == 2
            runners = [k for k in samples if k[0] == "provisor_job_runner_heartbeat_age_seconds"]
            assert len(runners) == 1, "the jobs process beats"
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    assert not list(folder.glob("gauge_livesum_*.db")), "stopped processes are marked dead"
