"""A job worker that dies (SIGKILL, no clean-up) at a chosen point of writing a page.

``run(data_dir, database_url, job_id, point, times)``, in a process of its own, claims the
job and runs it; it kills its process right after the ``times``-th time the job passes
``point`` (``none``: it runs to the end):

* ``intents`` — a target's write intents are recorded (durable), nothing of them sent yet;
* ``create`` — a target took one create (the directory and SCIM: written; CSV: waiting);
* ``replace`` — a CSV target's file was replaced (rows on disk, their page not settled);
* ``settle`` — one target's operational data of a page was committed (others maybe not);
* ``commit`` — a page's checkpoint and statistics were committed.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provisor.connectors.csv import table
from provisor.connectors.csv.connector import CSVConnector
from provisor.connectors.directory import DirectoryConnector
from provisor.connectors.scim.connector import SCIMConnector
from provisor.context import Context
from provisor.jobs.runner import Runner
from provisor.jobs.store import OperationalStore
from provisor.runtime import Services
from provisor.settings import Settings

POINTS: dict[str, list[tuple[Any, str]]] = {
    "intents": [(OperationalStore, "intend")],
    "create": [(CSVConnector, "create"), (DirectoryConnector, "create"), (SCIMConnector, "create")],
    "replace": [(table, "replace")],
    "settle": [(OperationalStore, "settle")],
    "commit": [(Runner, "commit")],
}


def arm(point: str, times: int) -> None:
    """Kill this process after the ``times``-th pass of ``point``."""
    passes = 0

    def passed() -> None:
        nonlocal passes
        passes += 1
        if passes == times:
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        if asyncio.iscoroutinefunction(original):

            @functools.wraps(original)
            async def later(*args: Any, **kwargs: Any) -> Any:
                result = await original(*args, **kwargs)
                passed()
                return result

            return later

        @functools.wraps(original)
        def after(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            passed()
            return result

        return after

    for owner, name in POINTS.get(point, []):
        setattr(owner, name, wrap(getattr(owner, name)))


def run(data_dir: str, database_url: str | None, job_id: str, point: str, times: int) -> None:
    arm(point, times)
    services = Services.open(Settings(data_dir=Path(data_dir), database_url=database_url))
    try:
        job = services.jobs.claim(Context.system("worker"), "crashing-worker", job_id)
        if job is None:
            raise RuntimeError(f"job {job_id} cannot be claimed")
        asyncio.run(services.jobs.run(Context.system("worker"), job))
    finally:
        services.close()
