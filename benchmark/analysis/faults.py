"""The faults experiment, from its raw files (``faults/``; the layout: :mod:`benchmark.faults.experiment`):
per fault and architecture the errors, how fast they failed, the time to recover, the queue's task ledger
and a per-second timeline. The decisions are :mod:`benchmark.faults.verdicts` and
:mod:`benchmark.faults.ledger`; this module only reads the files and hands them over.

Times are seconds since the start of the fault run's steady load (the generator's rate: ``sweep.json``);
the fault's events (``fault.json``) are epoch seconds, turned into the same time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmark.analysis.openloop import read_records
from benchmark.analysis.raw import as_float, csv_rows, read_json
from benchmark.faults.ledger import parse_runs, tally
from benchmark.faults.records import FAULT_JSON, FAULTS_DIR, INDEX_JSON, LEDGER_CSV
from benchmark.faults.verdicts import baseline, error_counts, failure_speed, per_second, recovery_s
from benchmark.openloop.records import SWEEP_JSON
from benchmark.summary import FaultRun, Faults, FaultSecond, TaskLedger


def faults_section(run_dir: Path) -> Faults | None:
    """Every fault run listed in ``faults/index.json`` (None when the experiment did not run)."""
    folder = Path(run_dir) / FAULTS_DIR
    index = read_json(folder / INDEX_JSON)
    if not isinstance(index, dict):
        return None
    runs = [_run(folder, entry) for entry in index.get("runs") or [] if isinstance(entry, dict)]
    return Faults(
        steady_s=as_float(index.get("steady_s")),
        window_s=as_float(index.get("window_s")),
        recover_s=as_float(index.get("recover_s")),
        fraction=as_float(index.get("fraction")),
        rate_rps=as_float(index.get("rate_rps")),
        redis_aof=_text(index.get("redis_aof")),
        runs=runs,
        problems=[str(p) for p in index.get("problems") or []],
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _run(folder: Path, entry: dict[str, Any]) -> FaultRun:
    name, arch = str(entry.get("fault", "")), str(entry.get("architecture", ""))
    label = str(entry.get("label", ""))
    if entry.get("skipped") or not entry.get("folder"):
        return FaultRun(fault=name, architecture=arch, label=label, skipped=str(entry.get("skipped") or ""))
    return fault_run(folder / str(entry["folder"]), name, arch, label)


def fault_run(folder: Path, name: str, arch: str, label: str) -> FaultRun:
    """One fault run from its folder; what is missing (an interrupted run) is said in its problems."""
    fault = read_json(folder / FAULT_JSON)
    sweep = read_json(folder / SWEEP_JSON)
    rates = sweep.get("rates") if isinstance(sweep, dict) else None
    if not isinstance(fault, dict) or not isinstance(rates, list) or not rates:
        said = [str(p) for p in fault.get("problems") or []] if isinstance(fault, dict) else []
        problems = ["the run left no results", *said]
        return FaultRun(fault=name, architecture=arch, label=label, problems=problems)
    rate = rates[0]
    start, duration = as_float(rate.get("start")), as_float(rate.get("duration_s")) or 0.0
    events = fault.get("events") or {}

    def since_start(key: str) -> float | None:
        value = as_float(events.get(key))
        return None if value is None or start is None else value - start

    begin, end, ready = since_start("begin"), since_start("end"), since_start("ready")
    records = read_records(folder / str(rate.get("file") or "rate-0.csv"))
    problems = [str(p) for p in fault.get("problems") or []]
    limit = as_float(fault.get("error_limit_ms")) or 0.0
    speed = failure_speed(records, limit, refused_only=arch == "queue")
    before = baseline(records, begin) if begin is not None else None
    recovery = (
        recovery_s(records, end, duration, before.p50_ms if before else None) if end is not None else None
    )
    errors = error_counts(records)
    return FaultRun(
        fault=name,
        architecture=arch,
        label=label or str(fault.get("label", "")),
        target=_text(fault.get("target")),
        offered_rps=as_float(fault.get("offered_rps")),
        capacity_rps=as_float(fault.get("capacity_rps")),
        capacity_source=_text(fault.get("capacity_source")),
        duration_s=duration,
        fault_start_s=begin,
        fault_end_s=end,
        ready_s=ready,
        requests=len(records),
        errors=sum(errors.values()),
        errors_by_outcome=errors,
        error_ratio=sum(errors.values()) / len(records) if records else None,
        timed_errors=speed.timed,
        error_p99_ms=speed.p99_ms,
        error_limit_ms=limit,
        timeout_name=_text(fault.get("timeout_name")),
        fast_failure=speed.fast,
        baseline_p50_ms=before.p50_ms if before else None,
        baseline_error_ratio=before.error_ratio if before else None,
        recovery_s=recovery,
        recovered=None if before is None or before.p50_ms is None else recovery is not None,
        ledger=_ledger(folder, fault.get("ledger")) if arch == "queue" else None,
        notes=[str(n) for n in fault.get("notes") or []],
        problems=problems,
        timeline=[
            FaultSecond(
                t_s=s.t_s,
                sent=s.sent,
                answered=s.answered,
                ok_done=s.ok_done,
                errors=s.errors,
                by_outcome=s.by_outcome,
                p95_ms=s.p95_ms,
            )
            for s in (per_second(records, begin, duration) if begin is not None else [])
        ],
    )


def _ledger(folder: Path, info: Any) -> TaskLedger | None:
    """The ledger from ``ledger.csv`` (None when the run did not get that far)."""
    if not isinstance(info, dict) or not (folder / LEDGER_CSV).is_file():
        return None
    ids, final, runs = [], {}, {}
    for row in csv_rows(folder / LEDGER_CSV):
        task_id = row.get("task_id") or ""
        if not task_id:
            continue
        ids.append(task_id)
        final[task_id] = row.get("status") or ""
        try:
            counted = json.loads(row["runs"]) if row.get("runs") else {}
        except ValueError:
            counted = {}
        runs[task_id] = parse_runs(counted) if isinstance(counted, dict) else {}
    counts = tally(ids, final, runs if info.get("counted_runs") else None)
    return TaskLedger(
        accepted=counts.accepted,
        succeeded=counts.succeeded,
        failed=counts.failed,
        unfinished=counts.unfinished,
        unknown=counts.unknown,
        unreachable=counts.unreachable,
        lost=counts.lost,
        ran_twice=counts.ran_twice,
        extra_runs=counts.extra_runs,
        runs_unknown=counts.runs_unknown,
        waited_s=as_float(info.get("waited_s")),
        wait_limit_s=as_float(info.get("wait_limit_s")),
    )
