"""The micro-batcher (scoring_bench.service.batcher) with an injected fake call: batches per key, flushed
when full or at the max wait, one call per batch, errors and cancellations confined to their batch.
No assertion on speed: the max-wait bound is checked against a clock that only the test moves."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from scoring_bench.service.batcher import BatchCallError, Batched, MicroBatcher

GENEROUS_S = 5.0  # a liveness bound: a test that waits this long has hung, not run slowly


class FakeCall:
    """Records every call; answers ``item * 10`` per item; ``fail`` makes the calls for a key raise;
    ``gate`` holds every call until set."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, list[int]]] = []
        self.fail: set[Any] = set()
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, key: Any, items: list[int]) -> Sequence[int]:
        self.calls.append((key, list(items)))
        await self.gate.wait()
        if key in self.fail:
            raise RuntimeError(f"model {key} is down")
        return [i * 10 for i in items]


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, GENEROUS_S))


def test_a_full_batch_is_one_call_and_each_caller_gets_its_own_result() -> None:
    async def main() -> list[Batched[int]]:
        fake = FakeCall()
        batcher: MicroBatcher[int, int, int] = MicroBatcher(fake, max_size=4, max_wait_s=3600.0)
        answers = await asyncio.gather(*(batcher.submit(0, i) for i in range(4)))
        assert fake.calls == [(0, [0, 1, 2, 3])]  # sent when full: the hour's wait never began
        await batcher.aclose()
        return answers

    answers = run(main())
    assert [a.value for a in answers] == [0, 10, 20, 30]
    assert all(a.size == 4 and a.wait_ms >= 0 and a.call_ms >= 0 for a in answers)


def test_more_than_a_batch_is_split_at_the_max_size() -> None:
    async def main() -> FakeCall:
        fake = FakeCall()
        batcher: MicroBatcher[int, int, int] = MicroBatcher(fake, max_size=3, max_wait_s=0.0)
        answers = await asyncio.gather(*(batcher.submit(0, i) for i in range(7)))
        assert [a.value for a in answers] == [i * 10 for i in range(7)]
        assert [a.size for a in answers] == [3, 3, 3, 3, 3, 3, 1]
        return fake

    assert run(main()).calls == [(0, [0, 1, 2]), (0, [3, 4, 5]), (0, [6])]


def test_keys_are_batched_apart_one_call_per_batch_per_key() -> None:
    async def main() -> FakeCall:
        fake = FakeCall()
        batcher: MicroBatcher[int, int, int] = MicroBatcher(fake, max_size=8, max_wait_s=0.0)
        submits = [batcher.submit(key, i) for i in range(3) for key in (0, 1)]
        answers = await asyncio.gather(*submits)
        assert [a.value for a in answers] == [0, 0, 10, 10, 20, 20]
        assert {a.size for a in answers} == {3}
        return fake

    assert sorted(run(main()).calls) == [(0, [0, 1, 2]), (1, [0, 1, 2])]


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_unfilled_batch_is_sent_at_the_max_wait_and_reports_it() -> None:
    """A lone request is not held for company beyond the max wait: the batcher's timer sends it. The
    reported wait is the batcher's clock (moved by the test) from the submit to the send."""

    async def main() -> tuple[Batched[int], float, float]:
        fake = FakeCall()
        clock = ManualClock()
        loop = asyncio.get_running_loop()
        batcher: MicroBatcher[int, int, int] = MicroBatcher(fake, max_size=100, max_wait_s=0.05, clock=clock)
        started = loop.time()
        task = asyncio.create_task(batcher.submit(0, 7))
        await asyncio.sleep(0)
        assert not task.done() and fake.calls == []  # waiting for company
        clock.now += 0.05
        answer = await task
        return answer, started, loop.time()

    answer, started, ended = run(main())
    assert answer.value == 70 and answer.size == 1
    assert answer.wait_ms == pytest.approx(50.0)
    assert ended - started >= 0.05 - 0.005  # not sent before the max wait (the loop's timer resolution)


def test_the_max_wait_counts_from_the_oldest_item() -> None:
    """Items that join a waiting batch do not restart its timer: the batch is sent at the oldest's max
    wait (1 s), so the one that joined half-way waited about half of it, not a whole one of its own."""

    async def main() -> list[Batched[int]]:
        fake = FakeCall()
        batcher: MicroBatcher[int, int, int] = MicroBatcher(fake, max_size=100, max_wait_s=1.0)
        first = asyncio.create_task(batcher.submit(0, 1))
        await asyncio.sleep(0.5)
        second = asyncio.create_task(batcher.submit(0, 2))
        return [await first, await second]

    answers = run(main())
    assert [a.size for a in answers] == [2, 2]  # one batch
    assert answers[0].wait_ms >= 1000.0 - 5.0  # the oldest waited its max wait (timer resolution)
    assert answers[1].wait_ms < 1000.0  # a restarted timer would have held it a whole max wait


