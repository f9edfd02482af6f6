"""Running the ASGI app in one or more uvicorn processes.

With several workers, each process listens on its own ``SO_REUSEPORT`` socket, so the
kernel spreads connections over the processes. (uvicorn's own multi-process mode shares
one socket, and the first process to wake accepts every pending connection: keep-alive
clients then all stick to one worker; see docs/decisions/0003-worker-processes.md.)
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

import structlog
import uvicorn

from provisor import logs, tracing
from provisor.connections import connection_options
from provisor.metrics import processes as metric_files
from provisor.settings import Settings

log = structlog.get_logger("provisor.server")

APP = "provisor.asgi:app_from_environment"
METRICS_FOLDER = "metrics"  # in the data folder: each server's (by port) metrics files


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _config(options: dict[str, Any]) -> uvicorn.Config:
    """The server's configuration, with connections guarded (settings from the environment).

    uvicorn's own lines go through provisor's JSON log (no ``log_config``: uvicorn installs
    no formatter of its own); its access log is off, the application writes its own
    (``PROVISOR_ACCESS_LOG``, :mod:`provisor.web.access`)."""
    settings = Settings()
    logs.configure(settings.log_level)
    guard = connection_options(settings, options.get("http"))
    return uvicorn.Config(
        APP, factory=True, **{**options, **guard, "log_config": None, "access_log": False}
    )


def _with_parent(parent: int) -> None:
    """Stop this child of ``provisor serve`` (process ``parent``; SIGTERM to itself: its
    graceful stop) once the serving process is gone, even before this one started. Killed
    (SIGKILL, the OOM killer), it cannot stop its children: a jobs process left running
    would go on beside the next ``provisor serve``'s."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        log.warning("provisor serve is gone: this process stops", pid=os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _worker(host: str, port: int, options: dict[str, Any], parent: int) -> None:
    _with_parent(parent)
    sock = _bind(host, port)
    sock.listen(2048)
    uvicorn.Server(_config(options)).run(sockets=[sock])


def _jobs(parent: int) -> None:
    """The process that runs jobs (settings from the PROVISOR_* environment)."""
    import asyncio

    from provisor.runtime import Services, run_jobs, yield_to_requests

    _with_parent(parent)
    settings = Settings()
    logs.configure(settings.log_level)
    tracing.configure(settings.otel_traces_url)  # job pages and target writes
    yield_to_requests(settings)  # the web workers beside it go first
    services = Services.open(settings)
    stop = asyncio.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_jobs(services, stop)

    try:
        asyncio.run(main())
    finally:
        services.close()


def run(host: str, port: int, workers: int, *, jobs: bool = True, **options: Any) -> None:
    """Serve until SIGINT/SIGTERM; then let each worker finish its requests and stop.

    With ``jobs``, one more process runs the provisioning jobs. Every process records its
    metrics in one folder (``PROMETHEUS_MULTIPROC_DIR``, prepared here), so that any worker
    answers ``/metrics`` for all of them.
    """
    settings = Settings()
    if settings.metrics:
        metric_files.prepare(settings.data_dir / METRICS_FOLDER / str(port))
    _run(host, port, workers, jobs=jobs, **options)


def _run(host: str, port: int, workers: int, *, jobs: bool = True, **options: Any) -> None:
    context = multiprocessing.get_context("spawn")
    if workers <= 1:
        runner = (
            context.Process(target=_jobs, args=(os.getpid(),), name="provisor-jobs")
            if jobs
            else None
        )
        if runner is not None:
            runner.start()
        try:
            uvicorn.Server(_config({"host": host, "port": port, **options})).run()
        finally:
            if runner is not None and runner.pid is not None and runner.is_alive():
                os.kill(runner.pid, signal.SIGTERM)
                runner.join()
            if runner is not None and runner.pid is not None:
                metric_files.process_ended(runner.pid)
        return
    # Bind (without listening) here first: a port in use fails now, with a clear error.
    probe = _bind(host, port)
    stopping = False

    def start(
        target: Any = _worker, args: tuple[Any, ...] = (host, port, options, os.getpid())
    ) -> tuple[BaseProcess, float]:
        process = context.Process(target=target, args=args)
        process.start()
        return process, time.monotonic()

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = [start() for _ in range(workers)]
    if jobs:
        processes.append(start(_jobs, (os.getpid(),)))
    try:
        while not stopping:
            time.sleep(0.5)
            for index, (process, started) in enumerate(processes):
                if process.is_alive() or stopping:
                    continue
                if time.monotonic() - started < 5:
                    log.error("a worker failed on start; stopping", exitcode=process.exitcode)
                    stopping = True
                    break
                log.warning(
                    "worker died; starting another", pid=process.pid, exitcode=process.exitcode
                )
                if process.pid is not None:
                    metric_files.process_ended(process.pid)
                is_jobs = jobs and index == len(processes) - 1
                processes[index] = start(_jobs, (os.getpid(),)) if is_jobs else start()
    finally:
        probe.close()
        for process, _ in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        for process, _ in processes:
            process.join()
            if process.pid is not None:
                metric_files.process_ended(process.pid)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
