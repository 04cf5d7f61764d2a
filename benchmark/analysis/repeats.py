"""The decisive measurements over their repetitions (``BENCH_REPEATS``): the 1-user p50, the sustained
throughput at the breaking point and its server CPU per request, the open-loop rate at the p99 limit.

The first repetition is the run's ``one_user`` and ``sustained`` phases; each further one is a short
Locust phase of its own, 1 user and then the breaking users (:func:`benchmark.analysis.raw.repeat_phase`).
The headline gives their median and min–max, so a reader sees how sure a number is.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

from benchmark.analysis.phases import one_user_section, sustained_section
from benchmark.analysis.raw import locust_dir, repeat_phase
from benchmark.summary import OneUser, Repeated, Repeats, Sustained
from scoring_bench.core.settings import Settings

ONE_USER_STEP, SUSTAINED_STEP = 0, 1  # the steps of a repetition's phase


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


def repetitions(run_dir: Path, arch: str) -> int:
    """How many repetitions measured ``arch``: the first, then each ``repeat-<k>`` without a gap."""
    if not (locust_dir(run_dir, "one_user") / f"{arch}_schedule.json").exists():
        return 0
    count = 1
    while (locust_dir(run_dir, repeat_phase(count + 1)) / f"{arch}_schedule.json").exists():
        count += 1
    return count


def measurements(
    run_dir: Path, arch: str, settings: Settings | None
) -> list[tuple[OneUser | None, Sustained | None]]:
    """The 1-user and sustained measurements of each repetition, in order."""
    found = [(one_user_section(run_dir, arch, None), sustained_section(run_dir, arch, settings))]
    for rep in range(2, repetitions(run_dir, arch) + 1):
        phase = repeat_phase(rep)
        found.append(
            (
                one_user_section(run_dir, arch, None, phase),
                sustained_section(run_dir, arch, settings, phase, SUSTAINED_STEP),
            )
        )
    return found


def repeats_section(
    run_dir: Path, arch: str, settings: Settings | None, openloop_rates_at_limit: Sequence[float | None] = ()
) -> Repeats | None:
    """Every decisive measurement of ``arch`` by repetition; None when nothing was measured."""
    measured = measurements(run_dir, arch, settings) if repetitions(run_dir, arch) else []
    anything = any(a is not None or b is not None for a, b in measured) or any(
        rate is not None for rate in openloop_rates_at_limit
    )
    if not anything:
        return None
    one_user = [first for first, _ in measured]
    sustained = [second for _, second in measured]
    return Repeats(
        one_user_p50_ms=repeated([s.p50_ms if s else None for s in one_user]),
        sustained_rps=repeated([s.rps if s else None for s in sustained]),
        server_cpu_ms_per_request=repeated([s.server_cpu_ms_per_request if s else None for s in sustained]),
        openloop_rate_at_limit_rps=repeated(list(openloop_rates_at_limit)),
    )
