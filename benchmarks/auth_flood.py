"""Benchmark of authentication under attack: what a wrong-password flood does to other
callers, and whether failure time tells which client ids exist.

``provisor serve --workers 1`` on SQLite, in a subprocess, then:

1. ``--requests`` sequential ``GET /scim/Users?count=1`` of a client whose secret is
   proven (HTTP Basic): p50 and p99 latency, alone;
2. the time of one failed authentication with a wrong secret, for ``--ids`` known client
   ids and as many unknown ones (one attempt per id, fewer than the per-address budget);
3. the latency of 1. again while another process floods the server with ``--threads``
   threads sending wrong secrets for a known client id (a new secret each time), and what
   the flood got.

Run it with the code to measure on PYTHONPATH, from the project root::

    PYTHONPATH=$PWD/src python3 benchmarks/auth_flood.py
    PYTHONPATH=/path/to/other/checkout/src python3 benchmarks/auth_flood.py --requests 200
"""

from __future__ import annotations

import argparse
import collections
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms"


def timed(client: httpx.Client, url: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        began = time.perf_counter()
        answer = client.get(url)
        times.append(time.perf_counter() - began)
        assert answer.status_code == 200, answer.text
    return times


def flood(base: str, client_id: str, threads: int, seconds: float) -> None:
    """The flooding process: wrong secrets as fast as the server answers; prints the
    statuses it got."""
    counts: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
            while time.monotonic() < stop:
                try:
                    status = client.get(
                        "/scim/Users", auth=(client_id, secrets.token_urlsafe(16))
                    ).status_code
                except httpx.TransportError:
                    status = 0
                with lock:
                    counts[status] += 1

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(" ".join(f"{status}:{n}" for status, n in sorted(counts.items())), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--ids", type=int, default=8)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--flood", nargs=3, metavar=("BASE", "CLIENT_ID", "SECONDS"))
    args = parser.parse_args()
    if args.flood:
        flood(args.flood[0], args.flood[1], args.threads, float(args.flood[2]))
        return

    from provisor.context import Context
    from provisor.runtime import Services, prepare
    from provisor.settings import Settings

    folder = Path(tempfile.mkdtemp(prefix="auth-flood-"))
    settings = Settings(data_dir=folder)
    prepare(settings)
    services = Services.open(settings)
    ctx = Context.system("benchmark")
    try:
        _, normal = services.clients.create(ctx, "normal", ["manage_users"])
        _, victim = services.clients.create(ctx, "victim", ["manage_users"])
        known = [
            services.clients.create(ctx, f"known-{n}", ["manage_users"])[1] for n in range(args.ids)
        ]
    finally:
        services.close()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    command = [sys.executable, "-m", "provisor", "serve", "--port", str(port), "--workers", "1"]
    command += ["--data-dir", str(folder), "--no-jobs"]
    server = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    url = "/scim/Users?count=1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
            assert time.monotonic() < deadline and server.poll() is None
        auth = (normal.client_id, normal.client_secret)
        with httpx.Client(base_url=base, auth=auth, timeout=120) as client:
            client.get(url)  # the secret proven once
            alone = timed(client, url, args.requests)
            print(f"1. normal request alone ({args.requests}): {percentiles(alone)}")
            failures: dict[str, list[float]] = {"known": [], "unknown": []}
            with httpx.Client(base_url=base, timeout=120) as anonymous:
                for creds in known:
                    for kind, client_id in (
                        ("known", creds.client_id),
                        ("unknown", str(uuid.uuid4())),
                    ):
                        began = time.perf_counter()
                        answer = anonymous.get(
                            url, auth=(client_id, "wrong-" + secrets.token_hex(8))
                        )
                        failures[kind].append(time.perf_counter() - began)
                        assert answer.status_code == 401, answer.status_code
            for kind, samples in failures.items():
                print(f"2. failure, {kind:7} client id ({len(samples)}): {percentiles(samples)}")
            seconds = max(20.0, args.requests * 0.5)
            flooder = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--threads",
                    str(args.threads),
                    "--flood",
                    base,
                    victim.client_id,
                    str(seconds),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(3)  # the flood under way
            during = timed(client, url, args.requests)
            print(
                f"3. normal request during a {args.threads}-thread flood:   {percentiles(during)}"
            )
            out, _ = flooder.communicate(timeout=seconds + 180)
            print(f"   the flood's answers (status:count): {out.strip()}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
