"""Raw files of a run folder → ``summary.json`` (schema version 1, see ``doc/run-folder.md``).

Everything here only reads: the loaders turn the raw CSV and JSON files into plain Python values (missing or
empty files give empty results, never exceptions), and :func:`build_summary` computes the summary from them.
A section whose raw files are absent is ``None``, so an interrupted run still gets a summary.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from benchmark.breaking_point import RampStep, find_breaking_point
from benchmark.ideal import ideal_latency_ms
from benchmark.stats import improvement_ci, percentiles, spread
from scoring_bench.core.settings import Settings
from scoring_bench.core.timing import parse_server_timing

SCHEMA_VERSION = 1
KNOWN_ARCHITECTURES = ("sync", "async", "queue")
PHASES = ("one_user", "ramp", "sustained", "stress")
LOAD_GENERATOR = "locust"
MACHINE = "machine"
SATURATION_PERCENT = 90.0
RECOVERY_MAX_FAILURE_RATIO = 0.01
RECOVERY_LATENCY_FACTOR = 2.0
MAX_CI_VALUES = 2000  # improvement_ci is pure Python: subsample larger samples (deterministically)
CI_SEED = 0
ATTRIBUTION = "attribution"
WATERFALL = "waterfall"
GAP_EPSILON = 1e-6  # a change of the gap (ms or req/s) smaller than this is no change: no shares
PREDICT = "predict"
END_TO_END = "end_to_end"  # the queue user's submit → result entry: what the queue's statistics are of
QUEUE_ENTRIES = ("submit", "poll", END_TO_END)
QUEUE_WORKER = "queue-worker"
BURST = "burst"
SAMPLE_SPAN_S = 0.5  # the resource sampler's period (BENCH_SAMPLE_INTERVAL_S): a sample's interval


# --------------------------------------------------------------------------- raw records


@dataclass(frozen=True)
class Request:
    """One row of a ``<arch>_requests*.csv`` file."""

    t: float
    latency_ms: float
    ok: bool
    name: str = PREDICT


@dataclass(frozen=True)
class Step:
    """One step of a load shape (``<arch>_schedule.json``)."""

    users: int
    start: float
    end: float
    warmup_s: float

    @property
    def window(self) -> tuple[float, float]:
        """The measured part of the step: warm-up excluded."""
        return self.start + self.warmup_s, self.end

    @property
    def duration_s(self) -> float:
        return self.end - self.start - self.warmup_s


@dataclass(frozen=True)
class TimeitRow:
    """One row of ``timeit/<arch>.csv``."""

    latency_ms: float
    status: int
    server_timing: dict[str, float]


@dataclass(frozen=True)
class Sample:
    """One row of ``resources/<phase>_<arch>.csv``."""

    t: float
    name: str
    cpu_percent: float
    rss_mb: float | None


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


# --------------------------------------------------------------------------- loaders


def read_json(path: Path) -> Any:
    """The parsed file, or None when it is missing, empty or not valid JSON (e.g. cut short)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _csv_rows(path: Path) -> Iterator[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            yield from csv.DictReader(handle)
    except OSError:
        return


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def locust_dir(run_dir: Path, phase: str) -> Path:
    return run_dir / "locust" / phase


def entry_name(arch: str) -> str:
    """The Locust entry an architecture's statistics are computed from: the queue's ``end_to_end``
    (submit → result), the others' ``predict``."""
    return END_TO_END if arch == "queue" else PREDICT


def read_requests(run_dir: Path, phase: str, arch: str, name: str | None = None) -> list[Request]:
    """The requests named ``name`` (default: the architecture's :func:`entry_name`; ``"*"``: every
    entry) of every ``<arch>_requests*.csv`` of the phase, ordered by completion time.

    Rows that do not parse (a line cut short by an interruption) are skipped.
    """
    wanted = entry_name(arch) if name is None else name
    requests: list[Request] = []
    for path in sorted(locust_dir(run_dir, phase).glob(f"{arch}_requests*.csv")):
        for row in _csv_rows(path):
            t, latency = _number(row.get("t")), _number(row.get("latency_ms"))
            row_name = (row.get("name") or "").strip()
            if t is None or latency is None or (wanted != "*" and row_name != wanted):
                continue
            ok = (row.get("ok") or "").strip() in ("1", "true", "True")
            requests.append(Request(t, latency, ok, row_name))
    requests.sort(key=lambda request: request.t)
    return requests


def read_schedule(run_dir: Path, phase: str, arch: str) -> list[Step] | None:
    """The steps of the phase's load shape, or None when there is no schedule.

    A step without an ``end`` (the run stopped during it) ends at its last request.
    """
    data = read_json(locust_dir(run_dir, phase) / f"{arch}_schedule.json")
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        return None
    last_t: float | None = None
    steps: list[Step] = []
    for raw in data["steps"]:
        if not isinstance(raw, dict) or _as_float(raw.get("start")) is None:
            continue
        end = _as_float(raw.get("end"))
        if end is None:
            if last_t is None:
                last_t = max((r.t for r in read_requests(run_dir, phase, arch, "*")), default=None)
            end = last_t if last_t is not None else _as_float(raw["start"])
        users = int(_as_float(raw.get("users")) or 0)
        steps.append(Step(users, float(raw["start"]), float(end), _as_float(raw.get("warmup_s")) or 0.0))
    return steps


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    return _number(str(value))


def read_timeit(run_dir: Path, arch: str) -> list[TimeitRow]:
    rows: list[TimeitRow] = []
    for row in _csv_rows(run_dir / "timeit" / f"{arch}.csv"):
        latency, status = _number(row.get("latency_ms")), _number(row.get("status"))
        if latency is None or status is None:
            continue
        rows.append(TimeitRow(latency, int(status), _parse_timing(row.get("server_timing") or "")))
    return rows


def _parse_timing(value: str) -> dict[str, float]:
    try:
        return parse_server_timing(value) if value.strip() else {}
    except ValueError:
        return {}


def resource_files(run_dir: Path, arch: str) -> dict[str, Path]:
    """``resources/<phase>_<arch>.csv`` by phase."""
    suffix = f"_{arch}.csv"
    return {
        path.name[: -len(suffix)]: path
        for path in sorted((run_dir / "resources").glob(f"*{suffix}"))
        if len(path.name) > len(suffix)
    }


def read_resources(path: Path) -> list[Sample]:
    samples: list[Sample] = []
    for row in _csv_rows(path):
        t, cpu = _number(row.get("t")), _number(row.get("cpu_percent"))
        if t is not None and cpu is not None and row.get("name"):
            samples.append(Sample(t, row["name"], cpu, _number(row.get("rss_mb"))))
    samples.sort(key=lambda sample: sample.t)
    return samples


def service_names(arch: str, settings: Settings | None = None) -> tuple[str, ...]:
    """The processes that serve an architecture's requests (Redis is shared). The queue's: its API, its
    worker, the model API the worker calls (``QUEUE_MODEL_API``) and Redis (broker, results, features)."""
    if arch == "queue":
        model = settings.queue_model_api if settings is not None else "async"
        return "scoring-queue", QUEUE_WORKER, f"model-{model}", "redis"
    return f"scoring-{arch}", f"model-{arch}", "redis"


def generator_peak_percent(path: Path) -> float | None:
    """The highest CPU (% of one core) of any Locust process (``locust``, ``locust-worker-N``) in a
    resources CSV, or None without such rows."""
    return _max_cpu(read_resources(path), LOAD_GENERATOR)


def architectures(run_dir: Path, run: dict[str, Any] | None) -> list[str]:
    """run.json's architectures, else those any raw file names."""
    listed = run.get("architectures") if run else None
    if isinstance(listed, list) and listed and all(isinstance(a, str) for a in listed):
        return list(dict.fromkeys(listed))
    found = [arch for arch in KNOWN_ARCHITECTURES if _has_raw_files(run_dir, arch)]
    return found or ["sync", "async"]


def _has_raw_files(run_dir: Path, arch: str) -> bool:
    if (run_dir / "timeit" / f"{arch}.csv").exists() or resource_files(run_dir, arch):
        return True
    return any((locust_dir(run_dir, phase) / f"{arch}_schedule.json").exists() for phase in PHASES)


def recorded_settings(environment: dict[str, Any] | None) -> Settings | None:
    """The stack's settings as environment.json recorded them (unknown keys ignored), or None."""
    values = environment.get("settings") if environment else None
    if not isinstance(values, dict):
        return None
    known = {key: value for key, value in values.items() if key in Settings.model_fields}
    try:
        return _RecordedSettings(**known)
    except ValidationError:
        return None


class _RecordedSettings(Settings):
    """Settings from the recorded values only: the environment of the process building the report (its
    NUM_MODELS, ...) must not leak into the ideal latency of a run made elsewhere."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


# --------------------------------------------------------------------------- statistics


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
        mean_ms=math.fsum(latencies) / len(latencies) if latencies else None,
        p50_ms=pct.get("p50"),
        p95_ms=pct.get("p95"),
        p99_ms=pct.get("p99"),
    )


def _phase_steps(run_dir: Path, phase: str, arch: str) -> tuple[list[Step], list[Request]] | None:
    steps = read_schedule(run_dir, phase, arch)
    if not steps:
        return None
    return steps, read_requests(run_dir, phase, arch)


def ideal_section(settings: Settings | None, arch: str) -> dict[str, Any] | None:
    if settings is None:
        return None
    ideal = ideal_latency_ms(settings, concurrent=concurrent_calls(settings, arch))
    return {
        "mean_ms": ideal.mean_ms,
        "p50_ms": ideal.p50_ms,
        "p95_ms": ideal.p95_ms,
        "p99_ms": ideal.p99_ms,
        "description": ideal.description,
    }


def one_user_section(run_dir: Path, arch: str, ideal: dict[str, Any] | None) -> dict[str, Any] | None:
    phase = _phase_steps(run_dir, "one_user", arch)
    if phase is None:
        return None
    steps, requests = phase
    stats = window_stats(requests, steps[0])
    overhead = _difference(stats.p50_ms, ideal["p50_ms"] if ideal else None)
    return {
        "users": stats.users,
        "requests": stats.requests,
        "failures": stats.failures,
        "rps": stats.rps,
        "mean_ms": stats.mean_ms,
        "p50_ms": stats.p50_ms,
        "p95_ms": stats.p95_ms,
        "p99_ms": stats.p99_ms,
        "overhead_p50_ms": overhead,
    }


def _difference(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def timeit_section(rows: Sequence[TimeitRow]) -> dict[str, Any] | None:
    if not rows:
        return None
    latencies = ok_latencies(rows)
    pct = percentiles(latencies) if latencies else {}
    return {
        "n": len(latencies),
        "failures": len(rows) - len(latencies),
        "mean_ms": math.fsum(latencies) / len(latencies) if latencies else None,
        "p50_ms": pct.get("p50"),
        "p95_ms": pct.get("p95"),
        "p99_ms": pct.get("p99"),
    }


def time_split_section(rows: Sequence[TimeitRow], concurrent: bool) -> dict[str, Any] | None:
    """Mean server time per request: feature store, model calls (summed, or their max when the handler
    makes them concurrently) and everything else, from the Server-Timing headers of the timeit run."""
    splits: list[tuple[float, float, float]] = []
    for row in rows:
        timing = row.server_timing
        if row.status != 200 or "total" not in timing:
            continue
        models = [value for name, value in timing.items() if name.startswith("model_")]
        model_ms = (max(models) if concurrent else math.fsum(models)) if models else 0.0
        feature_store = timing.get("feature_store", 0.0)
        splits.append((feature_store, model_ms, max(timing["total"] - feature_store - model_ms, 0.0)))
    if not splits:
        return None
    n = len(splits)
    return {
        "feature_store_ms": math.fsum(s[0] for s in splits) / n,
        "models_ms": math.fsum(s[1] for s in splits) / n,
        "other_ms": math.fsum(s[2] for s in splits) / n,
        "n": n,
    }


def ramp_section(run_dir: Path, arch: str, baseline_p95_ms: float | None) -> dict[str, Any] | None:
    phase = _phase_steps(run_dir, "ramp", arch)
    if phase is None:
        return None
    steps, requests = phase
    stats = [window_stats(requests, step) for step in steps]
    section: dict[str, Any] = {
        "steps": [_ramp_step_dict(s) for s in stats],
        "breaking_point": None,
        "last_good": None,
        "peak": None,
    }
    ramp = [_ramp_step(s) for s in stats]
    measured = [(i, step) for i, step in enumerate(ramp) if step.requests > 0]
    if measured:
        index, top = max(measured, key=lambda pair: pair[1].rps)
        section["peak"] = {"users": top.users, "rps": top.rps, "step_index": index}
    try:
        point = find_breaking_point(ramp, baseline_p95_ms=baseline_p95_ms or None)
    except ValueError as error:  # e.g. users not rising: report the steps, say why there is no verdict
        section["breaking_point"] = {"users": None, "rps": None, "reason": f"not judged: {error}"}
        return section
    section["breaking_point"] = {
        "users": point.users,
        "rps": point.rps,
        "reason": point.reason,
        "step_index": point.step_index,
    }
    if point.last_good_index is not None:
        good = ramp[point.last_good_index]
        section["last_good"] = {"users": good.users, "rps": good.rps, "step_index": point.last_good_index}
    return section


def _ramp_step_dict(stats: WindowStats) -> dict[str, Any]:
    return {
        "users": stats.users,
        "rps": stats.rps,
        "p50_ms": stats.p50_ms,
        "p95_ms": stats.p95_ms,
        "failure_ratio": stats.failure_ratio,
        "requests": stats.requests,
    }


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


def sustained_section(run_dir: Path, arch: str, settings: Settings | None = None) -> dict[str, Any] | None:
    phase = _phase_steps(run_dir, "sustained", arch)
    if phase is None:
        return None
    steps, requests = phase
    step = steps[0]
    stats = window_stats(requests, step)
    samples = read_resources(run_dir / "resources" / f"sustained_{arch}.csv")
    cpu_s = cpu_seconds(samples, service_names(arch, settings), step.window)
    return {
        "users": stats.users,
        "duration_s": stats.duration_s,
        "requests": stats.requests,
        "failures": stats.failures,
        "rps": stats.rps,
        "mean_ms": stats.mean_ms,
        "p50_ms": stats.p50_ms,
        "p95_ms": stats.p95_ms,
        "p99_ms": stats.p99_ms,
        "failure_ratio": stats.failure_ratio,
        "server_cpu_ms_per_request": cpu_s * 1000 / stats.requests if cpu_s is not None and stats.requests
        else None,
    }


def cpu_seconds(samples: Sequence[Sample], names: Iterable[str], window: tuple[float, float]) -> float | None:
    """CPU time (core-seconds) the named processes used within ``window``, or None without samples.

    A sample's cpu_percent is psutil's average since the previous sample of the same name, so it holds over
    the interval (previous t, t]; each interval is clipped to the window. The first sample of a name only
    starts the clock.
    """
    low, high = window
    total, seen = 0.0, False
    for name in set(names):
        series = [sample for sample in samples if sample.name == name]
        for previous, current in zip(series, series[1:]):
            overlap = min(current.t, high) - max(previous.t, low)
            if overlap > 0:
                total += current.cpu_percent / 100 * overlap
                seen = True
    return total if seen else None


def stress_section(run_dir: Path, arch: str, reference_p50_ms: float | None) -> dict[str, Any] | None:
    """First step: the stress itself; second: recovery at fewer users. Recovered when the recovery step
    fails at most 1% and its p50 is at most twice the reference (1-user, else sustained) p50."""
    phase = _phase_steps(run_dir, "stress", arch)
    if phase is None:
        return None
    steps, requests = phase
    stress = window_stats(requests, steps[0])
    section: dict[str, Any] = {
        "users": stress.users,
        "requests": stress.requests,
        "rps": stress.rps,
        "p50_ms": stress.p50_ms,
        "p95_ms": stress.p95_ms,
        "failure_ratio": stress.failure_ratio,
        "recovery": None,
    }
    if len(steps) > 1:
        section["recovery"] = _recovery(window_stats(requests, steps[1]), reference_p50_ms)
    return section


def _recovery(stats: WindowStats, reference_p50_ms: float | None) -> dict[str, Any]:
    recovered: bool | None = None
    if not stats.requests or stats.p50_ms is None:
        recovered = False
    elif reference_p50_ms is not None:
        recovered = (stats.failure_ratio or 0.0) <= RECOVERY_MAX_FAILURE_RATIO and (
            stats.p50_ms <= RECOVERY_LATENCY_FACTOR * reference_p50_ms
        )
    return {
        "users": stats.users,
        "requests": stats.requests,
        "p50_ms": stats.p50_ms,
        "failure_ratio": stats.failure_ratio,
        "reference_p50_ms": reference_p50_ms,
        "recovered": recovered,
    }


def saturation_section(run_dir: Path, arch: str, cores: float | None) -> dict[str, Any] | None:
    """Whether the load generator (one process, % of one core) or the machine (% of one core, summed over
    cores) ran hot in any phase: then the measurement may show the client's limit, not the server's."""
    files = resource_files(run_dir, arch)
    if not files:
        return None
    flags: list[str] = []
    generator_max: float | None = None
    machine_max: float | None = None
    for phase, path in files.items():
        samples = read_resources(path)
        generator = _max_cpu(samples, LOAD_GENERATOR)
        machine = _max_cpu(samples, MACHINE)
        generator_max = _max_optional(generator_max, generator)
        machine_max = _max_optional(machine_max, machine)
        if generator is not None and generator > SATURATION_PERCENT:
            flags.append(
                f"{phase}: the load generator (locust) reached {generator:.0f}% of one core "
                f"(> {SATURATION_PERCENT:.0f}%): the client may have limited the measurement"
            )
        if machine is not None and cores and machine > SATURATION_PERCENT * cores:
            flags.append(
                f"{phase}: the machine reached {machine:.0f}% CPU (> {SATURATION_PERCENT:.0f}% of "
                f"{cores:g} cores = {SATURATION_PERCENT * cores:.0f}%): client and servers competed for CPU"
            )
    return {
        "load_generator_max_cpu_percent": generator_max,
        "machine_max_cpu_percent": machine_max,
        "flags": flags,
    }


def _max_cpu(samples: Iterable[Sample], name: str) -> float | None:
    """Highest CPU of ``name`` or of any process named ``name-...`` (e.g. locust-worker-2)."""
    return max(
        (s.cpu_percent for s in samples if s.name == name or s.name.startswith(name + "-")), default=None
    )


def _max_optional(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def profile_section(run_dir: Path, arch: str) -> dict[str, Any] | None:
    data = read_json(run_dir / "profiles" / arch / "breakdown.json")
    shares = data.get("shares") if isinstance(data, dict) else None
    if not isinstance(shares, dict):
        return None
    return {str(key): value for key, value in shares.items() if _as_float(value) is not None}


def improvement_section(sync_ms: Sequence[float], async_ms: Sequence[float]) -> dict[str, Any] | None:
    if not sync_ms or not async_ms:
        return None
    try:
        result = improvement_ci(_subsample(sync_ms), _subsample(async_ms))
    except ValueError:
        return None
    return {
        "percent": result.percent,
        "low": result.low,
        "high": result.high,
        "confidence": result.confidence,
        "n_sync": len(sync_ms),
        "n_async": len(async_ms),
    }


def _subsample(values: Sequence[float], limit: int = MAX_CI_VALUES) -> list[float]:
    if len(values) <= limit:
        return list(values)
    return random.Random(CI_SEED).sample(list(values), limit)


# --------------------------------------------------------------------------- queue and burst


@dataclass(frozen=True)
class BurstTask:
    """One row of a ``burst/<arch>[_c<concurrency>].csv`` file: times in s since the burst started."""

    submitted_s: float
    accepted_s: float | None
    done_s: float | None
    latency_ms: float | None
    ok: bool


def read_depth(path: Path) -> list[tuple[float, float]]:
    """``(t, depth)`` rows of a queue depth CSV, ordered by time."""
    rows = [(t, d) for row in _csv_rows(path)
            if (t := _number(row.get("t"))) is not None and (d := _number(row.get("depth"))) is not None]
    return sorted(rows)


def _entry_stats(requests: Sequence[Request]) -> dict[str, Any]:
    latencies = [request.latency_ms for request in requests if request.ok]
    pct = percentiles(latencies) if latencies else {}
    return {"requests": len(requests), "failures": sum(1 for r in requests if not r.ok),
            "p50_ms": pct.get("p50"), "p95_ms": pct.get("p95")}


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def queue_phase(run_dir: Path, phase: str) -> dict[str, Any] | None:
    """One load phase of the queue: depth (tasks waiting in the broker), the submit and poll entries, polls
    per task, and the worker's CPU. Counted from the end of the first step's warm-up to the phase's end."""
    steps = read_schedule(run_dir, phase, "queue")
    depth = read_depth(run_dir / "resources" / f"{phase}_queue_depth.csv")
    if not steps and not depth:
        return None
    window = (steps[0].window[0], steps[-1].end) if steps else (depth[0][0], depth[-1][0])
    every = [r for r in read_requests(run_dir, phase, "queue", "*") if window[0] <= r.t <= window[1]]
    entries = {name: [r for r in every if r.name == name] for name in QUEUE_ENTRIES}
    tasks = len(entries[END_TO_END])
    depths = [d for t, d in depth if window[0] <= t <= window[1]] or [d for _, d in depth]
    samples = read_resources(run_dir / "resources" / f"{phase}_queue.csv")
    # a sample covers the interval before it: only those wholly inside the window count
    worker = [s.cpu_percent for s in samples
              if s.name == QUEUE_WORKER and window[0] < s.t - SAMPLE_SPAN_S and s.t <= window[1]]
    cpu_s = cpu_seconds(samples, [QUEUE_WORKER], window)
    return {
        "depth_max": max(depths) if depths else None,
        "depth_mean": _mean(depths),
        "depth_samples": len(depths),
        "tasks": tasks,
        "submit": _entry_stats(entries["submit"]),
        "poll": _entry_stats(entries["poll"]),
        "polls_per_task": len(entries["poll"]) / tasks if tasks else None,
        "worker_cpu_mean_percent": _mean(worker),
        "worker_cpu_max_percent": max(worker) if worker else None,
        "worker_cpu_ms_per_task": cpu_s * 1000 / tasks if cpu_s is not None and tasks else None,
    }


def queue_section(run_dir: Path, settings: Settings | None = None) -> dict[str, Any] | None:
    """The queue's own numbers, by phase (see :func:`queue_phase`); None when no phase left files."""
    phases = {phase: data for phase in PHASES if (data := queue_phase(run_dir, phase)) is not None}
    if not phases:
        return None
    return {"phases": phases, "model_api": f"model-{settings.queue_model_api}" if settings else None}


def burst_dir(run_dir: Path) -> Path:
    return Path(run_dir) / BURST


def read_burst_tasks(path: Path) -> list[BurstTask]:
    tasks: list[BurstTask] = []
    for row in _csv_rows(path):
        submitted = _number(row.get("submitted_s"))
        if submitted is None:
            continue
        tasks.append(BurstTask(submitted, _number(row.get("accepted_s")), _number(row.get("done_s")),
                               _number(row.get("latency_ms")), (row.get("ok") or "").strip() == "1"))
    return tasks


def burst_run(run_dir: Path, entry: dict[str, Any]) -> dict[str, Any] | None:
    """One burst (one architecture, one worker concurrency for the queue) from its raw files."""
    folder = burst_dir(run_dir)
    tasks = read_burst_tasks(folder / str(entry.get("file")))
    start = _as_float(entry.get("start"))
    if not tasks or start is None:
        return None
    done = [task for task in tasks if task.ok and task.done_s is not None]
    latencies = [task.latency_ms for task in done if task.latency_ms is not None]
    accepted = [task.accepted_s for task in tasks if task.accepted_s is not None]
    drain = max((task.done_s for task in done), default=None) if len(done) == len(tasks) else None
    pct = percentiles(latencies) if latencies else {}
    run: dict[str, Any] = {
        "architecture": entry.get("architecture"),
        "concurrency": entry.get("concurrency"),
        "tasks": len(tasks),
        "completed": len(done),
        "failures": len(tasks) - len(done),
        "drain_s": drain,
        "last_done_s": max((task.done_s for task in done), default=None),
        "first_done_s": min((task.done_s for task in done), default=None),
        "last_accepted_s": max(accepted) if accepted else None,
        "p50_ms": pct.get("p50"),
        "p95_ms": pct.get("p95"),
        "max_ms": max(latencies) if latencies else None,
        "throughput_per_s": len(done) / drain if drain else None,
    }
    if entry.get("architecture") == "queue":
        run.update(_burst_queue_extras(folder, entry, start, run))
    return run


def _burst_queue_extras(folder: Path, entry: dict[str, Any], start: float,
                        run: dict[str, Any]) -> dict[str, Any]:
    depth = read_depth(folder / str(entry.get("depth_file")))
    samples = read_resources(folder / str(entry.get("resources_file")))
    end = start + (run["last_done_s"] or 0.0)
    cpu_s = cpu_seconds(samples, [QUEUE_WORKER], (start, end)) if run["last_done_s"] else None
    return {
        "depth_max": max((d for _, d in depth), default=None),
        "worker_cpu_ms_per_task": cpu_s * 1000 / run["completed"] if cpu_s is not None and run["completed"]
        else None,
    }


def burst_section(run_dir: Path) -> dict[str, Any] | None:
    """The burst experiment (``burst/runs.json`` and the files it names); None when it did not run."""
    index = read_json(burst_dir(run_dir) / "runs.json")
    if not isinstance(index, dict) or not isinstance(index.get("runs"), list):
        return None
    runs = [run for entry in index["runs"] if isinstance(entry, dict) and (run := burst_run(run_dir, entry))]
    return {"tasks": index.get("tasks"), "runs": runs}


# --------------------------------------------------------------------------- attribution

Plan = dict[tuple[str, int], dict[str, Any]]  # attribution/plan.json's entries by (study, step)


@dataclass(frozen=True)
class Measurement:
    """One row of ``attribution/measurements.csv``: one architecture, one repetition of one configuration."""

    study: str
    step: int
    label: str
    factor: str
    before: str
    after: str
    arch: str
    rep: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    rps: float | None
    failure_ratio: float | None
    load_users: int | None
    num_models: int | None
    model_kind: str
    model_latency: str


def attribution_dir(run_dir: Path) -> Path:
    return Path(run_dir) / ATTRIBUTION


def read_measurements(run_dir: Path) -> list[Measurement]:
    """The rows of ``attribution/measurements.csv`` (rows without a study, step or architecture skipped)."""
    rows: list[Measurement] = []
    for row in _csv_rows(attribution_dir(run_dir) / "measurements.csv"):
        step, rep = _number(row.get("step")), _number(row.get("rep"))
        study, arch = (row.get("study") or "").strip(), (row.get("arch") or "").strip()
        if step is None or not study or not arch:
            continue
        rows.append(Measurement(
            study=study, step=int(step), label=row.get("label") or "", factor=row.get("factor") or "",
            before=row.get("from") or "", after=row.get("to") or "", arch=arch, rep=int(rep or 0),
            p50_ms=_number(row.get("p50_ms")), p95_ms=_number(row.get("p95_ms")),
            p99_ms=_number(row.get("p99_ms")), rps=_number(row.get("rps")),
            failure_ratio=_number(row.get("failure_ratio")), load_users=_integer(row.get("load_users")),
            num_models=_integer(row.get("num_models")), model_kind=row.get("model_kind") or "",
            model_latency=row.get("model_latency") or "",
        ))
    return rows


def _integer(value: str | None) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def read_plan(run_dir: Path) -> Plan:
    """``attribution/plan.json`` by (study, step); empty when it is missing or unreadable."""
    data = read_json(attribution_dir(run_dir) / "plan.json")
    plan: Plan = {}
    for entry in data if isinstance(data, list) else []:
        step = _as_float(entry.get("step")) if isinstance(entry, dict) else None
        if step is not None and isinstance(entry.get("study"), str):
            plan[(entry["study"], int(step))] = entry
    return plan


def study_settings(run_dir: Path, row: Measurement, recorded: Settings | None,
                   plan_entry: dict[str, Any] | None) -> Settings | None:
    """The stack settings a configuration ran with: its own ``config.json`` when present, else the run's
    recorded settings with the configuration's overrides (the measurement's columns, then plan.json's)."""
    config = read_json(attribution_dir(run_dir) / row.study / str(row.step) / "config.json")
    if isinstance(config, dict) and isinstance(config.get("settings"), dict):
        own = recorded_settings({"settings": config["settings"]})
        if own is not None:
            return own
    if recorded is None:
        return None
    columns = {"num_models": row.num_models, "model_kind": row.model_kind, "model_latency": row.model_latency}
    known = {key: value for key, value in columns.items() if value not in (None, "")}
    overrides = (plan_entry or {}).get("overrides")
    values = {**recorded.model_dump(), **known, **(overrides if isinstance(overrides, dict) else {})}
    try:
        return _RecordedSettings(**values)
    except ValidationError:
        return None


def concurrent_calls(settings: Settings | None, arch: str) -> bool:
    """Whether ``arch`` makes its model calls concurrently: as ``model_calls`` says, else async does (the
    queue's worker runs the sync handler's scoring code: one call after another)."""
    calls = settings.model_calls if settings is not None else "auto"
    return calls == "concurrent" if calls != "auto" else arch == "async"


def _mean_and_spread(values: Iterable[float | None]) -> tuple[float | None, dict[str, float] | None]:
    present = [value for value in values if value is not None]
    if not present:
        return None, None
    summary = spread(present)
    return summary["mean"], summary


def _level(rows: Sequence[Measurement]) -> dict[str, Any]:
    """One configuration and architecture over its repetitions: means, and the spread of p50 and req/s."""
    p50, p50_spread = _mean_and_spread(row.p50_ms for row in rows)
    rps, rps_spread = _mean_and_spread(row.rps for row in rows)
    return {
        "step": rows[0].step,
        "label": rows[0].label,
        "reps": len(rows),
        "p50_ms": p50,
        "p95_ms": _mean_and_spread(row.p95_ms for row in rows)[0],
        "p99_ms": _mean_and_spread(row.p99_ms for row in rows)[0],
        "max_rps": rps,
        "failure_ratio": _mean_and_spread(row.failure_ratio for row in rows)[0],
        "spread": {"p50_ms": p50_spread, "max_rps": rps_spread},
    }


def _group(rows: Iterable[Measurement], study: str) -> dict[int, dict[str, list[Measurement]]]:
    """A study's rows by step, then by architecture (in the order they were measured)."""
    groups: dict[int, dict[str, list[Measurement]]] = {}
    for row in rows:
        if row.study == study:
            groups.setdefault(row.step, {}).setdefault(row.arch, []).append(row)
    return dict(sorted(groups.items()))


def _within_noise(delta: float | None, *spreads: dict[str, float] | None) -> bool | None:
    """Whether a change is no larger than the wider min–max range (over repetitions) of the two steps."""
    ranges = [s["max"] - s["min"] for s in spreads if s is not None and s["n"] > 1]
    if delta is None or not ranges:
        return None
    return abs(delta) <= max(ranges)


def _waterfall_step(row: Measurement, level: dict[str, Any], previous: dict[str, Any] | None,
                    plan_entry: dict[str, Any] | None) -> dict[str, Any]:
    plan_entry = plan_entry or {}
    delta_p50 = _difference(level["p50_ms"], _get_key(previous, "p50_ms"))
    delta_rps = _difference(level["max_rps"], _get_key(previous, "max_rps"))
    before = _get_key(previous, "spread") or {}
    return {
        "step": row.step,
        "factor": plan_entry.get("factor") or row.factor,
        "from": plan_entry.get("from") or row.before,
        "to": plan_entry.get("to") or row.after,
        "architecture": row.arch,
        "p50_ms": level["p50_ms"],
        "delta_p50_ms": delta_p50,
        "max_rps": level["max_rps"],
        "delta_rps": delta_rps,
        "failure_ratio": level["failure_ratio"],
        "reps": level["reps"],
        "spread": level["spread"],
        "within_noise": {
            "p50_ms": _within_noise(delta_p50, level["spread"]["p50_ms"], before.get("p50_ms")),
            "max_rps": _within_noise(delta_rps, level["spread"]["max_rps"], before.get("max_rps")),
        },
    }


def _get_key(data: Any, key: str) -> Any:
    return data.get(key) if isinstance(data, dict) else None


def gap_at(levels: dict[str, dict[str, Any]] | None) -> dict[str, Any] | None:
    """The sync–async gap of one configuration: sync p50 − async p50; async req/s ÷ and − sync req/s."""
    if not levels or "sync" not in levels or "async" not in levels:
        return None
    sync_p50, async_p50 = levels["sync"]["p50_ms"], levels["async"]["p50_ms"]
    sync_rps, async_rps = levels["sync"]["max_rps"], levels["async"]["max_rps"]
    return {
        "latency_gap_ms": _difference(sync_p50, async_p50),
        "throughput_ratio": async_rps / sync_rps if sync_rps and async_rps is not None else None,
        "throughput_difference_rps": _difference(async_rps, sync_rps),
        "sync_p50_ms": sync_p50,
        "async_p50_ms": async_p50,
        "sync_rps": sync_rps,
        "async_rps": async_rps,
    }


def _share(part: float | None, total: float | None) -> float | None:
    """``part / total``; None when the total is ~0 (a share of nothing means nothing)."""
    if part is None or total is None or abs(total) < GAP_EPSILON:
        return None
    return part / total + 0.0  # + 0.0: no -0.0


def gap_section(levels: dict[int, dict[str, dict[str, Any]]], first: int, last: int,
                factors: dict[int, dict[str, Any]]) -> dict[str, Any] | None:
    """The gap at seed-faithful (``first``) and tuned (``last``), and how much each factor moved it."""
    gaps = {step: gap_at(by_arch) for step, by_arch in levels.items()}
    if gaps.get(first) is None and gaps.get(last) is None:
        return None

    def change(key: str, step: int, since: int) -> float | None:
        return _difference(_get_key(gaps.get(step), key), _get_key(gaps.get(since), key))

    total_p50 = change("latency_gap_ms", last, first)
    total_rps = change("throughput_difference_rps", last, first)
    rows = []
    for step, factor in factors.items():
        change_p50 = change("latency_gap_ms", step, step - 1)
        change_rps = change("throughput_difference_rps", step, step - 1)
        rows.append({**factor, "gap_change_p50_ms": change_p50, "gap_change_rps": change_rps,
                     "share_p50": _share(change_p50, total_p50), "share_rps": _share(change_rps, total_rps)})
    return {"seed_faithful": gaps.get(first), "tuned": gaps.get(last), "total_change_p50_ms": total_p50,
            "total_change_rps": total_rps, "factors": rows}


def waterfall_section(rows: Sequence[Measurement], plan: Plan) -> dict[str, Any]:
    """Steps ≥ 1 per architecture (each against the step before), seed-faithful (step 0), tuned (the last
    planned step) and the gap between the architectures."""
    groups = _group(rows, WATERFALL)
    levels = {step: {arch: _level(arch_rows) for arch, arch_rows in by_arch.items()}
              for step, by_arch in groups.items()}
    planned = [step for study, step in plan if study == WATERFALL]
    if not levels:
        return {"steps": [], "baseline": None, "tuned": None, "gap": None}
    first, last = 0, max(planned or levels)
    steps: list[dict[str, Any]] = []
    factors: dict[int, dict[str, Any]] = {}
    for step, by_arch in groups.items():
        if step == first:
            continue
        for arch, arch_rows in by_arch.items():
            previous = levels.get(step - 1, {}).get(arch)
            entry = _waterfall_step(arch_rows[0], levels[step][arch], previous, plan.get((WATERFALL, step)))
            steps.append(entry)
            factors.setdefault(step, {key: entry[key] for key in ("step", "factor", "from", "to")})
    return {"steps": steps, "baseline": levels.get(first), "tuned": levels.get(last),
            "gap": gap_section(levels, first, last, factors)}


def study_entry(run_dir: Path, rows: Sequence[Measurement], recorded: Settings | None,
                plan_entry: dict[str, Any] | None) -> dict[str, Any]:
    """One configuration of the fan-out, cpu or tail study for one architecture, beside its ideal."""
    first = rows[0]
    level = _level(rows)
    settings = study_settings(run_dir, first, recorded, plan_entry)
    ideal = ideal_latency_ms(settings, concurrent_calls(settings, first.arch)) if settings else None
    return {
        "step": first.step,
        "label": first.label,
        "architecture": first.arch,
        "num_models": settings.num_models if settings else first.num_models,
        "model_kind": settings.model_kind if settings else first.model_kind,
        "model_latency": settings.model_latency if settings else first.model_latency,
        "concurrent": concurrent_calls(settings, first.arch),
        "reps": level["reps"],
        "p50_ms": level["p50_ms"],
        "p95_ms": level["p95_ms"],
        "p99_ms": level["p99_ms"],
        "rps": level["max_rps"],
        "failure_ratio": level["failure_ratio"],
        "ideal_mean_ms": ideal.mean_ms if ideal else None,
        "ideal_p50_ms": ideal.p50_ms if ideal else None,
        "ideal_p95_ms": ideal.p95_ms if ideal else None,
        "ideal_p99_ms": ideal.p99_ms if ideal else None,
        "ideal_description": ideal.description if ideal else None,
    }


def _study_entries(run_dir: Path, rows: Sequence[Measurement], study: str, recorded: Settings | None,
                   plan: Plan) -> list[dict[str, Any]]:
    return [study_entry(run_dir, arch_rows, recorded, plan.get((study, step)))
            for step, by_arch in _group(rows, study).items() for arch_rows in by_arch.values()]


def _by_architecture(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]] | None:
    """The first configuration of a one-configuration study (cpu, tail), by architecture."""
    if not entries:
        return None
    first_step = entries[0]["step"]
    return {entry["architecture"]: entry for entry in entries if entry["step"] == first_step}