def test_a_failing_call_fails_exactly_its_batch() -> None:
    async def main() -> list[Any]:
        fake = FakeCall()
        fake.fail.add(1)
        batcher: MicroBatcher[int, int, int] = MicroBatcher(fake, max_size=2, max_wait_s=0.0)
        submits = [batcher.submit(1, 1), batcher.submit(1, 2), batcher.submit(0, 3), batcher.submit(0, 4)]
        first = await asyncio.gather(*submits, return_exceptions=True)
        fake.fail.clear()  # the next batch of the failed key starts afresh
        again = await asyncio.gather(batcher.submit(1, 5), batcher.submit(1, 6))
        return [*first, *again]

    results = run(main())
    assert [type(r) for r in results[:2]] == [RuntimeError, RuntimeError]
    assert "model 1 is down" in str(results[0])
    assert [r.value for r in results[2:]] == [30, 40, 50, 60]


def test_a_call_answering_the_wrong_number_of_results_fails_its_batch() -> None:
    async def short(key: int, items: list[int]) -> list[int]:
        return items[:-1]

    async def main() -> list[Any]:
        batcher: MicroBatcher[int, int, int] = MicroBatcher(short, max_size=2, max_wait_s=0.0)
        return await asyncio.gather(batcher.submit(0, 1), batcher.submit(0, 2), return_exceptions=True)

    assert all(isinstance(r, BatchCallError) for r in run(main()))


def test_a_caller_cancelled_during_the_call_does_not_stop_the_others() -> None:
    async def main() -> tuple[list[Any], FakeCall]:
        fake = FakeCall()
        fake.gate.clear()
        batcher: MicroBatcher[int, int, int] = MicroBatcher(fake, max_size=3, max_wait_s=0.0)
        tasks = [asyncio.create_task(batcher.submit(0, i)) for i in range(3)]
        while not fake.calls:  # the batch is sent, its call held at the gate
            await asyncio.sleep(0)
        tasks[1].cancel()  # the client went away
        await asyncio.sleep(0)
        fake.gate.set()
        return await asyncio.gather(*tasks, return_exceptions=True), fake

    results, fake = run(main())
    assert isinstance(results[1], asyncio.CancelledError)
    assert [results[0].value, results[2].value] == [0, 20] and results[0].size == 3
    assert fake.calls == [(0, [0, 1, 2])]


def test_a_caller_cancelled_before_the_send_leaves_the_batch() -> None:
    async def main() -> tuple[list[Any], FakeCall, MicroBatcher[int, int, int]]:
        fake = FakeCall()
        batcher: MicroBatcher[int, int, int] = MicroBatcher(fake, max_size=10, max_wait_s=0.05)
        tasks = [asyncio.create_task(batcher.submit(0, i)) for i in range(3)]
        await asyncio.sleep(0)
        tasks[0].cancel()  # the oldest leaves: the batch is still sent, without it
        return await asyncio.gather(*tasks, return_exceptions=True), fake, batcher

    results, fake, batcher = run(main())
    assert isinstance(results[0], asyncio.CancelledError)
    assert [r.value for r in results[1:]] == [10, 20] and {r.size for r in results[1:]} == {2}
    assert fake.calls == [(0, [1, 2])]
    assert not batcher.running


def test_a_batch_whose_every_caller_left_is_not_sent() -> None:
    async def main() -> tuple[FakeCall, MicroBatcher[int, int, int]]:
        fake = FakeCall()
        batcher: MicroBatcher[int, int, int] = MicroBatcher(fake, max_size=10, max_wait_s=0.02)
        task = asyncio.create_task(batcher.submit(0, 1))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.sleep(0.05)  # past the max wait: the timer was cancelled with the last item
        answer = await batcher.submit(0, 2)  # and the key batches again
        assert answer.value == 20 and answer.size == 1
        return fake, batcher

    fake, batcher = run(main())
    assert fake.calls == [(0, [2])]
    assert batcher.queues[0].timer is None


def test_aclose_sends_what_is_pending_and_refuses_new_items() -> None:
    async def main() -> tuple[Any, FakeCall]:
        fake = FakeCall()
        batcher: MicroBatcher[int, int, int] = MicroBatcher(fake, max_size=10, max_wait_s=3600.0)
        task = asyncio.create_task(batcher.submit(0, 4))
        await asyncio.sleep(0)
        await batcher.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await batcher.submit(0, 5)
        return await task, fake

    answer, fake = run(main())
    assert answer.value == 40 and fake.calls == [(0, [4])]


@pytest.mark.parametrize("size, wait", [(0, 0.0), (1, -1.0)])
def test_bad_limits_are_refused(size: int, wait: float) -> None:
    with pytest.raises(ValueError):
        MicroBatcher(FakeCall(), max_size=size, max_wait_s=wait)
