"""The soak, from its raw files (``soak/<arch>/``, :mod:`benchmark.soak.records`): per architecture the
load as one open-loop rate, the p99 of the first and the last window and of every window from the start,
and the growth of every process of the architecture's path (:mod:`benchmark.soak.growth` decides).

Times are seconds since the soak's start: the generator's rate start (``sweep.json``), or the first
process sample when the generator left no index.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.analysis.openloop import read_records
from benchmark.analysis.phases import service_names
from benchmark.analysis.raw import (
    MACHINE,
    OTHERS,
    as_float,
    csv_rows,
    integer,
    number,
    read_environment_data,
    read_json,
    read_resources,
    recorded_settings,
)
from benchmark.openloop.accounting import rate_result
from benchmark.openloop.records import GENERATOR, SWEEP_JSON, RequestRecord
from benchmark.soak.growth import Windows, judge, soak_windows, verdict
from benchmark.soak.records import PLAN_JSON, PROCESSES_CSV, SOAK_DIR, soak_dir, soak_resources
from benchmark.summary import Soak, SoakArchitecture, SoakGrowth, SoakProcess, SoakWindow
from scoring_bench.core.settings import Settings

METRICS = ("rss_mb", "fds", "threads", "connections")
KIND = {"rss_mb": "rss", "fds": "count", "threads": "count", "connections": "count"}


@dataclass(frozen=True)
class ProcessSample:
    """One row of ``processes.csv`` (benchmark.soak.sampler)."""

    t: float
    service: str
    pid: int
    ppid: int | None
    process: str
    values: dict[str, float]  # by METRICS


def read_process_samples(path: Path) -> list[ProcessSample]:
    """The rows of a processes.csv; rows that do not parse (a line cut short) are left out."""
    samples = []
    for row in csv_rows(path):
        t, pid = number(row.get("t")), integer(row.get("pid"))
        values = {metric: number(row.get(metric)) for metric in METRICS}
        if t is None or pid is None or not row.get("service") or any(v is None for v in values.values()):
            continue
        samples.append(
            ProcessSample(
                t=t,
                service=str(row["service"]),
                pid=pid,
                ppid=integer(row.get("ppid")),
                process=row.get("process") or "",
                values={metric: float(v) for metric, v in values.items() if v is not None},
            )
        )
    return samples


# --------------------------------------------------------------------------- pure: samples → processes


def roles(samples: Sequence[ProcessSample]) -> dict[tuple[str, int], str]:
    """Each (service, pid)'s role: ``main`` when its parent is not a process of the same service (the
    service's own process), else ``worker``."""
    pids: dict[str, set[int]] = defaultdict(set)
    parents: dict[tuple[str, int], int | None] = {}
    for sample in samples:
        pids[sample.service].add(sample.pid)
        parents[(sample.service, sample.pid)] = sample.ppid
    return {
        (service, pid): "worker" if parent in pids[service] else "main"
        for (service, pid), parent in parents.items()
    }


def process_growth(
    service: str,
    pid: int,
    process: str,
    role: str,
    samples: Sequence[ProcessSample],
    windows: Windows,
    origin: float,
) -> SoakProcess:
    """One process's growth over the soak (``samples`` are its own, ``origin`` the soak's start, epoch s)."""
    times = [s.t - origin for s in samples]
    growth = {
        metric: judge(
            [(t, s.values[metric]) for t, s in zip(times, samples, strict=True)], windows, KIND[metric]
        )
        for metric in METRICS
    }
    first_s, last_s = (min(times), max(times)) if times else (None, None)
    note = None
    if first_s is None:
        note = "no sample"
    elif first_s >= windows.first[1]:
        note = f"started during the soak, at {first_s:.0f} s"
    elif last_s is not None and last_s < windows.last[0]:
        note = f"exited during the soak, after {last_s:.0f} s"
    models = {metric: SoakGrowth(**vars(value)) for metric, value in growth.items()}
    return SoakProcess(
        service=service,
        pid=pid,
        process=process,
        role=role,
        samples=len(samples),
        first_s=first_s,
        last_s=last_s,
        rss_mb=models["rss_mb"],
        fds=models["fds"],
        threads=models["threads"],
        connections=models["connections"],
        steady=verdict(*(value.steady for value in growth.values())),
        note=note,
    )


