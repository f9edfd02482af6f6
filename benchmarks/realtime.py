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

``--compare`` first measures, in the same run, what the targets take alone: the same number
of users created then changed in provisor B over SCIM (``--concurrency`` clients) and in
slapd over LDAP (as many connections), other users than real time's, so that the ratio
real-time / slowest target shows what provisor A costs. ``--json FILE`` writes the figures.

    .venv/bin/python benchmarks/realtime.py                   # 2,000 users, SQLite
    .venv/bin/python benchmarks/realtime.py --compare --users 2000 --json realtime.json
    .venv/bin/python benchmarks/realtime.py --users 5000 --concurrency 16
    .venv/bin/python benchmarks/realtime.py --database-url \\
        postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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
ALONE = 500_000  # the targets-alone writes use users from this number on (others than real time's)


@contextlib.contextmanager
def provisor(data_dir: Path, url: str | None, workers: int | None) -> Iterator[tuple[str, str]]:
    """``provisor serve`` without the inbound rate limit: base URL and the admin's Basic auth."""
    with serving(data_dir, url, workers) as (base, auth, _):
        yield base, auth


@contextlib.contextmanager
def serving(data_dir: Path, url: str | None, workers: int | None) -> Iterator[tuple[str, str, int]]:
    """``provisor`` with the pid of its main process too (see ``cpu_seconds``)."""
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
        yield base, basic_auth(admin["client_id"], admin["client_secret"]), proc.pid


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children (a server's workers), from
    /proc: what a server spent, whatever else the machine was doing (0.0 without /proc)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        total = 0.0
        for each in [pid, *map(int, children)]:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    except OSError:
        return 0.0
    return total / os.sysconf("SC_CLK_TCK")


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
    return _timings(latencies, wall, problems)


def _timings(latencies: list[float], wall: float, problems: list[str]) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "changes": len(ordered),
        "seconds": wall,
        "per_second": len(ordered) / wall,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "max_ms": ordered[-1] * 1000,
        "failures": problems,
    }


async def scim_alone(b: tuple[str, str], users: int, c: int) -> dict[str, dict[str, Any]]:
    """provisor B alone: ``users`` users POSTed, then each PUT changed, by ``c`` clients."""
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    ids: dict[int, str] = {}
    async with httpx.AsyncClient(
        base_url=f"{b[0]}/scim", headers={"Authorization": b[1]}, timeout=60, limits=limits
    ) as client:

        async def phase(label: str) -> dict[str, Any]:
            queue = list(range(users))
            latencies: list[float] = []
            problems: list[str] = []

            async def worker() -> None:
                while queue:
                    n = queue.pop()
                    began = time.perf_counter()
                    if label == "create":
                        answer = await client.post("/Users", json=user(ALONE + n, "First"))
                    else:
                        body = {**user(ALONE + n, f"Changed {n}"), "id": ids[n]}
                        answer = await client.put(f"/Users/{ids[n]}", json=body)
                    latencies.append(time.perf_counter() - began)
                    if answer.status_code >= 300:
                        problems.append(f"{answer.status_code} {answer.text[:300]}")
                    elif label == "create":
                        ids[n] = answer.json()["id"]

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(c)))
            return _timings(latencies, time.perf_counter() - began, problems)

        return {label: await phase(label) for label in ("create", "update")}


def ldap_alone(slapd: Any, users: int, c: int) -> dict[str, dict[str, Any]]:
    """slapd alone: ``users`` inetOrgPerson entries added, then each modified, over ``c``
    connections (one thread each), as provisor's LDAP connector writes them."""
    import ldap  # type: ignore[import-untyped]

    connections = [slapd.connect() for _ in range(c)]

    def phase(label: str) -> dict[str, Any]:
        latencies: list[float] = []
        problems: list[str] = []

        def write(conn: Any, numbers: range) -> None:
            for n in numbers:
                uid = f"rt{ALONE + n:06d}"
                dn = f"uid={uid},{LDAP_PEOPLE}"
                began = time.perf_counter()
                try:
                    if label == "create":
                        conn.add_s(dn, _ldap_entry(uid, n))
                    else:
                        change = [(ldap.MOD_REPLACE, "displayName", [f"Changed {n}".encode()])]
                        conn.modify_s(dn, change)
                except ldap.LDAPError as exc:
                    problems.append(f"{label} {dn}: {exc}")
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        with ThreadPoolExecutor(c) as pool:
            list(pool.map(write, connections, [range(i, users, c) for i in range(c)]))
        return _timings(latencies, time.perf_counter() - began, problems)

    try:
        return {label: phase(label) for label in ("create", "update")}
    finally:
        for conn in connections:
            conn.unbind_s()


