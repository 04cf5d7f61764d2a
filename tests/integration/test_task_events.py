"""The queue's task notifications (QUEUE_WAKEUP=notify) against a real Redis: the machine's
(SCORING_BENCH_TEST_REDIS_URL), under a key prefix of this test's own, deleted afterwards.

A result is written the way Celery's Redis backend writes it (SETEX + PUBLISH on the result's key), so
these tests check our side of the contract: no lost wake-up, and waiters that fall back to reading the
store when the notifications stop.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Mapping
from typing import Any

import pytest
import redis.asyncio as aioredis

from scoring_bench.service import task_store
from scoring_bench.service.task_events import TaskEvents, channel_pattern
from scoring_bench.service.task_store import TaskStore

pytestmark = pytest.mark.integration

REDIS_URL = os.environ.get("SCORING_BENCH_TEST_REDIS_URL")
REQUIRED = os.environ.get("SCORING_BENCH_REQUIRE_SERVICES") == "1"


def decode(raw: bytes) -> Mapping[str, Any]:
    return json.loads(raw)  # type: ignore[no-any-return]


def meta(status: str, result: Any = None) -> str:
    return json.dumps({"status": status, "result": result})


class Harness:
    def __init__(self, url: str, prefix: str) -> None:
        client = aioredis.Redis.from_url(url)
        self.client = client
        self.prefix = prefix
        self.result_prefix = f"{prefix}celery-task-meta-"
        self.events = TaskEvents(aioredis.Redis.from_url(url), self.result_prefix, decode, reconnect_s=0.05)
        self.store = TaskStore(
            client, prefix, 60, lambda task_id: f"{self.result_prefix}{task_id}", decode, events=self.events
        )

    async def store_result(self, task_id: str, status: str, result: Any = None) -> None:
        """As Celery's RedisBackend._set: SETEX and PUBLISH in one pipeline."""
        key = f"{self.result_prefix}{task_id}"
        async with self.client.pipeline() as pipe:
            pipe.set(key, meta(status, result), ex=60)
            pipe.publish(key, meta(status, result))
            await pipe.execute()

    async def listening(self) -> None:
        self.events.start()
        for _ in range(200):
            if self.events.listening:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the notifications never started")

    async def cleanup(self) -> None:
        await self.events.close()
        keys = [key async for key in self.client.scan_iter(match=f"{self.prefix}*")]
        if keys:
            await self.client.delete(*keys)
        await self.client.aclose()


@pytest.fixture(autouse=True)
def no_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Waiters re-read the store only every minute: within the tests' timeouts, only a notification (or
    a lost connection) can end a wait."""
    monkeypatch.setattr(task_store, "NOTIFIED_CHECK_S", 60.0)


def run(test: Any) -> None:
    if not REDIS_URL:
        if REQUIRED:
            pytest.fail("SCORING_BENCH_TEST_REDIS_URL is not set but SCORING_BENCH_REQUIRE_SERVICES=1")
        pytest.skip("set SCORING_BENCH_TEST_REDIS_URL to run against an existing Redis")

    async def main() -> None:
        prefix = f"scoring-bench-test-{uuid.uuid4().hex[:8]}:[q]*:"  # glob characters: escaped
        harness = Harness(REDIS_URL, prefix)
        try:
            await harness.listening()
            await test(harness)
        finally:
            await harness.cleanup()

    asyncio.run(main())


def test_a_waiter_is_woken_by_the_result_not_by_a_timer() -> None:
    async def test(h: Harness) -> None:
        await h.store.issue("t1")
        waiting = asyncio.create_task(h.store.wait("t1", 60_000))
        await asyncio.sleep(0.05)
        await h.store_result("t1", "STARTED")  # not ready: the waiter waits on
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await h.store_result("t1", "SUCCESS", {"score": 0.5})
        doc = await asyncio.wait_for(waiting, 10)  # woken by the message: no timer is that short
        assert doc == {"task_id": "t1", "status": "SUCCESS", "result": {"score": 0.5}}
        assert h.events.waiters == {}  # nothing left behind

    run(test)


def test_a_result_stored_before_the_waiter_came_is_seen() -> None:
    async def test(h: Harness) -> None:
        await h.store.issue("t2")
        await h.store_result("t2", "FAILURE", {"exc_type": "X"})  # published to nobody
        doc = await asyncio.wait_for(h.store.wait("t2", 60_000), 10)
        assert doc is not None and doc["status"] == "FAILURE"

    run(test)


def test_many_waiters_of_one_task_and_of_others() -> None:
    async def test(h: Harness) -> None:
        for task_id in ("a", "b"):
            await h.store.issue(task_id)
        waits = [asyncio.create_task(h.store.wait(task_id, 60_000)) for task_id in ("a", "a", "b")]
        await asyncio.sleep(0.05)
        await h.store_result("a", "SUCCESS", 1)
        done, pending = await asyncio.wait(waits[:2], timeout=10)
        assert [(w.result() or {}).get("result") for w in done] == [1, 1]
        assert not pending and not waits[2].done()
        await h.store_result("b", "SUCCESS", 2)
        assert (await asyncio.wait_for(waits[2], 10))["result"] == 2  # type: ignore[index]

    run(test)


def test_a_waiter_gives_up_at_its_deadline_and_an_unknown_id_is_none() -> None:
    async def test(h: Harness) -> None:
        await h.store.issue("late")
        assert await h.store.wait("late", 100) == {"task_id": "late", "status": "PENDING"}
        assert await h.store.wait("never-issued", 100) is None

    run(test)


def test_a_lost_connection_wakes_the_waiters_and_they_still_get_the_result() -> None:
    async def test(h: Harness) -> None:
        await h.store.issue("t3")
        waiting = asyncio.create_task(h.store.wait("t3", 60_000))
        await asyncio.sleep(0.05)
        # Kill the listener's connection (as a Redis restart would); store the result while it is gone.
        clients = await h.client.client_list(_type="pubsub")
        ours = [c for c in clients if c.get("psub") == "1"]
        for c in ours:
            await h.client.client_kill_filter(_id=c["id"])
        await h.store_result("t3", "SUCCESS", 3)
        doc = await asyncio.wait_for(waiting, 10)  # woken by the lost connection, then read again
        assert doc is not None and doc["result"] == 3
        await h.listening()  # and the listener is back

    run(test)


def test_the_pattern_escapes_glob_characters() -> None:
    assert channel_pattern("p:[x]*?\\:meta-") == "p:\\[x\\]\\*\\?\\\\:meta-*"
