"""The queue and the burst in the report: statistics of the end-to-end entry only, the queue's services'
CPU, the broker's depth, and the burst experiment — on a synthetic run folder with known results."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from benchmark.analysis import build_summary
from benchmark.analysis.phases import service_names
from benchmark.analysis.raw import read_requests
from benchmark.entries import END_TO_END, entry_name
from benchmark.report import build_report
from benchmark.report.queue import queue_sentences
from benchmark.summary import ArchitectureSummary, QueuePhase, Summary
from tests.fixtures.run_folder import (
    BURST_DEPTH_MAX,
    BURST_FAILURES,
    BURST_TASKS,
    BURST_WORKER_CPU,
    PROFILE_SHARES,
    QUEUE_DEPTH_MAX,
    QUEUE_LATENCY_MS,
    SERVICE_CPU,
    SUBMIT_MS,
    burst_done_s,
    make_run_folder,
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run_folder(tmp_path_factory.mktemp("results") / "20261125-100000", queue=True)


@pytest.fixture(scope="module")
def written(run_dir: Path) -> dict[str, Path]:
    return build_report(run_dir)


@pytest.fixture(scope="module")
def summary(written: dict[str, Path]) -> Summary:
    return Summary.load(written["summary"])


def _queue(summary: Summary) -> ArchitectureSummary:
    return summary.architectures["queue"]


def _phases(summary: Summary) -> dict[str, QueuePhase]:
    section = _queue(summary).queue
    assert section is not None
    return section.phases


def _window_rows(run_dir: Path, phase: str, kind: str) -> tuple[int, float]:
    step = json.loads((run_dir / "locust" / phase / "queue_schedule.json").read_text())["steps"][0]
    low, high = step["start"] + step["warmup_s"], step["end"]
    count = 0
    for path in (run_dir / "locust" / phase).glob("queue_requests*.csv"):
        with path.open(newline="") as handle:
            count += sum(
                1
                for row in csv.DictReader(handle)
                if row["name"] == entry_name("queue", kind) and low <= float(row["t"]) <= high
            )
    return count, high - low


def test_queue_statistics_are_of_the_end_to_end_entry_only(run_dir: Path, summary: Summary) -> None:
    queue = _queue(summary)
    assert queue.one_user is not None and queue.one_user.p50_ms is not None
    assert queue.sustained is not None and queue.ramp is not None
    tasks, _ = _window_rows(run_dir, "one_user", END_TO_END)
    assert queue.one_user.requests == tasks
    assert abs(queue.one_user.p50_ms - QUEUE_LATENCY_MS) <= 3.0  # not pulled down by submit (3 ms) rows
    tasks, seconds = _window_rows(run_dir, "sustained", END_TO_END)
    assert queue.sustained.rps == pytest.approx(tasks / seconds)
    assert queue.ramp.steps[0].requests > 0
    every = read_requests(run_dir, "sustained", "queue", "*")
    assert {r.name for r in every} == {"submit", "poll", "end_to_end"}
    assert {r.name for r in read_requests(run_dir, "sustained", "queue")} == {"end_to_end"}


def test_a_run_folder_with_the_old_bare_entry_names_gives_the_same_summary(
    tmp_path: Path, run_dir: Path, summary: Summary
) -> None:
    """Folders written before entries were named by architecture (``predict``, ``poll``) still rebuild."""
    legacy = make_run_folder(tmp_path / run_dir.name, queue=True, legacy_names=True)
    assert {
        row.split(",")[1] for row in (legacy / "locust/sustained/queue_requests.csv").read_text().split()[1:]
    } == {
        "submit",
        "poll",
        "end_to_end",
    }
    old = build_summary(legacy)
    assert old.architectures == summary.architectures


def test_sync_and_async_statistics_ignore_the_queue(tmp_path: Path, summary: Summary) -> None:
    alone = build_summary(make_run_folder(tmp_path / "run"))
    for arch in ("sync", "async"):
        assert summary.architectures[arch].sustained == alone.architectures[arch].sustained
        assert summary.architectures[arch].one_user == alone.architectures[arch].one_user


def test_queue_server_cpu_sums_its_api_worker_model_api_and_redis(run_dir: Path, summary: Summary) -> None:
    assert service_names("queue") == ("scoring-queue", "queue-worker", "model-async", "redis")
    tasks, seconds = _window_rows(run_dir, "sustained", END_TO_END)
    expected = sum(SERVICE_CPU["queue"].values()) / 100 * seconds * 1000 / tasks
    sustained = _queue(summary).sustained
    assert sustained is not None
    assert sustained.server_cpu_ms_per_request == pytest.approx(expected, rel=0.02)


def test_queue_section_has_depth_entries_and_worker_cpu(summary: Summary) -> None:
    phases = _phases(summary)
    assert set(phases) == {"one_user", "ramp", "sustained", "stress"}
    sustained = phases["sustained"]
    assert sustained.depth_max == pytest.approx(QUEUE_DEPTH_MAX, rel=0.05)
    assert sustained.depth_mean is not None and 0 < sustained.depth_mean < QUEUE_DEPTH_MAX
    assert sustained.submit.p50_ms == pytest.approx(SUBMIT_MS)
    assert sustained.polls_per_task == pytest.approx(1.0)
    assert sustained.worker_cpu_mean_percent == pytest.approx(SERVICE_CPU["queue"]["queue-worker"])
    assert sustained.worker_cpu_ms_per_task is not None and sustained.worker_cpu_ms_per_task > 0


def test_queue_ideal_is_concurrent_calls_and_its_api_and_worker_are_profiled(
    summary: Summary, written: dict[str, Path]
) -> None:
    archs = summary.architectures
    assert archs["queue"].ideal is not None and archs["sync"].ideal is not None
    assert archs["async"].ideal is not None  # QUEUE_MODEL_CALLS=concurrent: the async handler's ideal
    assert archs["queue"].ideal.p50_ms == archs["async"].ideal.p50_ms
    assert archs["queue"].profile == pytest.approx(PROFILE_SHARES["queue"])
    assert archs["queue"].worker_profile == pytest.approx(PROFILE_SHARES["queue-worker"])
    assert archs["sync"].worker_profile is None
    text = written["markdown"].read_text(encoding="utf-8")
    assert "profile (queue)" not in text and "not profiled" not in text
    assert "queue, profiled: model calls 0%, feature store 0%, json validation 2%, queue 93%" in text
    assert "queue worker, profiled: model calls 81%, feature store 2%, json validation 1%, queue 12%" in text
    assert "sync, profiled: model calls 92%, feature store 1%, json validation 2%, framework 5%" in text


def test_burst_section(summary: Summary) -> None:
    burst = summary.burst
    assert burst is not None and burst.tasks == BURST_TASKS
    runs = {(run.architecture, run.concurrency): run for run in burst.runs}
    assert set(runs) == {("queue", 8), ("queue", 64), ("sync", None), ("async", None)}
    for concurrency in (8, 64):
        run = runs[("queue", concurrency)]
        assert run.drain_s == pytest.approx(burst_done_s(f"queue_c{concurrency}", BURST_TASKS - 1))
        assert run.completed == BURST_TASKS and run.failures == 0
        assert run.depth_max == BURST_DEPTH_MAX[concurrency]
        assert run.drain_s is not None
        expected_cpu = BURST_WORKER_CPU / 100 * run.drain_s * 1000 / BURST_TASKS
        assert run.worker_cpu_ms_per_task == pytest.approx(expected_cpu, rel=0.01)
    assert runs[("async", None)].failures == BURST_FAILURES["async"]
    assert runs[("async", None)].drain_s is None  # not every request was answered
    assert runs[("sync", None)].last_done_s == pytest.approx(burst_done_s("sync", BURST_TASKS - 1))


def test_report_shows_the_queue_and_the_burst(written: dict[str, Path]) -> None:
    text = written["markdown"].read_text(encoding="utf-8")
    assert "|  | sync | async | queue |" in text  # the headline table's header
    assert "## The queue: end-to-end latency, depth and worker CPU" in text
    assert "## Burst: many requests at once (seed 000)" in text
    assert "The queue drained all 100 tasks in 2.08 s with 8 worker slots" in text
    assert "async: the same 100 requests at once — 5 failed" in text
    assert "plot_queue_depth" in written and "plot_burst" in written


def test_a_run_without_the_queue_has_no_queue_or_burst_section(tmp_path: Path) -> None:
    summary = build_summary(make_run_folder(tmp_path / "run"))
    assert summary.burst is None and "queue" not in summary.architectures
    assert summary.architectures["sync"].queue is None


def test_the_one_user_sentence_says_whether_the_submit_waited_or_the_client_polled(summary: Summary) -> None:
    queue = _queue(summary)
    assert queue.queue is not None and "one_user" in queue.queue.phases
    phases = queue.queue.phases
    waited = queue.model_copy(
        update={
            "queue": queue.queue.model_copy(
                update={"phases": {**phases, "one_user": QueuePhase(tasks=10, polls_per_task=0.0)}}
            )
        }
    )
    polled = queue.model_copy(
        update={
            "queue": queue.queue.model_copy(
                update={"phases": {**phases, "one_user": QueuePhase(tasks=10, polls_per_task=1.0)}}
            )
        }
    )
    assert "the submit waited for the result" in queue_sentences(waited)[0]
    assert "then the client polled" in queue_sentences(polled)[0]


def test_the_queue_time_split_has_its_time_before_and_after_the_task(
    summary: Summary, written: dict[str, Path]
) -> None:
    split = _queue(summary).time_split
    assert split is not None and split.concurrent is True and split.n
    assert split.queued_ms is not None and 3.0 <= split.queued_ms <= 4.0
    assert split.returned_ms is not None and 1.4 <= split.returned_ms <= 2.6
    direct = summary.architectures["sync"].time_split
    assert direct is not None and direct.queued_ms is None and direct.concurrent is False
    text = written["markdown"].read_text(encoding="utf-8")
    assert f"a task spent {split.queued_ms:.1f} ms from its submit to its start" in text
