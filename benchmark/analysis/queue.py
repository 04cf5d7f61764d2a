"""The queue's own numbers by load phase (depth, submit and poll entries, worker CPU) and the burst
experiment (``burst/``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from benchmark.analysis.phases import cpu_seconds, mean
from benchmark.analysis.raw import (
    PHASES,
    QUEUE_WORKER,
    BurstEntry,
    BurstTask,
    Request,
    burst_dir,
    queue_depth_path,
    read_burst_index,
    read_burst_tasks,
    read_depth,
    read_requests,
    read_resources,
    read_schedule,
    resource_path,
)
from benchmark.entries import END_TO_END, POLL, SUBMIT
from benchmark.stats import percentiles
from benchmark.summary import Burst, BurstRun, EntryStats, QueuePhase, QueueSection
from scoring_bench.core.settings import Settings

QUEUE_ENTRIES = (SUBMIT, POLL, END_TO_END)  # kinds: read_requests reads "queue poll" and "poll" alike
SAMPLE_SPAN_S = 0.5  # the resource sampler's period (BENCH_SAMPLE_INTERVAL_S): a sample's interval


def _entry_stats(requests: Sequence[Request]) -> EntryStats:
    latencies = [request.latency_ms for request in requests if request.ok]
    pct = percentiles(latencies) if latencies else {}
    return EntryStats(
        requests=len(requests),
        failures=sum(1 for r in requests if not r.ok),
        p50_ms=pct.get("p50"),
        p95_ms=pct.get("p95"),
    )


def queue_phase(run_dir: Path, phase: str) -> QueuePhase | None:
    """One load phase of the queue: depth (tasks waiting in the broker), the submit and poll entries, polls
    per task, and the worker's CPU. Counted from the end of the first step's warm-up to the phase's end."""
    steps = read_schedule(run_dir, phase, "queue")
    depth = read_depth(queue_depth_path(run_dir, phase))
    if not steps and not depth:
        return None
    window = (steps[0].window[0], steps[-1].end) if steps else (depth[0][0], depth[-1][0])
    every = [r for r in read_requests(run_dir, phase, "queue", "*") if window[0] <= r.t <= window[1]]
    entries = {name: [r for r in every if r.name == name] for name in QUEUE_ENTRIES}
    tasks = len(entries[END_TO_END])
    depths = [d for t, d in depth if window[0] <= t <= window[1]] or [d for _, d in depth]
    samples = read_resources(resource_path(run_dir, phase, "queue"))
    # a sample covers the interval before it: only those wholly inside the window count
    worker = [
        s.cpu_percent
        for s in samples
        if s.name == QUEUE_WORKER and window[0] < s.t - SAMPLE_SPAN_S and s.t <= window[1]
    ]
    cpu_s = cpu_seconds(samples, [QUEUE_WORKER], window)
    return QueuePhase(
        depth_max=max(depths) if depths else None,
        depth_mean=mean(depths),
        depth_samples=len(depths),
        tasks=tasks,
        submit=_entry_stats(entries[SUBMIT]),
        poll=_entry_stats(entries[POLL]),
        polls_per_task=len(entries[POLL]) / tasks if tasks else None,
        worker_cpu_mean_percent=mean(worker),
        worker_cpu_max_percent=max(worker) if worker else None,
        worker_cpu_ms_per_task=cpu_s * 1000 / tasks if cpu_s is not None and tasks else None,
    )


def queue_section(run_dir: Path, settings: Settings | None = None) -> QueueSection | None:
    """The queue's own numbers, by phase (see :func:`queue_phase`); None when no phase left files."""
    phases = {phase: data for phase in PHASES if (data := queue_phase(run_dir, phase)) is not None}
    if not phases:
        return None
    return QueueSection(phases=phases, model_api=f"model-{settings.queue_model_api}" if settings else None)


# --------------------------------------------------------------------------- burst


def burst_run(run_dir: Path, entry: BurstEntry) -> BurstRun | None:
    """One burst (one architecture, one worker concurrency for the queue) from its raw files."""
    tasks = read_burst_tasks(burst_dir(run_dir) / entry.file)
    if not tasks or entry.start is None:
        return None
    done = [task for task in tasks if task.ok and task.done_s is not None]
    done_s = [task.done_s for task in done if task.done_s is not None]
    latencies = [task.latency_ms for task in done if task.latency_ms is not None]
    accepted = [task.accepted_s for task in tasks if task.accepted_s is not None]
    last_done = max(done_s, default=None)
    drain = last_done if len(done) == len(tasks) else None
    pct = percentiles(latencies) if latencies else {}
    depth_max, worker_cpu = (
        _queue_extras(run_dir, entry, entry.start, last_done, len(done))
        if entry.architecture == "queue"
        else (None, None)
    )
    return BurstRun(
        architecture=entry.architecture,
        concurrency=entry.concurrency,
        tasks=len(tasks),
        completed=len(done),
        failures=len(tasks) - len(done),
        drain_s=drain,
        last_done_s=last_done,
        first_done_s=min(done_s, default=None),
        last_accepted_s=max(accepted) if accepted else None,
        p50_ms=pct.get("p50"),
        p95_ms=pct.get("p95"),
        max_ms=max(latencies) if latencies else None,
        throughput_per_s=len(done) / drain if drain else None,
        depth_max=depth_max,
        worker_cpu_ms_per_task=worker_cpu,
    )


def _queue_extras(
    run_dir: Path, entry: BurstEntry, start: float, last_done_s: float | None, completed: int
) -> tuple[float | None, float | None]:
    """The queue's deepest depth during the burst, and its worker's CPU per completed task."""
    folder = burst_dir(run_dir)
    depth = read_depth(folder / entry.depth_file) if entry.depth_file else []
    samples = read_resources(folder / entry.resources_file) if entry.resources_file else []
    cpu_s = cpu_seconds(samples, [QUEUE_WORKER], (start, start + last_done_s)) if last_done_s else None
    return (
        max((d for _, d in depth), default=None),
        cpu_s * 1000 / completed if cpu_s is not None and completed else None,
    )


def burst_section(run_dir: Path) -> Burst | None:
    """The burst experiment (``burst/runs.json`` and the files it names); None when it did not run."""
    index = read_burst_index(run_dir)
    if index is None:
        return None
    tasks, entries = index
    runs = [run for entry in entries if (run := burst_run(run_dir, entry)) is not None]
    return Burst(tasks=tasks, runs=runs)


def finished_curve(tasks: Sequence[BurstTask]) -> tuple[list[float], list[int]]:
    """Results available over time: (0 and each task's done_s, 0 … n)."""
    done = sorted(task.done_s for task in tasks if task.ok and task.done_s is not None)
    return [0.0, *done], list(range(len(done) + 1))
