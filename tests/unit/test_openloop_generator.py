"""The open-loop generator without a network (benchmark/openloop/generator.py): a fake request in place of
HTTP, so the dispatch, the timing and the records are checked alone; and its command line."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
import pytest

from benchmark.openloop.__main__ import parser
from benchmark.openloop.experiment import OpenLoopOptions, generator_command, planned_seconds, sweep_options
from benchmark.openloop.generator import Ended, Target, bodies, clock, run_closed, run_rate, task_status
from benchmark.openloop.schedule import arrival_offsets
from benchmark.queue_client import TaskOutcome


def fake_call(latency_s: float, seen: list[bytes] | None = None) -> Callable[[bytes], Awaitable[Ended]]:
    """A request that is sent at once and answered after ``latency_s``, whatever else is in flight."""

    async def call(body: bytes) -> Ended:
        if seen is not None:
            seen.append(body)
        sent = clock()
        await asyncio.sleep(latency_s)
        return Ended(sent, clock(), True, "200")

    return call


def test_every_request_is_issued_on_schedule_whatever_the_answers_take() -> None:
    """Answers that take 50 ms do not slow the sending down: an open loop."""
    offsets = arrival_offsets(200, 0.5, "constant")
    _, records = asyncio.run(run_rate(fake_call(0.05), offsets, [b"x"]))
    assert [r.scheduled_s for r in records] == offsets
    lags = sorted(r.issued_s - r.scheduled_s for r in records if r.issued_s is not None)
    assert lags[0] >= 0  # never early
    assert lags[len(lags) // 2] < 0.02  # a loose bound: a shared machine may be busy
    assert all(r.done_s is not None and r.done_s - r.scheduled_s >= 0.05 for r in records)
    assert all(r.ok and r.status == "200" for r in records)


def test_requests_cycle_through_the_bodies() -> None:
    seen: list[bytes] = []
    asyncio.run(run_rate(fake_call(0.0, seen), arrival_offsets(1000, 0.005, "constant"), [b"a", b"b"]))
    assert seen == [b"a", b"b", b"a", b"b", b"a"]


def test_the_closed_loop_sends_the_next_request_when_the_answer_is_in() -> None:
    _, records = asyncio.run(run_closed(fake_call(0.02), users=3, total_s=0.2, payloads=[b"x"]))
    # each user: at most one request per 20 ms, and more than one in 0.2 s (the next one sent when the answer
    # is in); not "about ten": a busy machine delays the loop (8 per user failed beside a test stack)
    assert 3 * 2 <= len(records) <= 3 * 11
    assert all(r.scheduled_s == r.issued_s for r in records)
    assert [r.scheduled_s for r in records] == sorted(r.scheduled_s for r in records)


def test_bodies_read_the_seeded_entities() -> None:
    payloads = bodies(3, 10)
    assert [orjson.loads(p)["entity_id"] for p in payloads] == ["0", "1", "2"]
    assert len(bodies(10_000)) == 512


def test_a_task_ends_with_its_status_or_why_no_result_came() -> None:
    assert task_status(TaskOutcome({"task_id": "t", "status": "SUCCESS"}, None)) == "SUCCESS"
    assert task_status(TaskOutcome({"task_id": "t", "status": "FAILURE"}, "task FAILURE")) == "FAILURE"
    late = TaskOutcome({"task_id": "t", "status": "PENDING"}, "not done within 5 s (status PENDING)")
    assert task_status(late) == "no answer: not done within 5 s (status PENDING)"
    assert task_status(TaskOutcome(None, "the task was lost: HTTP 500")).startswith("no answer: ")


def test_a_queue_task_may_take_its_timeout_and_its_last_long_poll() -> None:
    assert Target("sync", "u", 8, timeout_s=10).limit_s == 10
    assert Target("queue", "u", 8, timeout_s=10, poll_wait_ms=1000).limit_s > 11
    assert Target("queue", "u", 8, timeout_s=10, poll_wait_ms=0, submit_wait_ms=2000).limit_s > 12


OPTIONS = OpenLoopOptions(
    step_s=5,
    arrivals="constant",
    seed=3,
    connections=64,
    queue_poll_wait_ms=500,
    queue_timeout_s=20,
    queue_submit_wait_ms=700,
)


def test_the_experiment_starts_the_cli_with_every_knob() -> None:
    argv = generator_command(
        "sweep", "queue", "http://h:1", Path("/o"), 200, *sweep_options([50, 100.5], 2, OPTIONS, "queue")
    )
    args = parser().parse_args(argv[3:])
    assert args.command == "sweep" and args.arch == "queue" and args.url == "http://h:1"
    assert args.rates == [50.0, 100.5] and args.step_s == 5 and args.arrivals == "constant"
    assert (args.seed, args.connections, args.rep, args.entities) == (3, 64, 2, 200)
    assert (args.timeout_s, args.poll_wait_ms, args.submit_wait_ms, args.out) == (20, 500, 700, Path("/o"))
    assert planned_seconds(2, OPTIONS) == 11


def test_the_cli_refuses_rates_that_are_not_positive() -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(
            ["sweep", "--arch", "sync", "--url", "u", "--out", "o", "--rates", "10,0", "--step-s", "1"]
        )
