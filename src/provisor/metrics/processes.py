"""Metrics across processes: the folder where every process of a server writes its metrics
(prometheus-client's multi-process mode), and the text a scrape answers.

``provisor serve`` prepares the folder before it starts its workers and its jobs process
(:func:`prepare`: ``PROMETHEUS_MULTIPROC_DIR`` when the environment sets it, else
``<data-dir>/metrics/<port>``; emptied at start, so that a server killed outright leaves
nothing behind for long) and marks each process that ends dead (:func:`process_ended`: its
live gauges, such as running jobs, no longer count). Every worker then answers a scrape with
the sum of every process's files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    generate_latest,
    multiprocess,
    start_http_server,
    values,
)
from prometheus_client.registry import Collector

from provisor.metrics.instruments import instruments

ENV = "PROMETHEUS_MULTIPROC_DIR"
# The text format every Prometheus reads (what generate_latest writes)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def folder() -> Path | None:
    """The multi-process folder of this process, or None (its metrics are in memory)."""
    path = os.environ.get(ENV)
    return Path(path) if path else None


def prepare(default: Path) -> Path:
    """Set up the folder for the processes about to start: the environment's, else
    ``default``; created, and emptied of a previous run's files (its processes are gone). Call
    before any instrument is used in this process and before the processes start (they
    inherit the environment)."""
    given = os.environ.get(ENV)
    path = Path(given) if given else default
    path.mkdir(parents=True, exist_ok=True)
    for leftover in path.glob("*.db"):
        leftover.unlink()
    os.environ[ENV] = str(path)
    # this process's instruments, built after this, write to the files
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return path


def process_ended(pid: int) -> None:
    """A process of the server ended: its live gauges no longer count (its counters do)."""
    path = folder()
    if path is not None and path.is_dir():
        multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]


def listen(address: str, port: int) -> Callable[[], None]:
    """Serve this process's metrics (every process's, in a multi-process folder) in plain HTTP
    on ``address``:``port``, without authentication, from a thread (``provisor worker`` with
    ``PROVISOR_METRICS_PORT``); the function that stops it."""
    path = folder()
    if path is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, str(path))  # type: ignore[no-untyped-call]
    else:
        registry = instruments().registry
    server, thread = start_http_server(port, addr=address, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

    return stop


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """The Prometheus text of a scrape: every process's metrics (or this process's, without
    a folder), then the ``extra`` collectors' (computed now)."""
    path = folder()
    if path is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, str(path))  # type: ignore[no-untyped-call]
        text = generate_latest(registry)
    else:
        text = generate_latest(instruments().registry)
    others = CollectorRegistry(auto_describe=False)
    for collector in extra:
        others.register(collector)
    return text + generate_latest(others)
