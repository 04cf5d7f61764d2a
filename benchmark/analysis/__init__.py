"""Raw files of a run folder → its :class:`~benchmark.summary.Summary` (and the series its plots draw).

The only package that reads a run folder. One module per concern: :mod:`.raw` (the files as records),
:mod:`.phases` (one user, ramp, sustained, stress, saturation, timeit, time split, ideal),
:mod:`.queue` (the queue's phases and the burst), :mod:`.comparison` (batched against async),
:mod:`.attribution`, :mod:`.soak`, :mod:`.faults`, :mod:`.profile` (breakdown.json) and :mod:`.series` (what
the plots need beyond the summary). A section whose raw files are absent is None, so an interrupted run
still gets a summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmark.analysis.attribution import attribution_section
from benchmark.analysis.comparison import batched_vs_async, headline_differs
from benchmark.analysis.control import control_section
from benchmark.analysis.faults import faults_section
from benchmark.analysis.openloop import crosscheck_section, openloop_rates_at_limit, openloop_section
from benchmark.analysis.phases import (
    concurrent_calls,
    generator_peak_in_windows,
    ideal_section,
    improvement_section,
    one_user_section,
    ramp_section,
    saturation_section,
    stress_section,
    sustained_section,
    time_split_section,
    timeit_section,
)
from benchmark.analysis.profile import profile_section
from benchmark.analysis.queue import burst_section, queue_section
from benchmark.analysis.raw import (
    QUEUE_WORKER,
    architectures,
    environment_model,
    has_raw_files,
    ok_latencies,
    read_environment_data,
    read_run_record,
    read_timeit,
    recorded_settings,
)
from benchmark.analysis.repeats import repeats_section
from benchmark.analysis.series import RunSeries, build_series
from benchmark.analysis.soak import soak_section
from benchmark.calibration import calibrated
from benchmark.decisive import p99_limit_ms
from benchmark.summary import (
    SUMMARY_FILE,
    ArchitectureSummary,
    Calibration,
    Comparison,
    Environment,
    Repeated,
    SchemaVersionError,
    Summary,
    Sustained,
    Verification,
)
from scoring_bench.core.settings import Settings

VERIFICATION_FILE = "verification.json"
RUN_JSON_MISSING = "run.json is missing or unreadable: the run did not finish writing it"


def architecture_summary(
    run_dir: Path,
    arch: str,
    settings: Settings | None,
    cores: float | None,
    environment: Environment | None = None,
) -> ArchitectureSummary:
    ideal = ideal_section(settings, arch)
    one_user = one_user_section(run_dir, arch, ideal)
    timeit_rows = read_timeit(run_dir, arch)
    limit = p99_limit_ms(_open_limit(environment), one_user.p99_ms if one_user else None)
    repeats = repeats_section(run_dir, arch, settings, openloop_rates_at_limit(run_dir, arch, limit))
    sustained = calibrated_sustained(
        sustained_section(run_dir, arch, settings),
        repeats.server_cpu_ms_per_request if repeats else None,
        environment.calibration if environment else None,
    )
    one_user_p50 = one_user.p50_ms if one_user else None
    reference_p50 = one_user_p50 if one_user_p50 is not None else (sustained.p50_ms if sustained else None)
    return ArchitectureSummary(
        ideal=ideal,
        one_user=one_user,
        timeit=timeit_section(timeit_rows),
        time_split=time_split_section(timeit_rows, concurrent=concurrent_calls(settings, arch)),
        ramp=ramp_section(run_dir, arch, one_user.p95_ms if one_user else None),
        sustained=sustained,
        stress=stress_section(run_dir, arch, reference_p50),
        profile=profile_section(run_dir, arch),
        worker_profile=profile_section(run_dir, QUEUE_WORKER) if arch == "queue" else None,
        saturation=saturation_section(run_dir, arch, cores),
        queue=queue_section(run_dir, settings) if arch == "queue" else None,
        openloop=openloop_section(run_dir, arch, limit),
        repeats=repeats,
        crosscheck=crosscheck_section(
            run_dir,
            arch,
            sustained.rps if sustained else None,
            sustained.p50_ms if sustained else None,
            generator_peak_in_windows(run_dir, "sustained", arch),
        ),
    )


def calibrated_sustained(
    sustained: Sustained | None, repeated: Repeated | None, calibration: Calibration | None
) -> Sustained | None:
    """The sustained section with its CPU per request also in units of the machine's micro-benchmark: of
    the repetitions' median when there are several (as the headline shows the CPU per request)."""
    if sustained is None:
        return None
    cpu_ms = (
        repeated.median if repeated is not None and repeated.n > 1 else sustained.server_cpu_ms_per_request
    )
    units = calibrated(cpu_ms, calibration)
    return sustained.model_copy(update={"server_cpu_per_request_calibrated": units})


