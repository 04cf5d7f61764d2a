"""The burst's verdict: when (burst size, worker concurrency) the queue beats the direct handlers, computed
from the measured runs (fake summaries); more burst sizes (BENCH_BURST_SIZES) planned and reported."""

from __future__ import annotations

from pathlib import Path

from benchmark.burst import burst_sizes, planned_bursts
from benchmark.report.blocks import render_markdown
from benchmark.report.queue import burst_blocks, burst_sentences, verdict_sentences
from benchmark.settings import BenchSettings
from benchmark.summary import Burst, BurstRun


def _queue(concurrency: int, drain_s: float, tasks: int = 100) -> BurstRun:
    return BurstRun(
        architecture="queue",
        concurrency=concurrency,
        tasks=tasks,
        completed=tasks,
        drain_s=drain_s,
        last_done_s=drain_s,
        throughput_per_s=tasks / drain_s,
    )


def _handler(arch: str, last_done_s: float, tasks: int = 100, failures: int = 0) -> BurstRun:
    return BurstRun(
        architecture=arch,
        tasks=tasks,
        completed=tasks - failures,
        failures=failures,
        last_done_s=last_done_s,
        throughput_per_s=(tasks / last_done_s) if not failures else None,
    )


def test_the_queue_beats_both_handlers_only_where_the_numbers_say() -> None:
    burst = Burst(
        tasks=100,
        runs=[_queue(8, 1.2), _queue(64, 0.25), _handler("sync", 0.4), _handler("async", 0.3)],
    )
    (text,) = verdict_sentences(burst)
    assert text.startswith("At a burst of 100 tasks the queue beats the direct handlers (sync and async)")
    assert "with 64 worker slots" in text and "8 or" not in text
    assert "every result after 0.25 s, 400 tasks/s" in text and "sync 0.40 s, 250 req/s" in text
    assert text in " ".join(burst_sentences(burst))


def test_beating_one_handler_only_or_none() -> None:
    one = Burst(
        tasks=100, runs=[_queue(8, 1.2), _queue(64, 0.35), _handler("sync", 0.4), _handler("async", 0.3)]
    )
    (text,) = verdict_sentences(one)
    assert "the queue beats only sync with 64 worker slots" in text and "never both" in text
    none = Burst(
        tasks=100, runs=[_queue(8, 1.2), _queue(64, 0.7), _handler("sync", 0.4), _handler("async", 0.3)]
    )
    (text,) = verdict_sentences(none)
    assert (
        "never beats the direct handlers on this machine at any worker concurrency measured (8, 64)" in text
    )


def test_each_burst_size_gets_its_verdict_and_failed_handlers_do_not_count() -> None:
    runs = [
        _queue(8, 1.2),
        _handler("sync", 0.4),
        _queue(8, 3.0, tasks=1000),
        _queue(64, 1.5, tasks=1000),
        _handler("sync", 2.0, tasks=1000),
        _handler("async", 9.0, tasks=1000, failures=30),  # not all answered: no time to beat
    ]
    small, large = verdict_sentences(Burst(tasks=100, runs=runs))
    assert small.startswith("At a burst of 100 tasks the queue never beats")
    assert large.startswith("At a burst of 1000 tasks the queue beats the direct handlers (sync)")
    assert "with 64 worker slots" in large
    assert verdict_sentences(Burst(tasks=100, runs=[_queue(8, 1.0)])) == []  # nothing to compare with


def _failed_queue(concurrency: int, failures: int, tasks: int = 1000) -> BurstRun:
    return BurstRun(
        architecture="queue",
        concurrency=concurrency,
        tasks=tasks,
        completed=tasks - failures,
        failures=failures,
    )


def test_a_burst_nobody_or_only_one_side_answered_in_full() -> None:
    lost = [_failed_queue(8, 272), _failed_queue(64, 37)]
    (text,) = verdict_sentences(Burst(tasks=1000, runs=[*lost, _handler("sync", 2.6, tasks=1000)]))
    assert "the queue never beats the direct handlers on this machine: at no worker concurrency" in text
    assert (
        "(tasks failed: 272 with 8 slots, 37 with 64 slots), while sync in 2.60 s answered all 1000" in text
    )
    broken = [_handler("sync", 2.6, tasks=1000, failures=3), _handler("async", 2.1, tasks=1000, failures=172)]
    (text,) = verdict_sentences(Burst(tasks=1000, runs=[_queue(64, 5.0, tasks=1000), *broken]))
    assert "the queue beats the direct handlers on this machine with 64 worker slots" in text
    assert "(sync 3, async 172)" in text
    (text,) = verdict_sentences(Burst(tasks=1000, runs=[*lost, *broken]))
    assert text.startswith("At a burst of 1000 tasks neither the queue")


def test_more_burst_sizes_are_planned_and_reported_beside_the_main_one(tmp_path: Path) -> None:
    bench = BenchSettings(
        bench_profile="smoke",
        architectures=["sync", "async", "queue"],
        bench_burst_tasks=100,
        bench_burst_sizes="1000,100",
        bench_burst_concurrencies="8,64",
    )
    assert burst_sizes(bench) == [100, 1000]
    assert planned_bursts(bench) == (2 + 2) * 2
    runs = [
        _queue(8, 1.2),
        _handler("sync", 0.4),
        _queue(8, 3.0, tasks=1000),
        _handler("sync", 2.0, tasks=1000),
    ]
    burst = Burst(tasks=100, runs=runs)
    markdown = render_markdown(burst_blocks(burst, ["burst"], {}), tmp_path)
    assert "The other burst sizes (BENCH_BURST_SIZES):" in markdown and "| 1000 | queue | 8 |" in markdown
    assert "The queue drained all 100 tasks in 1.20 s with 8 worker slots" in markdown
    assert "3.00 s" not in " ".join(burst_sentences(burst)[:1])  # the main size's drain sentence only
    assert "At a burst of 1000 tasks" in markdown and "At a burst of 100 tasks" in markdown