@dataclass(frozen=True)
class Tracked:
    """The samples of one process of a service."""

    service: str
    pid: int
    role: str
    samples: list[ProcessSample]


def tracked(samples: Sequence[ProcessSample], services: Sequence[str]) -> list[Tracked]:
    """The processes of ``services`` with their samples: in the services' order, a service's main process
    first, then its workers by pid."""
    by_process: dict[tuple[str, int], list[ProcessSample]] = defaultdict(list)
    for sample in samples:
        if sample.service in services:
            by_process[(sample.service, sample.pid)].append(sample)
    role = roles(samples)
    order = sorted(by_process, key=lambda key: (services.index(key[0]), role[key] != "main", key[1]))
    return [Tracked(service, pid, role[(service, pid)], by_process[(service, pid)]) for service, pid in order]


def processes_growth(
    samples: Sequence[ProcessSample], services: Sequence[str], windows: Windows, origin: float
) -> list[SoakProcess]:
    """Every process of ``services`` (in :func:`tracked`'s order)."""
    return [
        process_growth(p.service, p.pid, p.samples[-1].process, p.role, p.samples, windows, origin)
        for p in tracked(samples, services)
    ]


def mean_cpu(cpu: Sequence[tuple[float, str, float]], name: str, low: float, high: float) -> float | None:
    """The mean CPU of ``name`` over the samples ``(t, name, percent)`` taken within ``(low, high]`` (a
    sample covers the interval before it)."""
    values = [percent for t, who, percent in cpu if who == name and low < t <= high]
    return sum(values) / len(values) if values else None


def latency_window(
    records: Sequence[RequestRecord],
    rate: float,
    low: float,
    high: float,
    cpu: Sequence[tuple[float, str, float]] = (),
) -> SoakWindow:
    """The requests scheduled in ``[low, high)``: their corrected latencies and errors; the machine's and
    the other processes' CPU meanwhile (``cpu``: ``(t since the start, name, percent)`` samples)."""
    chosen = [r for r in records if low <= r.scheduled_s < high]
    result = rate_result(chosen, rate, high - low)
    return SoakWindow(
        start_s=low,
        end_s=high,
        requests=result.requests,
        errors=result.errors,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        max_ms=result.max_ms,
        machine_cpu_percent=mean_cpu(cpu, MACHINE, low, high),
        others_cpu_percent=mean_cpu(cpu, OTHERS, low, high),
    )


def minute_windows(
    records: Sequence[RequestRecord],
    rate: float,
    windows: Windows,
    cpu: Sequence[tuple[float, str, float]] = (),
) -> list[SoakWindow]:
    """Every ``window_s`` from the start to the end (the last may be shorter)."""
    edges, t = [], 0.0
    while t < windows.duration_s - 1e-9:
        edges.append((t, min(t + windows.window_s, windows.duration_s)))
        t += windows.window_s
    return [latency_window(records, rate, low, high, cpu) for low, high in edges]


# --------------------------------------------------------------------------- the files


def _plan(folder: Path) -> dict[str, Any] | None:
    plan = read_json(folder / PLAN_JSON)
    return plan if isinstance(plan, dict) else None


def _rate_entry(folder: Path) -> dict[str, Any] | None:
    index = read_json(folder / SWEEP_JSON)
    rates = index.get("rates") if isinstance(index, dict) else None
    return rates[0] if isinstance(rates, list) and rates and isinstance(rates[0], dict) else None


def soak_architectures(run_dir: Path) -> list[str]:
    """The architectures with a soak plan, in run order (sync, async, batched, queue)."""
    folder = Path(run_dir) / SOAK_DIR
    found = [path.name for path in folder.glob("*") if (path / PLAN_JSON).is_file()]
    order = ("sync", "async", "batched", "queue")
    return sorted(found, key=lambda arch: (order.index(arch) if arch in order else len(order), arch))


def soak_timing(
    run_dir: Path, arch: str
) -> tuple[float, Windows, dict[str, Any], list[ProcessSample]] | None:
    """The soak's origin (epoch s), its windows, its plan and its process samples; None without a plan."""
    folder = soak_dir(run_dir, arch)
    plan = _plan(folder)
    if plan is None:
        return None
    samples = read_process_samples(folder / PROCESSES_CSV)
    entry = _rate_entry(folder)
    start = as_float(entry.get("start")) if entry else None
    origin = start if start is not None else (min(s.t for s in samples) if samples else None)
    duration = as_float(plan.get("duration_s"))
    if origin is None or duration is None or duration <= 0:
        return None
    windows = soak_windows(
        duration, as_float(plan.get("warmup_s")) or 0.0, as_float(plan.get("window_s")) or duration
    )
    return origin, windows, plan, samples


