"""Slowloris against ``provisor serve``: is a normal request still answered, and how fast?

Starts ``provisor serve`` (one worker, no jobs, SQLite in a temporary folder) from the source
tree given by --src, with the file descriptor limit most systems give a service (--nofile,
1024), opens --connections slow connections that send a request line and then one header
line every --interval seconds (never finishing), and meanwhile times a normal
``GET /health`` every half second. Reports how many normal requests were answered, their
latencies, and how many slow connections the server closed.

    python benchmarks/slowloris.py --src /work/main/src --connections 1500
    python benchmarks/slowloris.py --src src --connections 1500
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(src: Path, data: Path, port: int, nofile: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    env["PYTHONPATH"] = str(src.resolve())

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    command = [sys.executable, "-m", "provisor", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--data-dir", str(data), "--workers", "1", "--no-jobs"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        preexec_fn=limit,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("provisor serve did not start")


def slow_connections(
    port: int, count: int, interval: float, stop: threading.Event
) -> dict[str, int]:
    """Hold ``count`` slow connections open, reopening none; count those the server closed."""
    socks: list[socket.socket] = []
    refused = 0
    for _ in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            socks.append(sock)
        except OSError:
            refused += 1
    closed = 0
    while not stop.wait(interval):
        alive = []
        for sock in socks:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
                alive.append(sock)
            except OSError:
                closed += 1
                sock.close()
        socks = alive
    for sock in socks:
        sock.close()
    return {"opened": count - refused, "refused": refused, "closed_by_server": closed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path("src"))
    parser.add_argument("--connections", type=int, default=1500)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--nofile", type=int, default=1024)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        server = start(args.src, Path(data), port, args.nofile)
        stop = threading.Event()
        held: dict[str, int] = {}
        slow = threading.Thread(
            target=lambda: held.update(
                slow_connections(port, args.connections, args.interval, stop)
            )
        )
        slow.start()
        time.sleep(2)  # let the slow connections open
        latencies: list[float] = []
        failures = 0
        end = time.monotonic() + args.duration
        while time.monotonic() < end:
            began = time.monotonic()
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code
                if status == 200:
                    latencies.append(time.monotonic() - began)
                else:
                    failures += 1
            except httpx.HTTPError:
                failures += 1
            time.sleep(0.5)
        stop.set()
        slow.join()
        server.terminate()
        server.wait(timeout=60)
    result = {
        "src": str(args.src),
        "slow_connections": args.connections,
        "server_nofile": args.nofile,
        **held,
        "normal_answered": len(latencies),
        "normal_failed_or_timed_out_10s": failures,
        "latency_ms_median": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "latency_ms_max": round(max(latencies) * 1000, 1) if latencies else None,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
