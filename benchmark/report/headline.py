"""The top of a report: the run line, whether the run is complete and what it misses, the errors it
recorded, and the headline table."""

from __future__ import annotations

import time
from collections.abc import Callable

from benchmark.report.blocks import Block, Bullets, Paragraph, Table
from benchmark.report.format import DASH, ms, number, rps, share, spread, yes_no
from benchmark.report.per_core import cores_used, per_core, per_process, processes
from benchmark.summary import (
    ArchitectureSummary,
    BreakingPoint,
    OneUser,
    RampPoint,
    Repeated,
    Summary,
    Sustained,
)
from scoring_bench.core.settings import Settings

SECTION_EXPERIMENT = {  # which experiment of run.json produces each section of an architecture's summary
    "one_user": "locust",
    "ramp": "locust",
    "sustained": "locust",
    "stress": "locust",
    "saturation": "locust",
    "timeit": "timeit",
    "time_split": "timeit",
    "profile": "profile",
}
SPREAD_NOTE = (
    "A number with a range was measured several times (BENCH_REPEATS), each time as a separate short phase: "
    "the median, then (min–max, n). Two runs differ only where their ranges do not overlap."
)
QUEUE_NOTE = (
    "For the queue, every latency is end-to-end — from the submit to the moment the client has "
    "the result, polling included — and every throughput is completed tasks per second."
)


def status_blocks(summary: Summary) -> list[Block]:
    blocks: list[Block] = [Paragraph(run_line(summary))]
    missing, not_run = missing_sections(summary)
    if not summary.complete:
        text = "⚠ This run is incomplete: it was interrupted or an experiment failed; the numbers below "
        text += "cover only what ran."
        if missing:
            text += " Missing: " + "; ".join(missing) + "."
        blocks.append(Paragraph(text))
    elif missing:
        blocks.append(Paragraph("⚠ Missing from this run: " + "; ".join(missing) + "."))
    if not_run:
        blocks.append(Paragraph("Not part of this run: " + "; ".join(not_run) + "."))
    if summary.errors:
        blocks += [Paragraph("Errors recorded by the run:"), Bullets(list(summary.errors))]
    return blocks


def run_line(summary: Summary) -> str:
    parts = [f"Run {summary.run_id}"]
    if summary.profile:
        parts.append(f"profile {summary.profile}")
    started, finished = summary.started_at, summary.finished_at
    if started is not None:
        parts.append("started " + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)))
        if finished is not None and finished >= started:
            parts.append(f"took {(finished - started) / 60:.1f} min")
    parts.append("architectures: " + ", ".join(summary.architectures))
    return ", ".join(parts) + "."


def missing_sections(summary: Summary) -> tuple[list[str], list[str]]:
    """Sections without data, as "ramp (sync, async)": (missing, not part of the run's experiments)."""
    experiments = summary.experiments
    missing: list[str] = []
    not_run: list[str] = []
    # what an external target skipped has its own section, with why ("Skipped against the external target")
    target = summary.environment.target if summary.environment else None
    skipped_here = {skip.experiment for skip in target.skipped} if target else set()
    for section, experiment in SECTION_EXPERIMENT.items():
        absent = [arch for arch, data in summary.architectures.items() if getattr(data, section) is None]
        if not absent or experiment in skipped_here:
            continue
        label = f"{section.replace('_', ' ')} ({', '.join(absent)})"
        skipped = experiments is not None and experiment not in experiments
        (not_run if skipped else missing).append(label)
    if experiments is not None and "attribution" not in skipped_here:
        attribution = summary.attribution
        if attribution is None:
            (missing if "attribution" in experiments else not_run).append("attribution")
        elif attribution.missing:
            missing.append(f"attribution ({', '.join(attribution.missing)})")
    return missing, not_run


Cell = Callable[[ArchitectureSummary], str]


