"""What the plots draw from the raw files beyond the summary: latency samples, CPU and queue depth over
time, the burst's curves. Built here so that no plot opens the run folder; never written to summary.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from benchmark.analysis.phases import in_window
from benchmark.analysis.queue import finished_curve
from benchmark.analysis.raw import (
    PHASES,
    burst_dir,
    ok_latencies,
    queue_depth_path,
    read_burst_index,
    read_burst_tasks,
    read_depth,
    read_requests,
    read_resources,
    read_schedule,
    read_timeit,
    resource_path,
)
from benchmark.analysis.soak import SoakSeries, soak_series


@dataclass(frozen=True)
class Line:
    """One line of a plot: x (s since a phase or a burst started) and y values."""

    times: list[float]
    values: list[float]


@dataclass(frozen=True)
class CpuSeries:
    """CPU (% of one core) of each sampled process during the sustained phase, and where its warm-up ends
    (None without a schedule)."""

    lines: dict[str, Line]
    warmup_end_s: float | None


@dataclass(frozen=True)
class BurstSeries:
    """Results available over time per burst (``queue × 8``, ``sync``, ...), the queue's depth per worker
    concurrency, and the number of tasks of each burst."""

    tasks: int | None
    finished: dict[str, Line] = field(default_factory=dict)
    depth: dict[str, Line] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSeries:
    timeit_latencies: dict[str, list[float]] = field(default_factory=dict)  # successful requests, by arch
    one_user_latencies: dict[str, list[float]] = field(default_factory=dict)  # measured window, by arch
    sustained_cpu: dict[str, CpuSeries] = field(default_factory=dict)
    queue_depth: dict[str, Line] = field(default_factory=dict)  # by phase
    burst: BurstSeries | None = None
    soak: dict[str, SoakSeries] = field(default_factory=dict)  # by arch: the processes of its path


def build_series(run_dir: Path, archs: list[str]) -> RunSeries:
    """The series of ``archs`` (the summary's architectures) from the raw files; empty parts are left out."""
    run_dir = Path(run_dir)
    return RunSeries(
        timeit_latencies=_present({arch: ok_latencies(read_timeit(run_dir, arch)) for arch in archs}),
        one_user_latencies=_present({arch: _one_user_latencies(run_dir, arch) for arch in archs}),
        sustained_cpu={arch: cpu for arch in archs if (cpu := _cpu_series(run_dir, arch)) is not None},
        queue_depth=_queue_depth(run_dir) if "queue" in archs else {},
        burst=_burst(run_dir),
        soak=soak_series(run_dir, archs),
    )


def _present(values: dict[str, list[float]]) -> dict[str, list[float]]:
    return {key: items for key, items in values.items() if items}


def _one_user_latencies(run_dir: Path, arch: str) -> list[float]:
    steps = read_schedule(run_dir, "one_user", arch)
    if not steps:
        return []
    requests = in_window(read_requests(run_dir, "one_user", arch), steps[0])
    return [request.latency_ms for request in requests if request.ok]


def _cpu_series(run_dir: Path, arch: str) -> CpuSeries | None:
    samples = read_resources(resource_path(run_dir, "sustained", arch))
    if not samples:
        return None
    steps = read_schedule(run_dir, "sustained", arch)
    origin = steps[0].start if steps else samples[0].t
    lines: dict[str, Line] = {}
    for sample in samples:
        line = lines.setdefault(sample.name, Line([], []))
        line.times.append(sample.t - origin)
        line.values.append(sample.cpu_percent)
    return CpuSeries(lines, steps[0].warmup_s if steps else None)


def _queue_depth(run_dir: Path) -> dict[str, Line]:
    series: dict[str, Line] = {}
    for phase in PHASES:
        rows = read_depth(queue_depth_path(run_dir, phase))
        if rows:
            steps = read_schedule(run_dir, phase, "queue")
            origin = steps[0].start if steps else rows[0][0]
            series[phase] = Line([t - origin for t, _ in rows], [d for _, d in rows])
    return series


def burst_label(architecture: str | None, concurrency: int | None) -> str:
    return f"queue × {concurrency}" if architecture == "queue" else str(architecture)


def _burst(run_dir: Path) -> BurstSeries | None:
    index = read_burst_index(run_dir)
    if index is None:
        return None
    tasks, entries = index
    folder = burst_dir(run_dir)
    finished: dict[str, Line] = {}
    depth: dict[str, Line] = {}
    for entry in entries:
        label = burst_label(entry.architecture, entry.concurrency)
        burst_tasks = read_burst_tasks(folder / entry.file)
        if tasks is not None and len(burst_tasks) != tasks:  # another size (BENCH_BURST_SIZES): not plotted
            continue
        times, counts = finished_curve(burst_tasks)
        finished[label] = Line(times, [float(count) for count in counts])  # flat at 0 when none finished
        if entry.architecture == "queue" and entry.depth_file:
            rows = read_depth(folder / entry.depth_file)
            start = entry.start or 0.0
            if rows:
                depth[label] = Line([t - start for t, _ in rows], [d for _, d in rows])
    return BurstSeries(tasks, finished, depth)
