"""Benchmark of the proxy's overhead: what a SCIM request costs through provisor's proxy over
what the back-end takes for it alone.

provisor B (``provisor serve``, inbound rate limit lifted) is the back-end: its own ``/scim``
with ``--users`` users. provisor A has a proxy system of type "SCIM System" on B's ``/scim``
(HTTP Basic, a technical user of B). One client sends, one after the other and alternately,
the same request to B directly and to A's proxy (so that both see the same machine), for:

* ``GET /ServiceProviderConfig`` (the proxy answers it without calling the back-end);
* ``GET /Users/{id}``;
* ``GET /Users?filter=userName eq "..."``;
* ``PUT /Users/{id}`` (a write: the displayName changed, two users so the two never collide).

Per request: the median and p99 latency of each path and what the proxy adds (median and
p99 of proxy minus direct), marked against the goal: a proxy call adds at most 5 ms (median);
and the CPU time provisor A spent per proxy call (from /proc: it serves nothing else), the
figure that holds on a busy machine, where waiting for a core inflates every latency.
``--json FILE`` writes the figures.

    python benchmarks/proxy_overhead.py --compare
    python benchmarks/proxy_overhead.py --compare --requests 500 --json proxy.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.realtime import _credentials, cpu_seconds, provisor, serving, user  # noqa: E402
from benchmarks.scim_directory import basic_auth  # noqa: E402

GOAL_MS = 5.0  # what a proxy call may add to the back-end's own time (median)
PROXY_PATH = "/ipsproxy/service/api/v1/scim"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def measure(
    direct: httpx.Client, proxy: httpx.Client, request: Callable[[httpx.Client, int], Any], n: int
) -> dict[str, Any]:
    """``n`` requests each way, alternately; latencies in ms and what the proxy adds."""
    times: dict[str, list[float]] = {"direct": [], "proxy": []}
    for i in range(n):
        for name, client in (("direct", direct), ("proxy", proxy)):
            began = time.perf_counter()
            answer = request(client, i)
            times[name].append((time.perf_counter() - began) * 1000)
            if answer.status_code >= 300:
                raise SystemExit(f"{name}: HTTP {answer.status_code}: {answer.text[:300]}")
    added = [p - d for p, d in zip(times["proxy"], times["direct"], strict=True)]
    return {
        "requests": n,
        "direct_p50_ms": statistics.median(times["direct"]),
        "direct_p99_ms": percentile(times["direct"], 0.99),
        "proxy_p50_ms": statistics.median(times["proxy"]),
        "proxy_p99_ms": percentile(times["proxy"], 0.99),
        "added_p50_ms": statistics.median(times["proxy"]) - statistics.median(times["direct"]),
        "added_p99_ms": percentile(added, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--compare",
        action="store_true",
        help="the back-end directly and through the proxy, in one run (the default)",
    )
    parser.add_argument("--requests", type=int, default=300, help="of each kind, each way")
    parser.add_argument("--users", type=int, default=1000, help="users in the back-end")
    parser.add_argument("--warmup", type=int, default=20, help="requests of each kind first")
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="provisor-proxy-overhead-"))
    with (
        serving(work / "a", None, None) as (a_url, a_auth, a_pid),
        provisor(work / "b", None, None) as (b_url, b_auth),
    ):
        client_id, secret = _credentials(b_auth)
        with httpx.Client(base_url=a_url, headers={"Authorization": a_auth}, timeout=60) as api:
            system = api.post(
                "/api/v1/systems",
                json={
                    "name": "Proxy of B",
                    "type": "SCIM System",
                    "role": "proxy",
                    "properties": {
                        "URL": f"{b_url}/scim",
                        "Authentication": "BasicAuthentication",
                        "User": client_id,
                        "Password": secret,
                    },
                },
            )
            system.raise_for_status()
            made = api.post(
                "/api/v1/clients", json={"name": "proxy-benchmark", "permissions": ["proxy_api"]}
            )
            made.raise_for_status()
        proxy_auth = basic_auth(made.json()["clientId"], made.json()["clientSecret"])
        direct = httpx.Client(
            base_url=f"{b_url}/scim", headers={"Authorization": b_auth}, timeout=60
        )
        proxy = httpx.Client(
            base_url=f"{a_url}{PROXY_PATH}/{system.json()['id']}",
            headers={"Authorization": proxy_auth},
            timeout=60,
        )
        with direct, proxy:
            ids = load(direct, args.users)
            chosen = ids[len(ids) // 2]
            writes = {"direct": ids[0], "proxy": ids[1]}

            def put(client: httpx.Client, i: int) -> httpx.Response:
                which = "direct" if client is direct else "proxy"
                n = 0 if which == "direct" else 1
                body = {**user(n, f"Changed {which} {i}"), "id": writes[which]}
                return client.put(f"/Users/{writes[which]}", json=body)

            kinds: dict[str, Callable[[httpx.Client, int], httpx.Response]] = {
                "GET /ServiceProviderConfig": lambda c, i: c.get("/ServiceProviderConfig"),
                "GET /Users/{id}": lambda c, i: c.get(f"/Users/{chosen}"),
                'GET /Users?filter=userName eq "..."': lambda c, i: c.get(
                    "/Users", params={"filter": f'userName eq "rt{(i * 7) % args.users:06d}"'}
                ),
                "PUT /Users/{id}": put,
            }
            results = {}
            for name, request in kinds.items():
                measure(direct, proxy, request, args.warmup)
                spent = cpu_seconds(a_pid)
                results[name] = measure(direct, proxy, request, args.requests)
                spent = cpu_seconds(a_pid) - spent  # A only serves the proxy's calls
                results[name]["proxy_cpu_ms_per_call"] = spent * 1000 / args.requests
    report(args, results)


def load(client: httpx.Client, users: int) -> list[str]:
    """``users`` users in the back-end (Bulk); their ids."""
    ids: list[str] = []
    for start in range(0, users, 500):
        operations = [
            {"method": "POST", "path": "/Users", "bulkId": str(i), "data": user(i, "First")}
            for i in range(start, min(users, start + 500))
        ]
        answer = client.post(
            "/Bulk",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": operations,
            },
        )
        answer.raise_for_status()
        ids += [op["location"].rsplit("/", 1)[1] for op in answer.json()["Operations"]]
    return ids


def report(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    load_average = os.getloadavg()
    print(
        f"proxy overhead: {args.requests} requests of each kind each way, one client, "
        f"back-end provisor B /scim with {args.users:,} users (SQLite); load average "
        f"{load_average[0]:.2f} {load_average[1]:.2f} {load_average[2]:.2f}"
    )
    print(
        f"{'request':<38} {'direct p50':>10} {'p99':>7} {'proxy p50':>10} {'p99':>7} "
        f"{'added p50':>10} {'added p99':>10} {'A cpu ms':>9}  goal (added p50 <= {GOAL_MS:g} ms)"
    )
    met = True
    for name, r in results.items():
        ok = r["added_p50_ms"] <= GOAL_MS
        met = met and ok
        print(
            f"{name:<38} {r['direct_p50_ms']:>10.2f} {r['direct_p99_ms']:>7.2f} "
            f"{r['proxy_p50_ms']:>10.2f} {r['proxy_p99_ms']:>7.2f} {r['added_p50_ms']:>10.2f} "
            f"{r['added_p99_ms']:>10.2f} {r['proxy_cpu_ms_per_call']:>9.2f}  "
            f"{'met' if ok else 'NOT met'}"
        )
    print(f"proxy overhead goal (<= {GOAL_MS:g} ms added, median): {'met' if met else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "requests": args.requests,
                    "users": args.users,
                    "load_average": load_average,
                    "goal_added_ms": GOAL_MS,
                    "results": results,
                    "met": met,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
