"""The ``provisor`` command, run as a user would: in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from provisor.runtime import prepare
from provisor.settings import Settings
from tests.conftest import free_port
from tests.helpers import create, group_body, patch, user_body

PROVISOR = [sys.executable, "-m", "provisor"]


def run(
    *args: str, data_dir: Path, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    env["PROVISOR_DATA_DIR"] = str(data_dir)
    completed = subprocess.run(
        [*PROVISOR, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        input=stdin,
    )
    if check:
        assert completed.returncode == 0, completed.stderr
    return completed


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, tuple[str, str], subprocess.Popen[str]]]:
    """``provisor serve`` with two worker processes on SQLite."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [*PROVISOR, "serve", "--port", str(port), "--data-dir", str(tmp_path), "--workers", "2"],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # two processes starting on a loaded 2-core machine
    try:
        while True:
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "provisor serve did not start"
            time.sleep(0.2)
        admin_file = tmp_path / "initial-admin.json"
        admin = json.loads(admin_file.read_text())
        yield url, (admin["client_id"], admin["client_secret"]), process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)
        log.close()


def test_serve_creates_the_initial_admin_once(
    served: tuple[str, tuple[str, str], subprocess.Popen[str]], tmp_path: Path
) -> None:
    url, admin, _ = served
    mode = stat.S_IMODE((tmp_path / "initial-admin.json").stat().st_mode)
    assert mode == 0o600
    assert stat.S_IMODE((tmp_path / "provisor.db").stat().st_mode) == 0o600
    health = httpx.get(url + "/health").json()
    assert health["status"] == "ok" and health["database"] == "sqlite"
    with httpx.Client(base_url=url, auth=admin) as client:
        assert client.get("/scim/Users").status_code == 200
        listed = client.get("/api/v1/clients").json()["items"]
    assert [(c["name"], c["permissions"]) for c in listed] == [("initial-admin", ["admin"])]
    (tmp_path / "initial-admin.json").unlink()
    assert prepare(Settings(data_dir=tmp_path)) is None  # a store with clients: no new admin
    assert not (tmp_path / "initial-admin.json").exists()


def test_parallel_patches_across_worker_processes(
    served: tuple[str, tuple[str, str], subprocess.Popen[str]],
) -> None:
    url, admin, _ = served
    with httpx.Client(base_url=url + "/scim", auth=admin) as client:
        group = create(client, "/Groups", group_body())
        users = [create(client, "/Users", user_body())["id"] for _ in range(30)]

    def add(user_id: str) -> int:
        with httpx.Client(base_url=url + "/scim", auth=admin) as client:
            op = patch({"op": "add", "path": "members", "value": [{"value": user_id}]})
            return client.patch(f"/Groups/{group['id']}", json=op).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        assert set(pool.map(add, users)) == {200}
    with httpx.Client(base_url=url + "/scim", auth=admin) as client:
        members = client.get(f"/Groups/{group['id']}").json()["members"]
    assert {m["value"] for m in members} == set(users)


def _users(url: str, admin: tuple[str, str]) -> int:
    """How many users the server holds (another connection than the one under test)."""
    answer = httpx.get(f"{url}/scim/Users", params={"count": 0}, auth=admin, timeout=30)
    return int(answer.json()["totalResults"])


def test_graceful_shutdown_finishes_in_flight_requests(
    served: tuple[str, tuple[str, str], subprocess.Popen[str]],
) -> None:
    url, admin, process = served
    operations = [
        {"method": "POST", "path": "/Users", "bulkId": str(i), "data": user_body()}
        for i in range(600)
    ]
    request = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": operations,
    }
    with (
        httpx.Client(base_url=url + "/scim", auth=admin, timeout=120) as client,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        in_flight = pool.submit(client.post, "/Bulk", json=request)
        deadline = time.monotonic() + 60
        while not _users(url, admin):  # until the bulk request is being processed
            assert not in_flight.done(), in_flight.result().text
            assert time.monotonic() < deadline, "the bulk request was never processed"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        response = in_flight.result()
    assert response.status_code == 200
    assert {op["status"] for op in response.json()["Operations"]} == {"201"}
    assert process.wait(timeout=60) == 0


def _children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat_line = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat_line.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_serve_leaves_no_process_behind(
    served: tuple[str, tuple[str, str], subprocess.Popen[str]],
) -> None:
    """SIGKILL (the OOM killer) gives ``provisor serve`` no chance to stop its processes:
    they stop themselves, the jobs process first of all (left running, it would run jobs
    beside the next ``provisor serve``'s)."""
    _, _, process = served
    children = _children(process.pid)
    assert len(children) >= 3, children  # two web workers and the jobs process
    process.kill()
    process.wait(timeout=60)
    deadline = time.monotonic() + 120
    while left := {pid for pid in children if _alive(pid)}:
        assert time.monotonic() < deadline, f"still running: {left}"
        time.sleep(0.2)


def test_a_process_whose_server_died_before_it_started_stops() -> None:
    """The serving process may die (a SIGTERM before its handlers are in place) while its
    jobs process is still starting: the jobs process knows its server by pid, not by
    whichever process it finds as its parent once it runs."""
    code = "import time; from provisor.server import _with_parent; _with_parent(0); time.sleep(60)"
    done = subprocess.run([sys.executable, "-c", code], timeout=50, check=False)
    assert done.returncode == -signal.SIGTERM


def test_serve_refuses_a_port_in_use(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        completed = run(
            "serve", "--port", str(port), "--workers", "2", data_dir=tmp_path, check=False
        )
    assert completed.returncode == 1
    assert "Cannot listen" in completed.stderr