def headline_table(archs: dict[str, ArchitectureSummary], settings: Settings | None = None) -> Table:
    """The headline; ``settings`` (the run's recorded ones) give the scoring processes of a summary that
    did not record them."""
    counts = {arch: processes(data, arch, settings) for arch, data in archs.items()}
    rows: list[tuple[str, Cell]] = [
        ("p50 at 1 user", _p50),
        ("p95 at 1 user", lambda a: ms(a.one_user.p95_ms if a.one_user else None)),
        ("p99 at 1 user", lambda a: ms(a.one_user.p99_ms if a.one_user else None)),
        ("ideal p50 (model calls alone)", lambda a: ms(a.ideal.p50_ms if a.ideal else None)),
        (
            "overhead over ideal p50",
            lambda a: number(a.one_user.overhead_p50_ms if a.one_user else None, "+.1f", "ms"),
        ),
        ("timeit mean (sequential)", lambda a: ms(a.timeit.mean_ms if a.timeit else None)),
        ("breaking point", lambda a: users_rps(a.ramp.breaking_point if a.ramp else None, "none")),
        ("last good step", lambda a: users_rps(a.ramp.last_good if a.ramp else None, DASH)),
        ("max sustained (at the breaking point)", _sustained),
        ("capacity (ramp's highest throughput)", lambda a: users_rps(a.ramp.peak if a.ramp else None, DASH)),
        ("server CPU per request", _cpu),
        (
            "  the same, × the CPU micro-benchmark",
            lambda a: number(a.sustained.server_cpu_per_request_calibrated if a.sustained else None, ".1f"),
        ),
        ("  cores used at max sustained (stack services)", cores_used),
        ("  req/s per core used", per_core),
        ("open loop: rate at the p99 limit", _open_loop),
        ("failures at 1 user", lambda a: _failures(a.one_user)),
        ("failures, sustained", lambda a: share(a.sustained.failure_ratio if a.sustained else None)),
        ("failures under stress", lambda a: share(a.stress.failure_ratio if a.stress else None)),
        (
            "recovered after stress",
            lambda a: yes_no(a.stress.recovery.recovered if a.stress and a.stress.recovery else None),
        ),
        ("saturation flags", _flag_count),
    ]
    table = [[label, *[cell(data) for data in archs.values()]] for label, cell in rows]
    at = 1 + next(i for i, (label, _) in enumerate(rows) if label == "max sustained (at the breaking point)")
    per_process_row = [
        "  req/s per scoring process",
        *[per_process(data, counts[a]) for a, data in archs.items()],
    ]
    processes_row = ["  scoring processes", *[str(counts[a]) if counts[a] else DASH for a in archs]]
    table[at:at] = [processes_row, per_process_row]
    return Table(["", *archs], table)


def users_rps(section: BreakingPoint | RampPoint | Sustained | None, when_absent: str) -> str:
    if section is None:
        return DASH
    if section.users is None:
        return when_absent
    return f"{section.users} users, {rps(section.rps)}"


def _failures(one_user: OneUser | None) -> str:
    if one_user is None:
        return DASH
    return f"{one_user.failures} of {one_user.requests:,}"


def _flag_count(data: ArchitectureSummary) -> str:
    if data.saturation is None:
        return DASH
    return str(len(data.saturation.flags)) if data.saturation.flags else "none"


def _repeated(value: Repeated | None) -> Repeated | None:
    return value if value is not None and value.n > 1 else None


def _p50(data: ArchitectureSummary) -> str:
    repeated = _repeated(data.repeats.one_user_p50_ms if data.repeats else None)
    if repeated is not None:
        return spread(repeated.median, repeated.min, repeated.max, repeated.n, ".1f", "ms")
    return ms(data.one_user.p50_ms if data.one_user else None)


def _sustained(data: ArchitectureSummary) -> str:
    repeated = _repeated(data.repeats.sustained_rps if data.repeats else None)
    if repeated is None or data.sustained is None or data.sustained.users is None:
        return users_rps(data.sustained, DASH)
    return f"{data.sustained.users} users, " + spread(
        repeated.median, repeated.min, repeated.max, repeated.n, ".1f", "req/s"
    )


def _cpu(data: ArchitectureSummary) -> str:
    repeated = _repeated(data.repeats.server_cpu_ms_per_request if data.repeats else None)
    if repeated is not None:
        return spread(repeated.median, repeated.min, repeated.max, repeated.n, ".2f", "ms")
    return number(data.sustained.server_cpu_ms_per_request if data.sustained else None, ".2f", "ms")


def _open_loop(data: ArchitectureSummary) -> str:
    if data.openloop is None:
        return DASH
    limit = f" (p99 < {ms(data.openloop.p99_limit_ms)})"
    repeated = _repeated(data.repeats.openloop_rate_at_limit_rps if data.repeats else None)
    if repeated is not None:
        return spread(repeated.median, repeated.min, repeated.max, repeated.n, ".0f", "req/s") + limit
    at = data.openloop.rate_at_limit_rps
    return (number(at, ".0f", "req/s") if at is not None else "none") + limit