def _missing(rows: Sequence[Measurement], plan: Plan) -> list[str]:
    measured = {(row.study, row.step) for row in rows}
    return [f"{study}: {entry.get('label') or step}" for (study, step), entry in plan.items()
            if (study, step) not in measured]


def attribution_section(run_dir: Path, settings: Settings | None = None) -> dict[str, Any] | None:
    """The attribution experiment from ``attribution/measurements.csv`` (None when there is none).

    ``settings``: the run's recorded stack settings (default: read from environment.json); they give the
    ideal latency of a configuration whose own ``config.json`` is missing.
    """
    rows = read_measurements(run_dir)
    if not rows:
        return None
    if settings is None:
        environment = read_json(Path(run_dir) / "environment.json")
        settings = recorded_settings(environment if isinstance(environment, dict) else None)
    plan = read_plan(run_dir)
    fanout = _study_entries(run_dir, rows, "fanout", settings, plan)
    order = {arch: i for i, arch in enumerate(dict.fromkeys(row.arch for row in rows))}
    users = [row.load_users for row in rows if row.load_users is not None]
    return {
        "architectures": list(order),
        "load_users": max(users) if users else None,
        "missing": _missing(rows, plan),
        **waterfall_section(rows, plan),
        "fanout": sorted(fanout, key=lambda e: (e["num_models"] or 0, order[e["architecture"]])),
        "cpu": _by_architecture(_study_entries(run_dir, rows, "cpu", settings, plan)),
        "tail": _by_architecture(_study_entries(run_dir, rows, "tail", settings, plan)),
    }