def soak_architecture(run_dir: Path, arch: str, settings: Settings | None) -> SoakArchitecture | None:
    """One architecture's soak, or None when it did not run (or left no usable files)."""
    timing = soak_timing(run_dir, arch)
    if timing is None:
        return None
    origin, windows, plan, samples = timing
    folder = soak_dir(run_dir, arch)
    rate = as_float(plan.get("rate_rps")) or 0.0
    entry = _rate_entry(folder)
    records = read_records(folder / str(entry["file"])) if entry and entry.get("file") else []
    load = first = last = None
    minutes: list[SoakWindow] = []
    cpu = [(s.t - origin, s.name, s.cpu_percent) for s in read_resources(soak_resources(run_dir, arch))]
    if entry is not None:
        scheduled = as_float(entry.get("requests"))
        load = rate_result(records, rate, windows.duration_s, scheduled=int(scheduled) if scheduled else None)
        generator = [percent for t, name, percent in cpu if name == GENERATOR and 0 < t <= windows.duration_s]
        load = load.model_copy(update={"generator_cpu_percent": max(generator, default=None)})
        first = latency_window(records, rate, *windows.first, cpu)
        last = latency_window(records, rate, *windows.last, cpu)
        minutes = minute_windows(records, rate, windows, cpu)
    processes = processes_growth(samples, service_names(arch, settings), windows, origin)
    p99_first, p99_last = (first.p99_ms if first else None), (last.p99_ms if last else None)
    return SoakArchitecture(
        rate_rps=rate,
        fraction=as_float(plan.get("fraction")),
        capacity_rps=as_float(plan.get("capacity_rps")),
        capacity_source=plan.get("capacity_source") if isinstance(plan.get("capacity_source"), str) else None,
        duration_s=windows.duration_s,
        warmup_s=windows.warmup_s,
        window_s=windows.window_s,
        sample_interval_s=as_float(plan.get("sample_interval_s")),
        load=load,
        first_window=first,
        last_window=last,
        p99_change_pct=(p99_last - p99_first) / p99_first * 100
        if p99_first and p99_last is not None
        else None,
        minutes=minutes,
        processes=processes,
        steady=verdict(*(p.steady for p in processes)) if processes else None,
    )


def soak_section(run_dir: Path, settings: Settings | None) -> Soak | None:
    """Every architecture's soak, or None when the soak did not run."""
    found = {arch: soak_architecture(run_dir, arch, settings) for arch in soak_architectures(run_dir)}
    present = {arch: section for arch, section in found.items() if section is not None}
    return Soak(architectures=present) if present else None


# --------------------------------------------------------------------------- what the plots draw


@dataclass(frozen=True)
class ProcessSeries:
    """One process's metrics over the soak (s since its start)."""

    service: str
    pid: int
    role: str
    times: list[float]
    values: dict[str, list[float]]  # by METRICS

    @property
    def label(self) -> str:
        return f"{self.service} {self.role} {self.pid}"


@dataclass(frozen=True)
class SoakSeries:
    """The processes of one architecture's path over its soak, and its windows."""

    processes: list[ProcessSeries]
    windows: Windows


def soak_series(run_dir: Path, archs: Sequence[str]) -> dict[str, SoakSeries]:
    """The series of every architecture of ``archs`` that soaked (the processes of its path, as in the
    summary: the run's recorded settings say which model API the queue's worker calls)."""
    settings = recorded_settings(read_environment_data(run_dir))
    series = {}
    for arch in archs:
        timing = soak_timing(run_dir, arch)
        if timing is None:
            continue
        origin, windows, _, samples = timing
        series[arch] = SoakSeries(
            [
                ProcessSeries(
                    p.service,
                    p.pid,
                    p.role,
                    [s.t - origin for s in p.samples],
                    {metric: [s.values[metric] for s in p.samples] for metric in METRICS},
                )
                for p in tracked(samples, service_names(arch, settings))
            ],
            windows,
        )
    return series


__all__ = ["ProcessSeries", "SoakSeries", "soak_section", "soak_series"]
