"""The control comparison's raw files (benchmark/control.py) → the summary's ``control`` section.

Per repetition: each handler's throughput under the closed loop (wrk's ``Requests/sec``, or the generator's
requests in its window), its errors, and the p50 of its sequential requests (the 2xx ones). Over the
repetitions: the median and range of the throughput ratio (product / control), and the p50 difference of the
pooled sequential requests (with the repetitions' range), against the issue's targets.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmark.analysis.openloop import read_records
from benchmark.analysis.raw import as_float, csv_rows, integer, number, read_json
from benchmark.control import CONTROL_DIR, CONTROL_JSON, CPU_JSON, HANDLERS, SEQUENTIAL_CSV, order, rep_dir
from benchmark.openloop.accounting import closed_loop_stats
from benchmark.openloop.records import CLOSED_CSV, WRK_TXT
from benchmark.openloop.wrk import parse_wrk
from benchmark.stats import quantile_sorted
from benchmark.summary import Control, ControlRep

RATIO_TARGET = 1.0  # the product's throughput at least the control's (median of the repetitions)
P50_TARGET_MS = 0.5  # the product's p50 at one user at most this above the control's


def sequential_ms(path: Path) -> list[float]:
    """The latencies of the 2xx answers of a ``sequential.csv``."""
    values = []
    for row in csv_rows(path):
        status, latency = integer(row.get("status")), number(row.get("latency_ms"))
        if status is not None and 200 <= status < 300 and latency is not None:
            values.append(latency)
    return values


def p50(values: list[float]) -> float | None:
    return quantile_sorted(sorted(values), 50) if values else None


Load = tuple[float | None, int | None, int | None]  # req/s, errors, requests answered


def throughput(folder: Path, duration_s: float | None) -> Load:
    """(req/s, errors, requests) of one closed loop: wrk's output, else the generator's records."""
    wrk = folder / WRK_TXT
    if wrk.is_file():
        result = parse_wrk(wrk.read_text(encoding="utf-8", errors="replace"))
        return (result.rps, result.errors, result.requests) if result else (None, None, None)
    records = read_records(folder / CLOSED_CSV)
    if not records or not duration_s:
        return None, None, None
    stats = closed_loop_stats(records, 0.0, duration_s)
    return stats.rps, sum(1 for r in records if not r.ok), sum(1 for r in records if r.answered)


def cpu_ms_per_request(folder: Path, requests: int | None) -> float | None:
    """The handler's CPU milliseconds per request answered over the closed loop."""
    data = read_json(folder / CPU_JSON)
    cpu_s = as_float(data.get("cpu_s")) if isinstance(data, dict) else None
    return cpu_s * 1000.0 / requests if cpu_s is not None and requests else None


def median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def difference(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def control_section(run_dir: Path) -> Control | None:
    """The comparison, or None when the run did not measure it."""
    meta = read_json(Path(run_dir) / CONTROL_DIR / CONTROL_JSON)
    if not isinstance(meta, dict):
        return None
    duration = as_float(meta.get("duration_s"))
    repeats = int(as_float(meta.get("repeats")) or 0)
    reps: list[ControlRep] = []
    pooled: dict[str, list[float]] = {name: [] for name in HANDLERS}
    problems: list[str] = []
    for rep in range(1, repeats + 1):
        measured: dict[str, tuple[float | None, int | None, float | None, float | None]] = {}
        for name in HANDLERS:
            folder = rep_dir(run_dir, name, rep)
            rps, errors, answered = throughput(folder, duration)
            times = sequential_ms(folder / SEQUENTIAL_CSV)
            pooled[name] += times
            measured[name] = (rps, errors, p50(times), cpu_ms_per_request(folder, answered))
        if all(value is None for values in measured.values() for value in values):
            problems.append(f"repetition {rep} left no files")
            continue
        (p_rps, p_err, p_p50, p_cpu), (c_rps, c_err, c_p50, c_cpu) = measured["product"], measured["control"]
        reps.append(
            ControlRep(
                rep=rep,
                first=order(rep)[0],
                product_rps=p_rps,
                control_rps=c_rps,
                ratio=ratio(p_rps, c_rps),
                product_errors=p_err,
                control_errors=c_err,
                product_p50_ms=p_p50,
                control_p50_ms=c_p50,
                p50_diff_ms=difference(p_p50, c_p50),
                product_cpu_ms=p_cpu,
                control_cpu_ms=c_cpu,
            )
        )
    ratios = [r.ratio for r in reps if r.ratio is not None]
    diffs = [r.p50_diff_ms for r in reps if r.p50_diff_ms is not None]
    median_ratio = statistics.median(ratios) if ratios else None
    diff = difference(p50(pooled["product"]), p50(pooled["control"]))
    return Control(
        users=integer(str(meta.get("users"))),
        duration_s=duration,
        requests=integer(str(meta.get("requests"))),
        tool=str(meta["tool"]) if meta.get("tool") else None,
        reps=reps,
        ratio_median=median_ratio,
        ratio_min=min(ratios) if ratios else None,
        ratio_max=max(ratios) if ratios else None,
        p50_diff_ms=diff,
        p50_diff_min_ms=min(diffs) if diffs else None,
        p50_diff_max_ms=max(diffs) if diffs else None,
        product_cpu_ms=median([r.product_cpu_ms for r in reps]),
        control_cpu_ms=median([r.control_cpu_ms for r in reps]),
        ratio_target=RATIO_TARGET,
        p50_target_ms=P50_TARGET_MS,
        meets_ratio=median_ratio >= RATIO_TARGET if median_ratio is not None else None,
        meets_p50=diff <= P50_TARGET_MS if diff is not None else None,
        problems=problems,
    )