# --------------------------------------------------------------------------- the summary


def architecture_summary(
    run_dir: Path, arch: str, settings: Settings | None, cores: float | None
) -> dict[str, Any]:
    ideal = ideal_section(settings, arch)
    one_user = one_user_section(run_dir, arch, ideal)
    timeit_rows = read_timeit(run_dir, arch)
    sustained = sustained_section(run_dir, arch, settings)
    one_user_p50 = one_user["p50_ms"] if one_user else None
    reference_p50 = one_user_p50 if one_user_p50 is not None else (sustained or {}).get("p50_ms")
    return {
        "ideal": ideal,
        "one_user": one_user,
        "timeit": timeit_section(timeit_rows),
        "time_split": time_split_section(timeit_rows, concurrent=concurrent_calls(settings, arch)),
        "ramp": ramp_section(run_dir, arch, one_user["p95_ms"] if one_user else None),
        "sustained": sustained,
        "stress": stress_section(run_dir, arch, reference_p50),
        "profile": profile_section(run_dir, arch),
        "saturation": saturation_section(run_dir, arch, cores),
        **({"queue": queue_section(run_dir, settings)} if arch == "queue" else {}),
    }


def build_summary(run_dir: Path) -> dict[str, Any]:
    """The summary of a run folder, computed from its raw files only."""
    run_dir = Path(run_dir)
    run = read_json(run_dir / "run.json")
    run = run if isinstance(run, dict) else None
    environment = read_json(run_dir / "environment.json")
    environment = environment if isinstance(environment, dict) else None
    settings = recorded_settings(environment)
    machine = (environment or {}).get("machine")
    cores = _as_float(machine.get("cores")) if isinstance(machine, dict) else None
    archs = architectures(run_dir, run)
    summary: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": (run or {}).get("run_id") or run_dir.resolve().name,
        "complete": bool(run.get("complete")) if run else False,
        "profile": (run or {}).get("profile"),
        "started_at": (run or {}).get("started_at"),
        "finished_at": (run or {}).get("finished_at"),
        "errors": list((run or {}).get("errors") or []),
        "experiments": (run or {}).get("experiments"),
        "environment": environment,
        "architectures": {arch: architecture_summary(run_dir, arch, settings, cores) for arch in archs},
        "comparison": {"timeit_improvement_pct": None},
        "attribution": attribution_section(run_dir, settings),
        "burst": burst_section(run_dir),
    }
    if run is None:
        summary["errors"].append("run.json is missing or unreadable: the run did not finish writing it")
    if "sync" in archs and "async" in archs:
        summary["comparison"]["timeit_improvement_pct"] = improvement_section(
            ok_latencies(read_timeit(run_dir, "sync")), ok_latencies(read_timeit(run_dir, "async"))
        )
    return summary


def ok_latencies(rows: Sequence[TimeitRow]) -> list[float]:
    return [row.latency_ms for row in rows if row.status == 200]


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity (at any depth) replaced by None, ready for strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def write_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    path = Path(run_dir) / "summary.json"
    text = json.dumps(finite(summary), indent=2, allow_nan=False, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def load_or_build_summary(run_dir: Path) -> dict[str, Any]:
    """The run's summary.json when it is of this schema version, else one built from the raw files."""
    summary = read_json(Path(run_dir) / "summary.json")
    if isinstance(summary, dict) and summary.get("schema_version") == SCHEMA_VERSION:
        return summary
    return finite(build_summary(Path(run_dir)))
