"""One writer at a time per source entity (decision 0021): real-time calls and jobs that
write the same entity of a source take turns, in every server process, so a target never
gets it twice. Keys are held while operational data is read, the target written and the
records stored; a caller that cannot have them within the time allowed gets a 503."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from provisor.errors import TooManyRequestsError
from provisor.jobs.ports import EntityLocks

FIRST_POLL, LAST_POLL = 0.005, 0.1  # seconds between attempts, doubling
LOCK_SECONDS = 30.0  # the longest wait (settings: entity_lock_seconds)


def entity_key(source_id: str, entity_type: str, entity_id: str) -> int:
    """The lock key of a source entity: 62 bits of a hash (a bigint in PostgreSQL, an offset
    in a lock file); two entities sharing one only take turns."""
    name = "\x00".join((source_id, entity_type, entity_id)).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "big") >> 2


@asynccontextmanager
async def holding(locks: EntityLocks, keys: Iterable[int], seconds: float) -> AsyncIterator[None]:
    """Hold every key for the block; TooManyRequestsError (503) when some are still held
    elsewhere after ``seconds``. Keys are taken as they come free, without waiting in a
    thread or a database connection."""
    holder = locks.holder()
    wanted = set(keys)
    deadline = time.monotonic() + seconds
    delay = FIRST_POLL
    try:
        while wanted:
            wanted -= await asyncio.to_thread(holder.take, sorted(wanted))
            if not wanted:
                break
            if time.monotonic() >= deadline:
                raise TooManyRequestsError(
                    f"Another call or job is writing this entity and did not finish within "
                    f"{seconds:g} seconds (PROVISOR_ENTITY_LOCK_SECONDS); retry later.",
                    retry_after=max(1, round(seconds / 10)),
                    status=503,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, LAST_POLL)
        yield
    finally:
        await asyncio.to_thread(holder.release)
