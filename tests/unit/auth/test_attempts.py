"""The budgets of failed authentication (per address, per client id) and the bounded pool
that checks secrets."""

from __future__ import annotations

import asyncio
import threading

import pytest

from provisor.auth.attempts import AttemptLimiter, address_key, retry_after
from provisor.auth.checks import SecretChecks
from provisor.errors import TooManyRequestsError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr("provisor.auth.attempts.time.monotonic", fake)
    return fake


def test_an_address_has_a_budget_of_failures_a_minute(clock: Clock) -> None:
    limiter = AttemptLimiter(per_minute=3)
    assert [limiter.failed("192.0.2.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.blocked("192.0.2.1") == pytest.approx(20.0)  # one token every 20 s
    assert limiter.failed("192.0.2.1") == pytest.approx(20.0)
    assert limiter.blocked("192.0.2.2") == 0.0, "another address has its own budget"
    clock.now += 20
    assert limiter.blocked("192.0.2.1") == 0.0
    assert limiter.failures == 4 and limiter.throttled == 2
    assert retry_after(0.2) == 1 and retry_after(20.0) == 20


def test_ipv6_addresses_count_per_64_network(clock: Clock) -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2")
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    limiter = AttemptLimiter(per_minute=1)
    limiter.failed("2001:db8:1:2::1")
    assert limiter.blocked("2001:db8:1:2::ffff") > 0


def test_a_client_id_backs_off_doubling_up_to_a_minute(clock: Clock) -> None:
    limiter = AttemptLimiter(per_minute=1000)
    for _ in range(4):
        limiter.failed("192.0.2.1", "client")
    assert limiter.blocked("192.0.2.9", "client") == 0.0, "four failures: no wait"
    waits = []
    for _ in range(9):
        limiter.failed("192.0.2.1", "client")
        waits.append(limiter.blocked("192.0.2.9", "client"))
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    limiter.succeeded("client")
    assert limiter.blocked("192.0.2.9", "client") == 0.0


def test_tables_are_bounded(clock: Clock) -> None:
    limiter = AttemptLimiter(per_minute=1, table_size=2)
    for n in range(5):
        limiter.failed(f"192.0.2.{n}", f"client-{n}")
    assert len(limiter._addresses) == 2 and len(limiter._clients) == 2


def test_no_budget_when_disabled() -> None:
    limiter = AttemptLimiter(per_minute=0)
    assert all(limiter.failed("192.0.2.1", "c") == 0.0 for _ in range(100))
    assert limiter.blocked("192.0.2.1", "c") == 0.0


def test_secret_checks_refuse_when_too_many_wait() -> None:
    gate = threading.Event()
    checks = SecretChecks(workers=1, max_waiting=1)

    def slow() -> str:
        gate.wait(10)
        return "checked"

    async def scenario() -> None:
        running = [asyncio.create_task(checks.run(slow)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(TooManyRequestsError) as refused:
            await checks.run(slow)
        assert refused.value.status == 503 and refused.value.retry_after == 1
        gate.set()
        assert await asyncio.gather(*running) == ["checked", "checked"]
        assert await checks.run(lambda: "again") == "again"

    try:
        asyncio.run(scenario())
    finally:
        checks.close()
