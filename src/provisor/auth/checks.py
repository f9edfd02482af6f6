"""Checking client secrets (Argon2) in a bounded pool, so that a flood of guesses cannot
take every worker thread of the server."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from provisor.errors import TooManyRequestsError

T = TypeVar("T")

MAX_WAITING = 16


class SecretChecks:
    """Runs secret checks on ``workers`` threads (default: one per core); when more than
    ``max_waiting`` checks already wait for a thread, a new one is refused (HTTP 503)."""

    def __init__(self, workers: int | None = None, max_waiting: int = MAX_WAITING) -> None:
        self.workers = workers or os.cpu_count() or 2
        self.max_waiting = max_waiting
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight = 0

    async def run(self, check: Callable[..., T], *args: object) -> T:
        if self._in_flight >= self.workers + self.max_waiting:
            raise TooManyRequestsError(
                "Too many authentication requests are waiting: retry in a second.",
                retry_after=1,
                status=503,
            )
        if self._pool is None:  # created in the process that serves (after a fork)
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="secret-checks")
        self._in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, check, *args)
        finally:
            self._in_flight -= 1

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
