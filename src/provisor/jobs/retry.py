"""Retrying a back-end call that failed for a reason that may pass (spec §3.12)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from provisor.connectors.base import ConnectorError, RateLimited
from provisor.connectors.properties import Properties

T = TypeVar("T")
MAX_ATTEMPTS, MAX_INTERVAL = 3, 60


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``ips.failed.request.retry.attempts`` (default 2, at most 3) retries, ``...interval``
    seconds apart (default 30, at most 60), or what the back-end's ``Retry-After`` says."""

    attempts: int = 2
    interval: float = 30.0

    @classmethod
    def of(cls, properties: Mapping[str, str]) -> RetryPolicy:
        def number(key: str, default: int, most: int) -> int:
            return Properties(properties).bounded(key, default, most=most)

        return cls(
            attempts=number("ips.failed.request.retry.attempts", 2, MAX_ATTEMPTS),
            interval=float(number("ips.failed.request.retry.attempts.interval", 30, MAX_INTERVAL)),
        )

    async def call(
        self,
        operation: Callable[[], Awaitable[T]],
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> T:
        """Run ``operation``; retry it on retryable ConnectorErrors; raise the last one."""
        attempt = 0
        while True:
            try:
                return await operation()
            except ConnectorError as exc:
                if not exc.retryable or attempt >= self.attempts:
                    raise
                attempt += 1
                wait = self.interval
                if isinstance(exc, RateLimited) and exc.retry_after is not None:
                    wait = min(max(exc.retry_after, 0.0), float(MAX_INTERVAL))
                await sleep(wait)
