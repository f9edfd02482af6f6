"""kill -9 under write load (issue 20): clients POST and PATCH users against a real
``provisor serve`` (SQLite, two workers: group commit), the whole process group is killed
mid-load, and the server restarted on the same data folder has every acknowledged create
and PATCH, nothing twice, and a database that passes ``PRAGMA integrity_check``."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisor.context import Context
from provisor.runtime import Services, initialise
from provisor.settings import Settings
from tests.conftest import SQLITE_FILE, free_port
from tests.helpers import SCIM_JSON, patch, user_body, wait_until_serving

pytestmark = pytest.mark.slow  # a live server of three processes, twice

CLIENTS = 8
ACKNOWLEDGED_BEFORE_KILL = 150  # 2xx answers the clients have when the server is killed


@dataclass
class _Client:
    """What one client sent and what was acknowledged, in order (one request at a time)."""

    name: str
    created: dict[str, str] = field(default_factory=dict)  # userName -> id, acknowledged
    sent_creates: set[str] = field(default_factory=set)  # userNames sent (acknowledged or not)
    # user id -> displayName values sent, each with whether it was acknowledged
    patches: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)


def _work(
    url: str, auth: tuple[str, str], me: _Client, acked: list[int], stop: threading.Event
) -> None:
    """Create users and PATCH them (own users only) until the server dies."""
    headers = {"Content-Type": SCIM_JSON}
    with httpx.Client(base_url=url + "/scim", auth=auth, timeout=30) as client:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                if n % 2 or not me.created:
                    name = f"{me.name}-{n}"
                    me.sent_creates.add(name)
                    answer = client.post("/Users", json=user_body(name), headers=headers)
                    if answer.status_code == 201:
                        me.created[name] = answer.json()["id"]
                else:
                    user_id = list(me.created.values())[n % len(me.created)]
                    value = f"{me.name} patch {n}"
                    sent = me.patches.setdefault(user_id, [])
                    sent.append((value, False))
                    body = patch({"op": "replace", "path": "displayName", "value": value})
                    answer = client.patch(f"/Users/{user_id}", json=body, headers=headers)
                    if answer.status_code == 200:
                        sent[-1] = (value, True)
            except httpx.TransportError:
                return  # the server is gone
            if 200 <= answer.status_code < 300:
                acked.append(1)
            else:
                assert answer.status_code >= 500, answer.text  # no client error expected


def _serve(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    env.update({k: v for k, v in os.environ.items() if k.startswith("PROVISOR_SECRET_HASH")})
    env.update(PROVISOR_DATA_DIR=str(settings.data_dir))
    command = [sys.executable, "-m", "provisor", "serve", "--port", str(port), "--workers", "2"]
    with log.open("a") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def test_kill_9_mid_load_loses_and_duplicates_nothing_acknowledged(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    initialise(settings)
    services = Services.open(settings)
    try:
        _, admin = services.clients.create(Context.administrator("op"), "writer", ["admin"])
    finally:
        services.close()
    auth = (admin.client_id, admin.client_secret)
    port, log = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"

    process = _serve(settings, port, log)
    clients = [_Client(f"c{i}") for i in range(CLIENTS)]
    acked: list[int] = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=_work, args=(url, auth, c, acked, stop), daemon=True)
        for c in clients
    ]
    try:
        wait_until_serving(url, process, log)
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 600  # a busy machine
        while len(acked) < ACKNOWLEDGED_BEFORE_KILL and time.monotonic() < deadline:
            if not any(t.is_alive() for t in threads):
                break
            time.sleep(0.05)
        assert len(acked) >= ACKNOWLEDGED_BEFORE_KILL, log.read_text()[-2000:]
        os.killpg(process.pid, signal.SIGKILL)  # mid-load: requests are in flight
        process.wait(timeout=60)
    finally:
        stop.set()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()

    database = settings.data_dir / SQLITE_FILE
    with sqlite3.connect(database) as conn:  # recovers the WAL, as the next server would
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    process = _serve(settings, port, log)
    try:
        wait_until_serving(url, process, log)
        with httpx.Client(base_url=url + "/scim", auth=auth, timeout=30) as client:
            for me in clients:
                _check(client, me)
    finally:
        process.terminate()
        process.wait(timeout=60)


def _check(client: httpx.Client, me: _Client) -> None:
    found: dict[str, Any] = {}
    start = 1
    while True:
        page = client.get(
            "/Users",
            params={"filter": f'userName sw "{me.name}-"', "startIndex": start, "count": 500},
        ).json()
        for user in page["Resources"]:
            assert user["userName"] not in found, f"{user['userName']} twice"
            found[user["userName"]] = user
        start += page["itemsPerPage"]
        if not page["itemsPerPage"] or start > page["totalResults"]:
            break
    for name, user_id in me.created.items():
        assert name in found, f"acknowledged create of {name} lost"
        assert found[name]["id"] == user_id
    assert set(found) <= me.sent_creates, "a user nobody sent"
    assert len(set(found) - set(me.created)) <= 1, "one create at most was in flight"
    for user_id, sent in me.patches.items():
        last_acked = max((i for i, (_, ok) in enumerate(sent) if ok), default=None)
        if last_acked is None:
            continue
        allowed = {value for value, _ in sent[last_acked:]}  # the acknowledged, or one after
        user = next(u for u in found.values() if u["id"] == user_id)
        assert user["displayName"] in allowed, f"acknowledged PATCH of {user_id} lost"
