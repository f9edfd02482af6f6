"""A job's pages flowing through its targets (jobs/pipeline.py's Flow, decision 0033): each
target writes the pages in order at its own pace, at most ``depth`` pages in flight, and a
page is done (its checkpoint committed) only when every target wrote it, in page order."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import Any

import pytest

from provisor.jobs.pipeline import Flow
from provisor.jobs.plan import Item
from provisor.jobs.writing import bulk_chunk


class Target:
    def __init__(self, name: str) -> None:
        self.id = self.name = name

    def handles(self, entity_type: str) -> bool:
        return True


class Writing:
    """The targets' writes: recorded; a target's write of a page waits for its gate."""

    def __init__(self) -> None:
        self.written: dict[str, list[str]] = defaultdict(list)
        self.planned: dict[str, list[str]] = defaultdict(list)
        self.gates: dict[tuple[str, str], asyncio.Event] = {}
        self.broken: set[tuple[str, str]] = set()

    def gate(self, target: str, page: str) -> asyncio.Event:
        return self.gates.setdefault((target, page), asyncio.Event())

    async def prepare(self, target: Target, entity_type: str, items: list[Item]) -> Any:
        self.planned[target.name].append(items[0].source_id)
        return target, items

    async def finish(self, prepared: Any) -> None:
        target, items = prepared
        page = items[0].source_id
        await self.gate(target.name, page).wait()
        if (target.name, page) in self.broken:
            raise RuntimeError(f"{target.name} broke on {page}")
        self.written[target.name].append(page)


class Run:
    def __init__(self, *targets: Target) -> None:
        self.targets = targets

    def fatal(self, target: Target) -> str | None:
        return None


class Pipeline:
    def __init__(self, *targets: Target) -> None:
        self.run = Run(*targets)
        self.writing = Writing()


def page(name: str, member: str | None = None) -> list[Item]:
    document = {} if member is None else {"members": [{"value": member}]}
    return [Item(name, document, {}, "")]


async def settled(condition: Any) -> None:
    """Let the flow's tasks run until ``condition()`` (bounded: at most 1,000 turns)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the flow did not get there")


def test_each_target_writes_in_order_at_its_own_pace_and_pages_end_in_order() -> None:
    async def scenario() -> None:
        fast, slow = Target("fast"), Target("slow")
        pipeline = Pipeline(fast, slow)
        writing = pipeline.writing
        done: list[int] = []

        async def commit(mark: int) -> None:
            done.append(mark)

        for name in ("p1", "p2", "p3"):
            writing.gate("fast", name).set()
        flow = Flow(pipeline, "user", commit, depth=2)  # type: ignore[arg-type]
        async with flow:
            await flow.put(page("p1"), 10, contextlib.nullcontext())
            await flow.put(page("p2"), 20, contextlib.nullcontext())
            # the fast target wrote both pages while the slow one holds the first
            await settled(lambda: writing.written["fast"] == ["p1", "p2"])
            third = asyncio.create_task(flow.put(page("p3"), 30, contextlib.nullcontext()))
            for _ in range(50):
                await asyncio.sleep(0)
            assert not third.done(), "two pages are in flight: the third waits"
            assert done == [] and writing.written["slow"] == []
            writing.gate("slow", "p2").set()  # the slow target still writes p1 first
            for _ in range(50):
                await asyncio.sleep(0)
            assert writing.written["slow"] == [] and done == []
            writing.gate("slow", "p1").set()
            await settled(lambda: done == [10, 20])
            await third
            writing.gate("slow", "p3").set()
        assert done == [10, 20, 30]
        assert writing.written == {"fast": ["p1", "p2", "p3"], "slow": ["p1", "p2", "p3"]}

    asyncio.run(scenario())


def test_a_page_is_planned_while_the_one_before_is_written_unless_it_refers_to_it() -> None:
    async def scenario() -> None:
        target = Target("t")
        pipeline = Pipeline(target)
        writing = pipeline.writing
        done: list[int] = []

        async def commit(mark: int) -> None:
            done.append(mark)

        flow = Flow(pipeline, "group", commit, depth=2)  # type: ignore[arg-type]
        async with flow:
            await flow.put(page("g1"), 1, contextlib.nullcontext())
            await flow.put(page("g2"), 2, contextlib.nullcontext())
            await settled(lambda: writing.planned["t"] == ["g1", "g2"])
            assert writing.written["t"] == []  # g2 planned, not sent before g1
            writing.gate("t", "g1").set()
            writing.gate("t", "g2").set()
            await settled(lambda: done == [1, 2])
            # g3 has g2 among its members: planned once g2 is written (it is, here)
            writing.gate("t", "g4").set()
            await flow.put(page("g3", member="g2"), 3, contextlib.nullcontext())
            await flow.put(page("g4", member="g3"), 4, contextlib.nullcontext())
            for _ in range(50):
                await asyncio.sleep(0)
            assert writing.planned["t"] == ["g1", "g2", "g3"], "g4 waits for g3's write"
            writing.gate("t", "g3").set()
        assert writing.planned["t"] == ["g1", "g2", "g3", "g4"]
        assert writing.written["t"] == ["g1", "g2", "g3", "g4"] and done == [1, 2, 3, 4]

    asyncio.run(scenario())


def test_a_page_that_fails_in_a_target_ends_nothing_after_it() -> None:
    async def scenario() -> None:
        one, two = Target("one"), Target("two")
        pipeline = Pipeline(one, two)
        writing = pipeline.writing
        writing.broken.add(("two", "p1"))
        for key in (("one", "p1"), ("one", "p2"), ("two", "p1"), ("two", "p2")):
            writing.gate(*key).set()
        done: list[int] = []

        async def commit(mark: int) -> None:
            done.append(mark)

        flow = Flow(pipeline, "user", commit, depth=2)  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="two broke on p1"):
            async with flow:
                await flow.put(page("p1"), 10, contextlib.nullcontext())
                await flow.put(page("p2"), 20, contextlib.nullcontext())
        assert done == []  # no checkpoint past a page a target did not write
        assert "p2" not in writing.written["two"]

    asyncio.run(scenario())


def test_leaving_a_cancelled_flow_cancels_its_pages_and_releases_their_locks() -> None:
    async def scenario() -> None:
        target = Target("t")
        pipeline = Pipeline(target)
        released: list[str] = []

        @contextlib.asynccontextmanager
        async def hold(name: str) -> Any:
            try:
                yield
            finally:
                released.append(name)

        async def commit(mark: int) -> None:
            raise AssertionError("nothing is written: nothing ends")

        flow = Flow(pipeline, "user", commit, depth=2)  # type: ignore[arg-type]

        async def job() -> None:
            async with flow:
                await flow.put(page("p1"), 10, hold("p1"))
                await asyncio.Event().wait()  # the worker is stopped here

        task = asyncio.create_task(job())
        await settled(lambda: flow.tasks)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert released == ["p1"] and not pipeline.writing.written

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("creates", "most", "concurrency", "size"),
    [
        (1000, 100, 8, 100),  # a page of users: ten requests of the Bulk size
        (20, 100, 8, 3),  # a page of groups: seven requests, not one
        (45, 20, 8, 6),
        (5, 0, 8, 1),  # no Bulk limit: spread anyway
        (10, 100, 0, 10),  # no concurrency set: one request
    ],
)
def test_a_page_of_creates_is_spread_over_the_requests_in_flight(
    creates: int, most: int, concurrency: int, size: int
) -> None:
    assert bulk_chunk(creates, most, concurrency) == size
