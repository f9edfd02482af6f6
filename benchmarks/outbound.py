"""Benchmark of the outbound policy's cost per HTTP request (issue 13 item 5).

A uvicorn server on loopback answers ``GET /ping`` with a small JSON body. The same requests
go through :class:`~provisor.connectors.http.HTTPClient` with two transports: httpx's own
(what main used) and the policy's :class:`~provisor.connectors.outbound.GuardedTransport`
(default policy). Measured, each in rounds alternating the two transports to even out noise:

* keep-alive: one pooled connection, one request at a time (the policy checks the host as
  written on each request);
* a new connection per request, to ``127.0.0.1`` and to ``localhost`` (the policy resolves
  the name and checks every address before each connection);
* the checks alone, without the network.

Run from the project root::

    python benchmarks/outbound.py                  # 2,000 requests a mode, 5 rounds
    python benchmarks/outbound.py --requests 5000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import statistics
import threading
import time
import timeit
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import httpx
import uvicorn

from provisor.connectors.base import ConnectorConfig, Role
from provisor.connectors.http import HTTPClient
from provisor.connectors.outbound import DEFAULT, GuardedTransport, OutboundPolicy
from provisor.connectors.tls import ssl_context

BODY = b'{"ok": true}'
LOOPBACK = ipaddress.ip_address("127.0.0.1")


async def app(scope: Any, receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    headers = [(b"content-type", b"application/json"), (b"content-length", b"12")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


@contextmanager
def serving() -> Iterator[int]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = int(server.servers[0].sockets[0].getsockname()[1])
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def transport(guarded: bool, config: ConnectorConfig) -> httpx.AsyncBaseTransport:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    if guarded:
        return GuardedTransport(DEFAULT, verify=ssl_context(config), limits=limits)
    return httpx.AsyncHTTPTransport(verify=ssl_context(config), limits=limits)


async def keep_alive(url: str, guarded: bool, requests: int) -> float:
    config = ConnectorConfig("bench", "bench", Role.TARGET, {"URL": url})
    client = HTTPClient(config, transport=transport(guarded, config))
    await client.request("GET", "/ping")  # connect first
    started = time.perf_counter()
    for _ in range(requests):
        await client.request("GET", "/ping")
    elapsed = time.perf_counter() - started
    await client.aclose()
    return elapsed


async def new_connections(url: str, guarded: bool, requests: int) -> float:
    config = ConnectorConfig("bench", "bench", Role.TARGET, {"URL": url})
    client = HTTPClient(config, transport=transport(guarded, config))
    started = time.perf_counter()
    for _ in range(requests):
        await client.request("GET", "/ping", headers={"Connection": "close"})
    elapsed = time.perf_counter() - started
    await client.aclose()
    return elapsed


def checks(count: int = 20000) -> None:
    """The policy's own work, without the network: microseconds a check."""
    lists = OutboundPolicy.of(
        deny=["10.0.0.0/8", "*.corp.example"], allow=["api.example.org", "192.0.2.0/24"]
    )
    print("policy checks alone, microseconds a check")
    for name, policy in (("default policy", DEFAULT), ("deny and allow lists", lists)):
        for host in ("127.0.0.1", "api.example.org"):
            seconds = timeit.timeit(partial(policy.host_problem, host), number=count)
            print(f"  {name:22} host {host:16} {seconds / count * 1e6:6.1f}")
        seconds = timeit.timeit(partial(policy.address_problem, "h", LOOPBACK), number=count)
        print(f"  {name:22} one resolved address  {seconds / count * 1e6:6.1f}")


async def main(requests: int, rounds: int) -> None:
    checks()
    with serving() as port:
        modes: list[tuple[str, Callable[[bool], Awaitable[float]]]] = [
            (
                "keep-alive, 127.0.0.1",
                lambda g: keep_alive(f"http://127.0.0.1:{port}", g, requests),
            ),
            (
                "new connection, 127.0.0.1",
                lambda g: new_connections(f"http://127.0.0.1:{port}", g, requests),
            ),
            (
                "new connection, localhost",
                lambda g: new_connections(f"http://localhost:{port}", g, requests),
            ),
        ]
        print(f"{requests} requests a mode, median of {rounds} rounds, microseconds a request")
        print(f"{'mode':28} {'httpx (main)':>13} {'policy':>9} {'overhead':>9}")
        for name, run in modes:
            plain: list[float] = []
            guarded: list[float] = []
            for _ in range(rounds):
                plain.append(await run(False))
                guarded.append(await run(True))
            before = statistics.median(plain) / requests * 1e6
            after = statistics.median(guarded) / requests * 1e6
            print(f"{name:28} {before:13.0f} {after:9.0f} {after - before:+9.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.rounds))
