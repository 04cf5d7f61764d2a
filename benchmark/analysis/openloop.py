"""The open-loop sweep and the cross-check, from their raw files (``openloop/``, ``crosscheck/``, and their
``resources/`` files; the layout is :mod:`benchmark.openloop.records`).

Each rate's numbers are :func:`benchmark.openloop.accounting.rate_result` of its rows, with the
generator's peak CPU while the rate ran (from its start to its last request's end). The cross-check sets
Locust's numbers (from the sustained phase, given by the caller) beside wrk's when wrk ran, else beside the
generator's closed loop at the same concurrency; they disagree when the throughput or the p50 differ by
more than ``DISAGREE_ABOVE``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark.analysis.raw import Sample, as_float, csv_rows, read_json, read_resources
from benchmark.openloop.accounting import closed_loop_stats, max_rate_under_limit, rate_at_limit, rate_result
from benchmark.openloop.records import (
    CLOSED_CSV,
    CLOSED_JSON,
    GENERATOR,
    SWEEP_JSON,
    WRK,
    WRK_TXT,
    RequestRecord,
    crosscheck_dir,
    crosscheck_resources,
    record_from_row,
    sweep_dir,
    sweep_resources,
)
from benchmark.openloop.wrk import parse_wrk
from benchmark.summary import CrossCheck, OpenLoop, OpenLoopRate

DISAGREE_ABOVE = 0.10
CLOSED_LOOP_TOOL = "openloop (closed loop)"
_REP = re.compile(r"^rep-(\d+)$")


def repetitions(run_dir: Path, arch: str) -> list[int]:
    """The repetitions of ``arch``'s sweep that wrote a sweep.json, in order."""
    folder = Path(run_dir) / "openloop" / arch
    found = (_REP.match(path.name) for path in folder.glob("rep-*") if (path / SWEEP_JSON).is_file())
    return sorted(int(match.group(1)) for match in found if match)


def read_records(path: Path) -> list[RequestRecord]:
    """A rate's (or the closed loop's) rows; rows that do not parse are skipped."""
    return [record for row in csv_rows(path) if (record := record_from_row(row)) is not None]


def sweep_rates(run_dir: Path, arch: str, rep: int) -> list[OpenLoopRate] | None:
    """Every rate of one repetition's sweep, in order, or None without its sweep.json."""
    folder = sweep_dir(run_dir, arch, rep)
    index = read_json(folder / SWEEP_JSON)
    if not isinstance(index, dict) or not isinstance(index.get("rates"), list):
        return None
    arrivals = str(index.get("arrivals") or "poisson")
    samples = read_resources(sweep_resources(run_dir, arch, rep))
    rates = (_rate(folder, entry, arrivals, samples) for entry in index["rates"] if isinstance(entry, dict))
    return [rate for rate in rates if rate is not None]


def _rate(
    folder: Path, entry: dict[str, Any], arrivals: str, samples: Sequence[Sample]
) -> OpenLoopRate | None:
    offered, duration = as_float(entry.get("offered_rps")), as_float(entry.get("duration_s"))
    if offered is None or duration is None or not entry.get("file"):
        return None
    records = read_records(folder / str(entry["file"]))
    scheduled = as_float(entry.get("requests"))
    rate = rate_result(
        records, offered, duration, arrivals, int(scheduled) if scheduled is not None else None
    )
    start = as_float(entry.get("start"))
    if start is None:
        return rate
    ran_s = max([duration, *(r.done_s for r in records if r.done_s is not None)])
    return rate.model_copy(
        update={"generator_cpu_percent": peak_cpu(samples, GENERATOR, start, start + ran_s)}
    )


def peak_cpu(samples: Sequence[Sample], name: str, low: float, high: float) -> float | None:
    """The highest CPU of ``name`` among the samples taken within ``(low, high]`` (a sample covers the
    interval before it), or None without any."""
    return max((s.cpu_percent for s in samples if s.name == name and low < s.t <= high), default=None)


def openloop_section(run_dir: Path, arch: str, p99_limit_ms: float | None) -> OpenLoop | None:
    """The first repetition's sweep, or None when the experiment did not run for ``arch``."""
    reps = repetitions(run_dir, arch)
    rates = sweep_rates(run_dir, arch, reps[0]) if reps else None
    if rates is None:
        return None
    return OpenLoop(
        p99_limit_ms=p99_limit_ms,
        rates=rates,
        max_rate_under_limit_rps=max_rate_under_limit(rates, p99_limit_ms),
        rate_at_limit_rps=rate_at_limit(rates, p99_limit_ms),
    )


def openloop_rates_at_limit(run_dir: Path, arch: str, p99_limit_ms: float | None) -> list[float | None]:
    """The rate at the p99 limit of each repetition's sweep, in order (None: its lowest rate failed)."""
    return [
        rate_at_limit(sweep_rates(run_dir, arch, rep) or [], p99_limit_ms)
        for rep in repetitions(run_dir, arch)
    ]


def crosscheck_section(
    run_dir: Path,
    arch: str,
    locust_rps: float | None,
    locust_p50_ms: float | None,
    locust_cpu_percent: float | None,
) -> CrossCheck | None:
    """Locust beside wrk (when it ran) or the generator's closed loop; None when neither ran."""
    folder = crosscheck_dir(run_dir, arch)
    info = read_json(folder / CLOSED_JSON)
    info = info if isinstance(info, dict) else {}
    users = as_float(info.get("users"))
    wrk_text = _text(folder / WRK_TXT)
    wrk = parse_wrk(wrk_text) if wrk_text else None
    other_rps: float | None
    if wrk is not None:
        tool, name, other_rps, other_p50 = WRK, WRK, wrk.rps, wrk.p50_ms
    elif info:
        duration, warmup = as_float(info.get("duration_s")), as_float(info.get("warmup_s")) or 0.0
        if duration is None:
            return None
        stats = closed_loop_stats(read_records(folder / CLOSED_CSV), warmup, duration)
        tool, name, other_rps, other_p50 = CLOSED_LOOP_TOOL, GENERATOR, stats.rps, stats.p50_ms
    else:
        return None
    rps_difference = relative_difference(other_rps, locust_rps)
    p50_difference = relative_difference(other_p50, locust_p50_ms)
    samples = read_resources(crosscheck_resources(run_dir, arch))
    return CrossCheck(
        users=int(users) if users is not None else None,
        tool=tool,
        locust_rps=locust_rps,
        locust_p50_ms=locust_p50_ms,
        other_rps=other_rps,
        other_p50_ms=other_p50,
        rps_difference=rps_difference,
        p50_difference=p50_difference,
        locust_cpu_percent=locust_cpu_percent,
        other_cpu_percent=max((s.cpu_percent for s in samples if s.name == name), default=None),
        disagree=disagree(rps_difference, p50_difference),
    )


def relative_difference(other: float | None, locust: float | None) -> float | None:
    """other ÷ Locust − 1, or None when either is missing (or Locust's is 0)."""
    if other is None or not locust:
        return None
    return other / locust - 1.0


def disagree(*differences: float | None) -> bool | None:
    """Whether any difference exceeds ``DISAGREE_ABOVE`` in size; None when none is known."""
    known = [abs(d) for d in differences if d is not None]
    return any(d > DISAGREE_ABOVE for d in known) if known else None


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
