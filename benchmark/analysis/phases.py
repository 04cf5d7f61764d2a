"""The sections of one architecture from its load phases, timeit run and resource samples: one user, the
ramp and its breaking point, sustained load and its CPU cost, stress and recovery, saturation, timeit, the
time split, the ideal, and the async-over-sync improvement."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, cast, get_args

from benchmark.analysis.differs import SCORING_PROCESSES, side_config
from benchmark.analysis.raw import (
    LOAD_GENERATOR,
    MACHINE,
    OTHERS,
    QUEUE_WORKER,
    Request,
    Sample,
    Step,
    TimeitRow,
    ok_latencies,
    read_remote_workers,
    read_requests,
    read_resources,
    read_schedule,
    resource_files,
    resource_path,
)
from benchmark.breaking_point import RampStep, find_breaking_point
from benchmark.ideal import batched_ideal_latency_ms, ideal_latency_ms
from benchmark.settings import model_api_of
from benchmark.stats import improvement_ci, percentiles
from benchmark.summary import (
    BreakingPoint,
    Ideal,
    Improvement,
    OneUser,
    Ramp,
    RampPoint,
    RampStepStats,
    Recovery,
    Saturation,
    Stress,
    Sustained,
    Timeit,
    TimeSplit,
)
from scoring_bench.core.settings import Architecture, Settings
from scoring_bench.core.timing import BATCH_WAIT_PREFIX, FEATURE_STORE_STEP, MODEL_STEP_PREFIX, QUEUED_STEP

SATURATION_PERCENT = 90.0
# Processes outside the run using more than this (% of one core, on average over a phase's measured
# windows) took CPU the stack would have had: the phase's numbers may be low. Above the calibration's
# 10 % for an idle machine: under load the estimate (the machine less the run's processes) has a few %
# of sampling noise.
OTHERS_PERCENT = 15.0
RECOVERY_MAX_FAILURE_RATIO = 0.01
RECOVERY_LATENCY_FACTOR = 2.0
MAX_CI_VALUES = 2000  # improvement_ci is pure Python: subsample larger samples (deterministically)
CI_SEED = 0


@dataclass(frozen=True)
class WindowStats:
    """The requests of one step's measured window."""

    users: int
    duration_s: float
    requests: int
    failures: int
    rps: float | None
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    @property
    def failure_ratio(self) -> float | None:
        return self.failures / self.requests if self.requests else None


# --------------------------------------------------------------------------- windows


def window_fields(stats: WindowStats) -> dict[str, Any]:
    """What every summary of a measured window holds: users, requests and failures, req/s, latency."""
    return {
        "users": stats.users,
        "requests": stats.requests,
        "failures": stats.failures,
        "rps": stats.rps,
        "mean_ms": stats.mean_ms,
        "p50_ms": stats.p50_ms,
        "p95_ms": stats.p95_ms,
        "p99_ms": stats.p99_ms,
    }


def in_window(requests: Sequence[Request], step: Step) -> list[Request]:
    low, high = step.window
    return [request for request in requests if low <= request.t <= high]


def window_stats(requests: Sequence[Request], step: Step) -> WindowStats:
    """rps over every request of the window, latency percentiles over the successful ones."""
    selected = in_window(requests, step)
    latencies = [request.latency_ms for request in selected if request.ok]
    duration = step.duration_s
    pct = percentiles(latencies) if latencies else {}
    return WindowStats(
        users=step.users,
        duration_s=duration,
        requests=len(selected),
        failures=sum(1 for request in selected if not request.ok),
        rps=len(selected) / duration if duration > 0 else None,
        mean_ms=mean(latencies),
        p50_ms=pct.get("p50"),
        p95_ms=pct.get("p95"),
        p99_ms=pct.get("p99"),
    )


def phase_steps(run_dir: Path, phase: str, arch: str) -> tuple[list[Step], list[Request]] | None:
    """The phase's steps and the architecture's requests, or None without a schedule."""
    steps = read_schedule(run_dir, phase, arch)
    if not steps:
        return None
    return steps, read_requests(run_dir, phase, arch)


def mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def difference(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


# --------------------------------------------------------------------------- ideal, one user, timeit


def concurrent_calls(settings: Settings | None, arch: str) -> bool:
    """Whether ``arch`` makes its model calls concurrently: the recorded settings' answer
    (``Settings.concurrent_model_calls``); without settings, async and batched do (the queue's worker runs
    the sync handler's scoring code: one call after another)."""
    if settings is None or arch not in get_args(Architecture):
        return arch in ("async", "batched")
    return settings.concurrent_model_calls(cast(Architecture, arch))


def ideal_section(settings: Settings | None, arch: str) -> Ideal | None:
    if settings is None:
        return None
    if arch == "batched":  # at one user: a batch of one, sent after BATCH_MAX_WAIT_MS (benchmark/ideal.py)
        ideal = batched_ideal_latency_ms(settings)
    else:
        ideal = ideal_latency_ms(settings, concurrent=concurrent_calls(settings, arch))
    return Ideal(
        mean_ms=ideal.mean_ms,
        p50_ms=ideal.p50_ms,
        p95_ms=ideal.p95_ms,
        p99_ms=ideal.p99_ms,
        description=ideal.description,
    )


def one_user_section(
    run_dir: Path, arch: str, ideal: Ideal | None, phase_name: str = "one_user"
) -> OneUser | None:
    """The 1-user phase: its first step (a repetition's is too: :func:`repeat_phase`)."""
    phase = phase_steps(run_dir, phase_name, arch)
    if phase is None:
        return None
    steps, requests = phase
    stats = window_stats(requests, steps[0])
    return OneUser(
        **window_fields(stats), overhead_p50_ms=difference(stats.p50_ms, ideal.p50_ms if ideal else None)
    )


def timeit_section(rows: Sequence[TimeitRow]) -> Timeit | None:
    if not rows:
        return None
    latencies = ok_latencies(rows)
    pct = percentiles(latencies) if latencies else {}
    return Timeit(
        n=len(latencies),
        failures=len(rows) - len(latencies),
        mean_ms=mean(latencies),
        p50_ms=pct.get("p50"),
        p95_ms=pct.get("p95"),
        p99_ms=pct.get("p99"),
    )


def time_split_section(rows: Sequence[TimeitRow], concurrent: bool) -> TimeSplit | None:
    """Mean server time per request: feature store, model calls (summed, or their max when the handler
    makes them concurrently) and everything else, from the Server-Timing headers of the timeit run. A
    queue task's timings also say when it started (``queued``): the time before it, and the time from
    its end to the client's answer, are the queue's own. The batching handler's say, per model, how long
    the request waited for its batch to be sent (``batch_wait_<i>``) before the batch call (``model_<i>``):
    the slowest model's wait and call, apart (``batch_wait_ms``: None for the others)."""
    splits: list[tuple[float, float, float]] = []
    queued: list[float] = []
    returned: list[float] = []
    waits: list[float] = []
    for row in rows:
        timing = row.server_timing
        if row.status != 200 or "total" not in timing:
            continue
        models = {
            name[len(MODEL_STEP_PREFIX) :]: v
            for name, v in timing.items()
            if name.startswith(MODEL_STEP_PREFIX)
        }
        batch_waits = {
            name[len(BATCH_WAIT_PREFIX) :]: v
            for name, v in timing.items()
            if name.startswith(BATCH_WAIT_PREFIX)
        }
        wait_ms = 0.0
        if batch_waits and models:  # each model's path is its wait, then its call; the slowest one counts
            slowest = max(models, key=lambda key: batch_waits.get(key, 0.0) + models[key])
            model_ms, wait_ms = models[slowest], batch_waits.get(slowest, 0.0)
            waits.append(wait_ms)
        else:
            values = list(models.values())
            model_ms = (max(values) if concurrent else math.fsum(values)) if values else 0.0
        feature_store = timing.get(FEATURE_STORE_STEP, 0.0)
        other = max(timing["total"] - feature_store - model_ms - wait_ms, 0.0)
        splits.append((feature_store, model_ms, other))
        if QUEUED_STEP in timing:
            queued.append(timing[QUEUED_STEP])
            returned.append(max(row.latency_ms - timing[QUEUED_STEP] - timing["total"], 0.0))
    if not splits:
        return None
    n = len(splits)
    return TimeSplit(
        feature_store_ms=math.fsum(s[0] for s in splits) / n,
        models_ms=math.fsum(s[1] for s in splits) / n,
        other_ms=math.fsum(s[2] for s in splits) / n,
        n=n,
        concurrent=concurrent,
        queued_ms=math.fsum(queued) / len(queued) if queued else None,
        returned_ms=math.fsum(returned) / len(returned) if returned else None,
        batch_wait_ms=math.fsum(waits) / len(waits) if waits else None,
    )


def improvement_section(sync_ms: Sequence[float], async_ms: Sequence[float]) -> Improvement | None:
    if not sync_ms or not async_ms:
        return None
    try:
        result = improvement_ci(_subsample(sync_ms), _subsample(async_ms))
    except ValueError:
        return None
    return Improvement(
        percent=result.percent,
        low=result.low,
        high=result.high,
        confidence=result.confidence,
        n_sync=len(sync_ms),
        n_async=len(async_ms),
    )


def _subsample(values: Sequence[float], limit: int = MAX_CI_VALUES) -> list[float]:
    if len(values) <= limit:
        return list(values)
    return random.Random(CI_SEED).sample(list(values), limit)


# --------------------------------------------------------------------------- ramp


def ramp_section(run_dir: Path, arch: str, baseline_p95_ms: float | None) -> Ramp | None:
    phase = phase_steps(run_dir, "ramp", arch)
    if phase is None:
        return None
    steps, requests = phase
    stats = [window_stats(requests, step) for step in steps]
    rows = [
        RampStepStats(
            users=s.users,
            rps=s.rps,
            p50_ms=s.p50_ms,
            p95_ms=s.p95_ms,
            failure_ratio=s.failure_ratio,
            requests=s.requests,
        )
        for s in stats
    ]
    ramp = [_ramp_step(s) for s in stats]
    measured = [(i, step) for i, step in enumerate(ramp) if step.requests > 0]
    peak = None
    if measured:
        index, top = max(measured, key=lambda pair: pair[1].rps)
        peak = RampPoint(users=top.users, rps=top.rps, step_index=index)
    try:
        point = find_breaking_point(ramp, baseline_p95_ms=baseline_p95_ms or None)
    except ValueError as error:  # e.g. users not rising: report the steps, say why there is no verdict
        return Ramp(steps=rows, breaking_point=BreakingPoint(reason=f"not judged: {error}"), peak=peak)
    last_good = None
    if point.last_good_index is not None:
        good = ramp[point.last_good_index]
        last_good = RampPoint(users=good.users, rps=good.rps, step_index=point.last_good_index)
    breaking = BreakingPoint(
        users=point.users, rps=point.rps, reason=point.reason, step_index=point.step_index
    )
    return Ramp(steps=rows, breaking_point=breaking, last_good=last_good, peak=peak)


def _ramp_step(stats: WindowStats) -> RampStep:
    """A step as the detector takes it. A step without a successful request has no latency: 0 keeps it
    out of the latency rule, and the failure rule judges it (all its requests failed)."""
    return RampStep(
        users=stats.users,
        rps=stats.rps or 0.0,
        p50_ms=stats.p50_ms or 0.0,
        p95_ms=stats.p95_ms or 0.0,
        failure_ratio=stats.failure_ratio or 0.0,
        requests=stats.requests,
    )


# --------------------------------------------------------------------------- sustained and its CPU


def service_names(arch: str, settings: Settings | None = None) -> tuple[str, ...]:
    """The processes that serve an architecture's requests (Redis is shared). The queue's: its API, its
    worker, the model API the worker calls (``QUEUE_MODEL_API``) and Redis (broker, results, features).
    The batching handler's model API is the async one (its batch route)."""
    if arch == "queue":
        model = settings.queue_model_api if settings is not None else "async"
        return "scoring-queue", QUEUE_WORKER, f"model-{model}", "redis"
    return f"scoring-{arch}", model_api_of(arch), "redis"


def sustained_section(
    run_dir: Path,
    arch: str,
    settings: Settings | None = None,
    phase_name: str = "sustained",
    step_index: int = 0,
) -> Sustained | None:
    """The sustained phase: one step (a repetition's is its second: :func:`repeat_phase`)."""
    phase = phase_steps(run_dir, phase_name, arch)
    if phase is None or len(phase[0]) <= step_index:
        return None
    steps, requests = phase
    step = steps[step_index]
    stats = window_stats(requests, step)
    samples = read_resources(resource_path(run_dir, phase_name, arch))
    cpu_s = cpu_seconds(samples, service_names(arch, settings), step.window)
    low, high = step.window
    cores = cpu_s / (high - low) if cpu_s is not None and high > low else None
    processes = scoring_processes(settings, arch)
    return Sustained(
        **window_fields(stats),
        duration_s=stats.duration_s,
        failure_ratio=stats.failure_ratio,
        server_cpu_ms_per_request=cpu_s * 1000 / stats.requests
        if cpu_s is not None and stats.requests
        else None,
        cores_used=cores,
        rps_per_core=stats.rps / cores if stats.rps is not None and cores else None,
        scoring_processes=processes,
        rps_per_scoring_process=stats.rps / processes if stats.rps is not None and processes else None,
    )


def scoring_processes(settings: Settings | None, arch: str) -> int | None:
    """The side's scoring processes (its label in benchmark/analysis/differs.py), None without settings."""
    if settings is None:
        return None
    value = side_config(settings, arch).get(SCORING_PROCESSES)
    return int(value) if value is not None and value.isdigit() else None


def cpu_seconds(samples: Sequence[Sample], names: Iterable[str], window: tuple[float, float]) -> float | None:
    """CPU time (core-seconds) the named processes used within ``window``, or None without samples.

    A sample's cpu_percent is psutil's average since the previous sample of the same name, so it holds over
    the interval (previous t, t]; each interval is clipped to the window. The first sample of a name only
    starts the clock.
    """
    low, high = window
    total, seen = 0.0, False
    for name in dict.fromkeys(names):  # in order: the same sum (to the last bit) on every run
        series = [sample for sample in samples if sample.name == name]
        for previous, current in pairwise(series):
            overlap = min(current.t, high) - max(previous.t, low)
            if overlap > 0:
                total += current.cpu_percent / 100 * overlap
                seen = True
    return total if seen else None


# --------------------------------------------------------------------------- stress and recovery


def stress_section(run_dir: Path, arch: str, reference_p50_ms: float | None) -> Stress | None:
    """First step: the stress itself; second: recovery at fewer users. Recovered when the recovery step
    fails at most 1% and its p50 is at most twice the reference (1-user, else sustained) p50."""
    phase = phase_steps(run_dir, "stress", arch)
    if phase is None:
        return None
    steps, requests = phase
    stress = window_stats(requests, steps[0])
    recovery = _recovery(window_stats(requests, steps[1]), reference_p50_ms) if len(steps) > 1 else None
    return Stress(
        users=stress.users,
        requests=stress.requests,
        rps=stress.rps,
        p50_ms=stress.p50_ms,
        p95_ms=stress.p95_ms,
        failure_ratio=stress.failure_ratio,
        recovery=recovery,
    )


def _recovery(stats: WindowStats, reference_p50_ms: float | None) -> Recovery:
    recovered: bool | None = None
    if not stats.requests or stats.p50_ms is None:
        recovered = False
    elif reference_p50_ms is not None:
        recovered = (stats.failure_ratio or 0.0) <= RECOVERY_MAX_FAILURE_RATIO and (
            stats.p50_ms <= RECOVERY_LATENCY_FACTOR * reference_p50_ms
        )
    return Recovery(
        users=stats.users,
        requests=stats.requests,
        p50_ms=stats.p50_ms,
        failure_ratio=stats.failure_ratio,
        reference_p50_ms=reference_p50_ms,
        recovered=recovered,
    )


# --------------------------------------------------------------------------- saturation


def saturation_section(run_dir: Path, arch: str, cores: float | None) -> Saturation | None:
    """Whether the load generator (one process, % of one core) or the machine (% of one core, summed over
    cores) ran hot in any Locust phase: then the measurement may show the client's limit, not the server's;
    and whether processes outside the run took CPU meanwhile (the ``others`` rows).

    Only the samples within the phase's measured windows count (each step's warm-up and the time before
    and after it are left out): Locust's own start-up and report writing take most of a core for a moment,
    and a flag on a 1-user phase for that would teach users to ignore flags. Phases without a Locust
    schedule (the open loop, which reports whether its generator kept up per rate) are not judged here."""
    files = resource_files(run_dir, arch)
    if not files:
        return None
    flags: list[str] = []
    generator_max: float | None = None
    machine_max: float | None = None
    others_max: float | None = None
    for phase, path in files.items():
        steps = read_schedule(run_dir, phase, arch)
        if not steps:
            continue
        samples = within_windows(read_resources(path), [step.window for step in steps])
        generator = max_cpu(samples, LOAD_GENERATOR)
        who = "the load generator (locust)"
        if generator is None:  # workers on other machines: their own figures (<arch>_workers.csv)
            remote = [s for s in read_remote_workers(run_dir, phase, arch) if _inside(s.t, steps)]
            generator = max_cpu(remote, LOAD_GENERATOR)
            who = "a Locust worker on another machine (as it reports itself)"
        machine = max_cpu(samples, MACHINE)
        generator_max = _max_optional(generator_max, generator)
        machine_max = _max_optional(machine_max, machine)
        if generator is not None and generator > SATURATION_PERCENT:
            flags.append(
                f"{phase}: {who} reached {generator:.0f}% of one core "
                f"(> {SATURATION_PERCENT:.0f}%): the client may have limited the measurement"
            )
        others = mean_cpu(samples, OTHERS)
        others_max = _max_optional(others_max, others)
        if others is not None and others > OTHERS_PERCENT:
            flags.append(
                f"{phase}: processes outside the run used {others:.0f}% of one core on average "
                f"(> {OTHERS_PERCENT:.0f}%): another job took CPU from the stack, its numbers may be low"
            )
        if machine is not None and cores and machine > SATURATION_PERCENT * cores:
            flags.append(
                f"{phase}: the machine reached {machine:.0f}% CPU (> {SATURATION_PERCENT:.0f}% of "
                f"{cores:g} cores = {SATURATION_PERCENT * cores:.0f}%): client and servers competed for CPU"
            )
    return Saturation(
        load_generator_max_cpu_percent=generator_max,
        machine_max_cpu_percent=machine_max,
        others_cpu_percent=others_max,
        flags=flags,
    )


def _inside(t: float, steps: Sequence[Step]) -> bool:
    return any(low <= t <= high for low, high in (step.window for step in steps))


def within_windows(samples: Sequence[Sample], windows: Sequence[tuple[float, float]]) -> list[Sample]:
    """The samples whose interval lies inside one of ``windows``. A sample's CPU is the average since
    the previous sample of the same name: it covers (previous t, t]; a name's first sample covers
    nothing it can be judged by."""
    previous: dict[str, float] = {}
    kept = []
    for sample in sorted(samples, key=lambda s: s.t):
        before = previous.get(sample.name)
        previous[sample.name] = sample.t
        if before is not None and any(low <= before and sample.t <= high for low, high in windows):
            kept.append(sample)
    return kept


def generator_peak_in_windows(run_dir: Path, phase: str, arch: str) -> float | None:
    """The Locust processes' peak CPU within the phase's measured windows (% of one core)."""
    steps = read_schedule(run_dir, phase, arch)
    if not steps:
        return None
    samples = within_windows(read_resources(resource_path(run_dir, phase, arch)), [s.window for s in steps])
    return max_cpu(samples, LOAD_GENERATOR)


def generator_peak_percent(path: Path) -> float | None:
    """The highest CPU (% of one core) of any Locust process (``locust``, ``locust-worker-N``) in a
    resources CSV, or None without such rows."""
    return max_cpu(read_resources(path), LOAD_GENERATOR)


def max_cpu(samples: Iterable[Sample], name: str) -> float | None:
    """Highest CPU of ``name`` or of any process named ``name-...`` (e.g. locust-worker-2)."""
    return max(
        (s.cpu_percent for s in samples if s.name == name or s.name.startswith(name + "-")), default=None
    )


def mean_cpu(samples: Iterable[Sample], name: str) -> float | None:
    """Mean CPU of the samples named ``name``, or None without any."""
    values = [s.cpu_percent for s in samples if s.name == name]
    return sum(values) / len(values) if values else None


def _max_optional(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)
