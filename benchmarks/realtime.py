"""Benchmark of real-time provisioning: one user change pushed to provisor reaches two targets.

provisor A (``provisor serve``, its inbound rate limit lifted) has a Local Identity Directory
source with ``--users`` users and two targets: "SCIM System" → provisor B (another
``provisor serve``) and "LDAP Server" → a slapd started here. ``--concurrency`` clients push
changes to ``/ipsproxy/service/api/v1/systems/{source}/entities/user``:

1. every user once (POST: created in both targets);
2. every user again with a changed ``displayName`` (PUT: updated in both targets).

Per phase: changes/s and the latency of a push (p50, p99, max), each one answered only after
both targets were written. Every answer is checked (``Finished Successfully``, the expected
state in each target) and the targets are counted at the end. Targets on this machine:
p50 <= 100 ms, p99 <= 500 ms, >= 200 changes/s.

    .venv/bin/python benchmarks/realtime.py                   # 2,000 users, SQLite
    .venv/bin/python benchmarks/realtime.py --users 5000 --concurrency 16
    .venv/bin/python benchmarks/realtime.py --database-url \\
        postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scim_directory import (  # noqa: E402
    basic_auth,
    create_database,
    drop_database,
    executable,
    free_port,
    provisor_env,
    server_process,
    wait_until_up,
)
from benchmarks.sync import count_ldap, database_url, pg_admin_url  # noqa: E402
from provisor.context import Context  # noqa: E402

CTX = Context.system("benchmark")  # the service calls the benchmark makes directly

LDAP_PEOPLE = "ou=people,dc=example,dc=org"
LDAP_GROUPS = "ou=groups,dc=example,dc=org"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
TARGETS = {"p50_ms": 100.0, "p99_ms": 500.0, "per_second": 200.0}


@contextlib.contextmanager
def provisor(data_dir: Path, url: str | None, workers: int | None) -> Iterator[tuple[str, str]]:
    """``provisor serve`` without the inbound rate limit: base URL and the admin's Basic auth."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    cmd = [executable("provisor"), "serve", "--port", str(port), "--data-dir", str(data_dir)]
    if workers:
        cmd += ["--workers", str(workers)]
    env = provisor_env(url)
    env["PROVISOR_INBOUND_THROTTLE_PER_MINUTE"] = "0"
    env["PROVISOR_INBOUND_MAX_PER_MINUTE"] = "0"
    env["PROVISOR_LOG_LEVEL"] = "warning"
    log = data_dir / "server.log"
    base = f"http://127.0.0.1:{port}"
    with server_process(cmd, env, log) as proc:
        wait_until_up(f"{base}/health", proc, log, timeout=120)
        admin = json.loads((data_dir / "initial-admin.json").read_text())
        yield base, basic_auth(admin["client_id"], admin["client_secret"])


def user(i: int, display: str) -> dict[str, Any]:
    return {
        "schemas": [CORE_USER],
        "userName": f"rt{i:06d}",
        "name": {"givenName": f"Given{i}", "familyName": f"Family{i}"},
        "displayName": display,
        "emails": [{"value": f"rt{i:06d}@example.org", "type": "work", "primary": True}],
        "active": True,
    }


def setup(base: str, auth: str, b: tuple[str, str], slapd: Any, users: int) -> dict[str, Any]:
    """Systems, a real-time technical user and the users in A's directory."""
    headers = {"Authorization": auth}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as api:
        source = api.post(
            "/api/v1/systems",
            json={"name": "LID", "type": "Local Identity Directory", "role": "source"},
        ).json()
        b_url, b_auth = b
        client_id, secret = _credentials(b_auth)
        for body in (
            {
                "name": "Provisor B",
                "type": "SCIM System",
                "role": "target",
                "sourceSystemIds": [source["id"]],
                "properties": {
                    "URL": f"{b_url}/scim",
                    "Authentication": "BasicAuthentication",
                    "User": client_id,
                    "Password": secret,
                },
            },
            {
                "name": "OpenLDAP",
                "type": "LDAP Server",
                "role": "target",
                "sourceSystemIds": [source["id"]],
                "properties": {
                    "ldap.url": slapd.url,
                    "ldap.user": slapd.bind_dn,
                    "ldap.password": slapd.password,
                    "ldap.user.path": LDAP_PEOPLE,
                    "ldap.group.path": LDAP_GROUPS,
                },
            },
        ):
            created = api.post("/api/v1/systems", json=body)
            created.raise_for_status()
        entities = []
        for start in range(0, users, 500):
            operations = [
                {"method": "POST", "path": "/Users", "bulkId": str(i), "data": user(i, "First")}
                for i in range(start, min(users, start + 500))
            ]
            answer = api.post(
                "/scim/Bulk",
                json={
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                    "Operations": operations,
                },
            )
            answer.raise_for_status()
            for op in answer.json()["Operations"]:
                entities.append(op["location"].rsplit("/", 1)[1])
    return {"source": source["id"], "ids": entities}


