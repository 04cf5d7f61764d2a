"""The decisive measurements over their repetitions (``BENCH_REPEATS``): the 1-user p50, the sustained
throughput at the breaking point and its server CPU per request, the open-loop rate at the p99 limit.

Each repetition is a separate short phase (:func:`benchmark.analysis.raw.repeat_phase`); the headline
gives their median and min–max, so a reader sees how sure a number is.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

from benchmark.analysis.phases import one_user_section, sustained_section
from benchmark.analysis.raw import locust_dir, repeat_phase
from benchmark.summary import Repeated, Repeats
from scoring_bench.core.settings import Settings

REPEATED_PHASES = ("one_user", "sustained")


def repeated(values: Sequence[float | None]) -> Repeated | None:
    """Median and min–max of the values measured (None: a repetition that measured nothing)."""
    present = [value for value in values if value is not None]
    if not values:
        return None
    if not present:
        return Repeated(values=list(values))
    return Repeated(
        values=list(values),
        median=statistics.median(present),
        min=min(present),
        max=max(present),
        n=len(present),
    )


def repetitions(run_dir: Path, arch: str, phase: str) -> int:
    """How many repetitions of ``phase`` left a schedule for ``arch`` (1, 2, … without a gap)."""
    count = 0
    while (locust_dir(run_dir, repeat_phase(phase, count + 1)) / f"{arch}_schedule.json").exists():
        count += 1
    return count


def repeats_section(
    run_dir: Path, arch: str, settings: Settings | None, openloop_max_rates: Sequence[float | None] = ()
) -> Repeats | None:
    """Every decisive measurement of ``arch`` by repetition; None when nothing was measured."""
    one_user = [
        one_user_section(run_dir, arch, None, repeat_phase("one_user", rep))
        for rep in range(1, repetitions(run_dir, arch, "one_user") + 1)
    ]
    sustained = [
        sustained_section(run_dir, arch, settings, repeat_phase("sustained", rep))
        for rep in range(1, repetitions(run_dir, arch, "sustained") + 1)
    ]
    if not one_user and not sustained and not openloop_max_rates:
        return None
    return Repeats(
        one_user_p50_ms=repeated([section.p50_ms if section else None for section in one_user]),
        sustained_rps=repeated([section.rps if section else None for section in sustained]),
        server_cpu_ms_per_request=repeated(
            [section.server_cpu_ms_per_request if section else None for section in sustained]
        ),
        openloop_max_rate_rps=repeated(list(openloop_max_rates)),
    )