def _ldap_entry(uid: str, n: int) -> list[tuple[str, list[bytes]]]:
    values = {
        "objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson"],
        "uid": [uid],
        "cn": [f"Given{n} Family{n}"],
        "sn": [f"Family{n}"],
        "givenName": [f"Given{n}"],
        "displayName": ["First"],
        "mail": [f"{uid}@example.org"],
    }
    return [(k, [v.encode() for v in vs]) for k, vs in values.items()]


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
    parser.add_argument(
        "--compare", action="store_true", help="measure the targets alone first, same run"
    )
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    args = parser.parse_args()
    from tests.connectors.ldap_server import running_slapd

    work = Path(tempfile.mkdtemp(prefix="provisor-realtime-"))
    urls: list[str | None] = [None, None]
    admin = pg_admin_url(args.database_url) if args.database_url else ""
    if args.database_url:
        urls = [database_url(args.database_url, create_database(admin)) for _ in "ab"]
    alone: dict[str, dict[str, dict[str, Any]]] = {}
    try:
        with (
            serving(work / "a", urls[0], args.workers) as (base, auth, a_pid),
            provisor(work / "b", urls[1], args.workers) as b,
            running_slapd(work / "slapd") as slapd,
        ):
            slapd.add(
                (dn, {"objectClass": ["organizationalUnit"], "ou": [dn.split(",")[0][3:]]})
                for dn in (LDAP_PEOPLE, LDAP_GROUPS)
            )
            ready = setup(base, auth, b, slapd, args.users)
            if args.compare:
                alone["Provisor B (SCIM)"] = asyncio.run(
                    scim_alone(b, args.users, args.concurrency)
                )
                alone["slapd (LDAP)"] = ldap_alone(slapd, args.users, args.concurrency)
            pusher = _realtime_client(work / "a", urls[0])
            ids = ready["ids"]
            creates = [("POST", i, {**user(n, "First"), "id": i}) for n, i in enumerate(ids)]
            updates = [("PUT", i, {**user(n, f"Changed {n}"), "id": i}) for n, i in enumerate(ids)]
            results = {}
            for label, changes in (("create", creates), ("update", updates)):
                spent = cpu_seconds(a_pid)
                results[label] = asyncio.run(
                    push_all(base, pusher, ready["source"], changes, args.concurrency)
                )
                spent = cpu_seconds(a_pid) - spent
                results[label]["a_cpu_ms_per_change"] = spent * 1000 / len(changes)
            counts = count_targets(b, slapd)
    finally:
        for url in urls:
            if url:
                drop_database(admin, url.rsplit("/", 1)[1])
    expected = args.users * (2 if args.compare else 1)
    report(args, results, alone, counts, expected)


def report(
    args: argparse.Namespace,
    results: dict[str, dict[str, Any]],
    alone: dict[str, dict[str, dict[str, Any]]],
    counts: dict[str, int],
    expected: int,
) -> None:
    load = os.getloadavg()
    print(
        f"real-time: {args.users:,} users, {args.concurrency} clients, "
        f"{'PostgreSQL' if args.database_url else 'SQLite'}; targets: provisor B (SCIM), slapd; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        f"{'who':<22} {'phase':<8} {'changes/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        "failures"
    )
    rows = [(name, phases) for name, phases in alone.items()]
    rows.append(("real time through A", results))
    for name, phases in rows:
        for label, r in phases.items():
            print(
                f"{name:<22} {label:<8} {r['per_second']:>10.0f} {r['p50_ms']:>8.1f} "
                f"{r['p99_ms']:>8.1f} {r['max_ms']:>8.1f} {len(r['failures'])}"
            )
            for problem in r["failures"][:3]:
                print(f"   {problem}")
    ratios = {}
    for label, r in results.items():
        print(f"{label}: provisor A's CPU per change {r['a_cpu_ms_per_change']:.2f} ms")
        if alone:
            slowest = min(phases[label]["per_second"] for phases in alone.values())
            ratios[label] = r["per_second"] / slowest
            print(f"{label}: real time / slowest target alone = x{ratios[label]:.2f}")
    print(f"targets hold: {counts} (expected {expected:,} each)")
    marks = {}
    for label, r in results.items():
        marks[label] = {
            "per_second": r["per_second"] >= TARGETS["per_second"],
            "p99_ms": r["p99_ms"] <= TARGETS["p99_ms"],
            "p50_ms": r["p50_ms"] <= TARGETS["p50_ms"],
        }
        shown = ", ".join(
            f"{name} {'met' if ok else 'NOT met'}" for name, ok in marks[label].items()
        )
        print(f"goals for {label} (>= 200/s, p99 <= 500 ms, p50 <= 100 ms): {shown}")
    met = all(all(m.values()) for m in marks.values()) and not any(
        r["failures"] for r in results.values()
    )
    print(f"real-time goals: {'met' if met else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "users": args.users,
                    "concurrency": args.concurrency,
                    "database": "postgresql" if args.database_url else "sqlite",
                    "load_average": load,
                    "alone": alone,
                    "realtime": results,
                    "ratio_to_slowest_target": ratios,
                    "targets_hold": counts,
                    "goals": TARGETS,
                    "marks": marks,
                    "met": met,
                },
                indent=2,
            )
        )


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
