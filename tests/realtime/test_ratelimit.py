"""The tenant's budget of proxy and real-time calls (spec §3.13)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from provisor.context import Context
from provisor.ratelimit import InboundBudget
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.web import ratelimit as web_ratelimit
from tests.conftest import serve

BASE = "/ipsproxy/service/api/v1/systems"


def test_throttled_then_refused_with_retry_after(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(seconds)

    monkeypatch.setattr(web_ratelimit, "asyncio", SimpleNamespace(sleep=sleep))  # this module's
    limited = settings.model_copy(
        update={"inbound_throttle_per_minute": 2, "inbound_max_per_minute": 4}
    )
    with serve(limited) as server, server.client(auth=server.new_client("realtime_api")) as api:
        url = f"{BASE}/no-such-system/entities/user"
        assert api.get("/api/v1/jobs").status_code == 403, "the secret proven once (Argon2)"
        assert [api.get(url).status_code for _ in range(2)] == [404, 404]
        assert waits == []
        assert [api.get(url).status_code for _ in range(2)] == [404, 404]
        assert waits == [1.0, 1.0], "past the throttle rate: a second each"
        refused = api.get(url)
        assert refused.status_code == 429
        assert refused.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert api.get("/health").status_code == 200, "other APIs have no such budget"
        assert api.get("/api/v1/jobs").status_code == 403, "answered, not rate limited"


def test_processes_share_one_budget(settings: Settings) -> None:
    limited = settings.model_copy(
        update={"inbound_throttle_per_minute": 0, "inbound_max_per_minute": 3}
    )
    first, second = InboundBudget(limited), InboundBudget(limited)  # as two server processes
    decisions = [b.admit().allowed for b in (first, second, first, second)]
    assert decisions == [True, True, True, False]
    assert (
        InboundBudget(
            settings.model_copy(
                update={"inbound_max_per_minute": 0, "inbound_throttle_per_minute": 0}
            )
        ).active
        is False
    )


def test_calls_arriving_together_are_all_admitted(settings: Settings) -> None:
    """Within the budget, calls that arrive at once wait their turn for the shared count; none
    is refused because another held the count at that instant (PostgreSQL's table lock)."""
    limited = settings.model_copy(
        update={"inbound_throttle_per_minute": 0, "inbound_max_per_minute": 1000}
    )
    budgets = [InboundBudget(limited) for _ in range(4)]  # as four server processes
    for budget in budgets:
        assert budget.admit().allowed  # each opens its store before the rush
    start = threading.Barrier(16)

    def call(budget: InboundBudget) -> bool:
        start.wait()
        return all(budget.admit().allowed for _ in range(10))

    with ThreadPoolExecutor(16) as pool:
        admitted = list(pool.map(call, [budgets[i % 4] for i in range(16)]))
    assert admitted == [True] * 16


def test_each_tenant_has_its_own_budget(services: Services) -> None:
    """The composition root keeps one budget per tenant; the default tenant's is the
    installation's (the same shared store as before tenants)."""
    default, other = Context.system("test"), Context.system("test", tenant="acme")
    assert services.inbound.get(default) is services.inbound.get(default)
    assert services.inbound.get(other) is not services.inbound.get(default)
    limited = services.settings.model_copy(
        update={"inbound_throttle_per_minute": 0, "inbound_max_per_minute": 1}
    )
    budgets = [InboundBudget(limited), InboundBudget(limited, "acme")]
    try:
        assert [b.admit().allowed for b in budgets] == [True, True]
        assert [b.admit().allowed for b in budgets] == [False, False]
    finally:
        for budget in budgets:
            budget.close()
