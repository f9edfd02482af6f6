"""The tenant's budget of proxy and real-time calls (spec §3.13) on the web: paths under
``/ipsproxy/`` share one budget per tenant (:class:`provisor.ratelimit.InboundBudget`, kept by
the composition root), spent only by callers that are authenticated and allowed (the route's
guard spends it, see :mod:`provisor.web.auth`): past the throttle rate each call waits a
second; past the maximum calls get 429 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool

from provisor.auth.attempts import retry_after
from provisor.errors import TooManyRequestsError
from provisor.metrics import instruments as metrics
from provisor.ratelimit import InboundBudget

PREFIX = "/ipsproxy/"


async def spend(budget: InboundBudget) -> None:
    """Spend one call of ``budget``: TooManyRequestsError (429) past the maximum, a wait past
    the throttle."""
    if not budget.active:
        return
    decision = await run_in_threadpool(budget.admit)
    if not decision.allowed:
        metrics.inbound_limited("refused")
        wait = retry_after(decision.seconds)
        raise TooManyRequestsError(
            "Too many proxy and real-time requests for this tenant: "
            f"at most {budget.maximum} a minute. Retry after {wait} s.",
            retry_after=wait,
        )
    if decision.seconds:
        metrics.inbound_limited("throttled")
        await asyncio.sleep(decision.seconds)