def _credentials(auth: str) -> tuple[str, str]:
    import base64

    client_id, _, secret = base64.b64decode(auth.split(" ", 1)[1]).decode().partition(":")
    return client_id, secret


async def push_all(
    base: str, auth: str, source: str, changes: list[tuple[str, str, dict[str, Any]]], c: int
) -> dict[str, Any]:
    """Push ``(method, id, body)`` changes with ``c`` clients; latencies and failures."""
    url = f"{base}/ipsproxy/service/api/v1/systems/{source}/entities/user"
    queue: asyncio.Queue[tuple[str, str, dict[str, Any]]] = asyncio.Queue()
    for change in changes:
        queue.put_nowait(change)
    latencies: list[float] = []
    problems: list[str] = []
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    async with httpx.AsyncClient(
        headers={"Authorization": auth}, timeout=60, limits=limits
    ) as client:

        async def worker() -> None:
            while not queue.empty():
                method, entity_id, body = queue.get_nowait()
                target = url if method == "POST" else f"{url}/{entity_id}"
                began = time.perf_counter()
                answer = await client.request(method, target, json=body)
                latencies.append(time.perf_counter() - began)
                data = answer.json() if answer.content else {}
                if answer.status_code >= 300 or data.get("status") != "Finished Successfully":
                    problems.append(f"{answer.status_code} {answer.text[:300]}")

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(c)))
        wall = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        "changes": len(changes),
        "seconds": wall,
        "per_second": len(changes) / wall,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "max_ms": ordered[-1] * 1000,
        "failures": problems,
    }


def count_targets(b: tuple[str, str], slapd: Any) -> dict[str, int]:
    with httpx.Client(headers={"Authorization": b[1]}, timeout=60) as client:
        scim = client.get(f"{b[0]}/scim/Users", params={"count": 1}).json()["totalResults"]
    return {"Provisor B": int(scim), "OpenLDAP": count_ldap(slapd)["users"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, help="worker processes of provisor A and B")
    parser.add_argument("--database-url", help="PostgreSQL server for A and B (fresh databases)")
    args = parser.parse_args()
    from tests.connectors.ldap_server import running_slapd

    work = Path(tempfile.mkdtemp(prefix="provisor-realtime-"))
    urls: list[str | None] = [None, None]
    admin = pg_admin_url(args.database_url) if args.database_url else ""
    if args.database_url:
        urls = [database_url(args.database_url, create_database(admin)) for _ in "ab"]
    try:
        with (
            provisor(work / "a", urls[0], args.workers) as (base, auth),
            provisor(work / "b", urls[1], args.workers) as b,
            running_slapd(work / "slapd") as slapd,
        ):
            slapd.add(
                (dn, {"objectClass": ["organizationalUnit"], "ou": [dn.split(",")[0][3:]]})
                for dn in (LDAP_PEOPLE, LDAP_GROUPS)
            )
            ready = setup(base, auth, b, slapd, args.users)
            pusher = _realtime_client(work / "a", urls[0])
            ids = ready["ids"]
            creates = [("POST", i, {**user(n, "First"), "id": i}) for n, i in enumerate(ids)]
            updates = [("PUT", i, {**user(n, f"Changed {n}"), "id": i}) for n, i in enumerate(ids)]
            results = {}
            for label, changes in (("create", creates), ("update", updates)):
                results[label] = asyncio.run(
                    push_all(base, pusher, ready["source"], changes, args.concurrency)
                )
            counts = count_targets(b, slapd)
    finally:
        for url in urls:
            if url:
                drop_database(admin, url.rsplit("/", 1)[1])
    print(
        f"real-time: {args.users:,} users, {args.concurrency} clients, "
        f"{'PostgreSQL' if args.database_url else 'SQLite'}; targets: provisor B (SCIM), slapd"
    )
    print(f"{'phase':<8} {'changes/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} failures")
    for label, r in results.items():
        print(
            f"{label:<8} {r['per_second']:>10.0f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
            f"{r['max_ms']:>8.1f} {len(r['failures'])}"
        )
        for problem in r["failures"][:3]:
            print(f"   {problem}")
    print(f"targets hold: {counts} (expected {args.users:,} each)")
    met = all(
        r["p50_ms"] <= TARGETS["p50_ms"]
        and r["p99_ms"] <= TARGETS["p99_ms"]
        and r["per_second"] >= TARGETS["per_second"]
        for r in results.values()
    )
    print(f"targets (p50 <= 100 ms, p99 <= 500 ms, >= 200/s): {'met' if met else 'NOT met'}")


def _realtime_client(data_dir: Path, url: str | None) -> str:
    """A technical user of A with realtime_api (created in A's store)."""
    from provisor.runtime import Services
    from provisor.settings import Settings

    services = Services.open(Settings(data_dir=data_dir, database_url=url))
    try:
        _, credentials = services.clients.create(CTX, "realtime-benchmark", ["realtime_api"])
    finally:
        services.close()
    return basic_auth(credentials.client_id, credentials.client_secret)


if __name__ == "__main__":
    main()