def _open_limit(environment: Environment | None) -> float | None:
    """``BENCH_OPEN_P99_LIMIT_MS`` as the run recorded it."""
    value = (environment.bench or {}).get("bench_open_p99_limit_ms") if environment else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def read_verification(run_dir: Path) -> Verification | None:
    """The verification gate's result (``verification.json``), None when the gate did not run."""
    path = Path(run_dir) / VERIFICATION_FILE
    if not path.is_file():
        return None
    return Verification.model_validate_json(path.read_text(encoding="utf-8"))


def build_summary(run_dir: Path) -> Summary:
    """The summary of a run folder, computed from its raw files only."""
    run_dir = Path(run_dir)
    run = read_run_record(run_dir)
    environment_data = read_environment_data(run_dir)
    environment, problems = environment_model(environment_data)
    settings = recorded_settings(environment_data)
    machine = environment.machine if environment else None
    cores = float(machine.cores) if machine and machine.cores is not None else None
    archs = architectures(run_dir, run)
    summaries = {arch: architecture_summary(run_dir, arch, settings, cores, environment) for arch in archs}
    timeit_improvement = None
    if "sync" in archs and "async" in archs:
        timeit_improvement = improvement_section(
            ok_latencies(read_timeit(run_dir, "sync")), ok_latencies(read_timeit(run_dir, "async"))
        )
    comparison = Comparison(
        timeit_improvement_pct=timeit_improvement,
        batched_vs_async=batched_vs_async(summaries, settings),
        differs=headline_differs(summaries, settings),
    )
    return Summary(
        run_id=run.run_id or run_dir.resolve().name,
        complete=run.complete,
        profile=run.profile,
        started_at=run.started_at,
        finished_at=run.finished_at,
        errors=run.errors + problems + ([] if run.present else [RUN_JSON_MISSING]),
        experiments=run.experiments,
        environment=environment,
        architectures=summaries,
        comparison=comparison,
        attribution=attribution_section(run_dir, settings),
        burst=burst_section(run_dir),
        verification=read_verification(run_dir),
        soak=soak_section(run_dir, settings),
        faults=faults_section(run_dir),
        control=control_section(run_dir),
    )


def load_summary(run_dir: Path) -> Summary:
    """The run's summary.json when it reads (a supported schema version, every key known), else one built
    from the raw files. Without raw files an unreadable summary.json is an error: there is nothing else."""
    run_dir = Path(run_dir)
    path = run_dir / SUMMARY_FILE
    if not path.exists():
        return build_summary(run_dir)
    try:
        return Summary.load(path)
    except (OSError, ValueError):  # SchemaVersionError, ValidationError, bad JSON
        if has_raw_files(run_dir):
            return build_summary(run_dir)
        raise


@dataclass(frozen=True)
class RunData:
    """What a report is made of: the summary and, when the raw files are there, the plots' series."""

    summary: Summary
    series: RunSeries | None  # None: the raw files are absent, the summary came from summary.json
    from_raw_files: bool


def read_run(run_dir: Path) -> RunData:
    """The run computed from its raw files; a folder without raw files but with a summary.json (e.g.
    ``doc/sample-report``) gives that summary and no series. An unreadable summary.json then raises
    :class:`~benchmark.summary.SchemaVersionError` or pydantic's ``ValidationError``."""
    run_dir = Path(run_dir)
    if not has_raw_files(run_dir) and (run_dir / SUMMARY_FILE).exists():
        return RunData(Summary.load(run_dir / SUMMARY_FILE), None, from_raw_files=False)
    summary = build_summary(run_dir)
    return RunData(summary, build_series(run_dir, list(summary.architectures)), from_raw_files=True)


__all__ = [
    "RunData",
    "RunSeries",
    "SchemaVersionError",
    "Summary",
    "architecture_summary",
    "build_series",
    "build_summary",
    "has_raw_files",
    "load_summary",
    "read_run",
]
