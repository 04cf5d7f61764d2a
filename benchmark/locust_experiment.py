"""The seed's Locust experiments, per architecture, breaking point found automatically:

1. response time at 1 user;
2. a ramp of users, step by step, to the breaking point (see :mod:`benchmark.breaking_point`);
3. sustained load at the breaking point, for a fixed time: the most the stack serves before
   latency, errors or throughput give way;
4. stress at ``BENCH_STRESS_FACTOR`` × the breaking users, then low load to see recovery.

Then (:func:`run_repeat`) each further repetition of the decisive measurements: one short phase of two
steps, 1 user and then the breaking users (``repeat-<k>``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

from benchmark.analysis.phases import generator_peak_percent, one_user_section, ramp_section
from benchmark.analysis.raw import repeat_phase
from benchmark.load import Stage, auto_workers, run_phase
from benchmark.settings import AUTO, BenchSettings
from scoring_bench.stack.supervisor import StackState

PHASES = ("one_user", "ramp", "sustained", "stress")


def planned_seconds(settings: BenchSettings) -> dict[str, float]:
    s = settings
    return {
        "one_user": s.bench_one_user_s,
        "ramp": s.bench_ramp_step_s * len(s.bench_ramp_users),
        "sustained": s.bench_sustained_s,
        "stress": s.bench_stress_s + s.bench_recovery_s,
    }


def breaking_users(run_dir: Path, arch: str, last_users: int) -> int:
    """Users at the ramp's breaking point (the last step's users if it never broke)."""
    one_user = one_user_section(run_dir, arch, None)
    ramp = ramp_section(run_dir, arch, one_user.p95_ms if one_user else None)
    point = ramp.breaking_point if ramp else None
    return int(point.users if point and point.users else last_users)


class WorkerPlan:
    """How many Locust workers each phase gets: ``LOCUST_WORKERS`` as a number, or ``auto``
    (:func:`benchmark.load.auto_workers`, from the previous phase's resource samples)."""

    def __init__(self, settings: BenchSettings, run_dir: Path, arch: str) -> None:
        self.fixed = None if settings.locust_workers == AUTO else int(settings.locust_workers)
        self.run_dir, self.arch = run_dir, arch
        self.previous: tuple[str, int] | None = None  # (phase, workers)
        self.cores = os.cpu_count() or 1

    def like(self, phase: str, workers: int) -> int:
        """As many workers as ``phase`` needed (auto: the ones it had, plus one if its generator ran
        hot); a repetition of it gets what it got."""
        if self.fixed is not None:
            return self.fixed
        peak = generator_peak_percent(self.run_dir / "resources" / f"{phase}_{self.arch}.csv")
        return auto_workers(max(workers, 1), peak, self.cores)

    def next(self, phase: str) -> int:
        if self.fixed is not None:
            workers = self.fixed
        elif self.previous is None:
            workers = auto_workers(None, None, self.cores)
        else:
            last_phase, last_workers = self.previous
            peak = generator_peak_percent(self.run_dir / "resources" / f"{last_phase}_{self.arch}.csv")
            workers = auto_workers(last_workers, peak, self.cores)
        self.previous = (phase, workers)
        return workers


def run_locust(
    settings: BenchSettings,
    state: StackState,
    arch: str,
    run_dir: Path,
    tick: Callable[[str, float], None] = lambda *_: None,
) -> None:
    s = settings
    w = s.bench_warmup_s
    workers = WorkerPlan(s, run_dir, arch)

    def phase(name: str, stages: list[Stage]) -> None:
        run_phase(
            s, state, arch, name, stages, run_dir, lambda elapsed: tick(name, elapsed), workers.next(name)
        )
        tick(name, planned_seconds(s)[name])

    phase("one_user", [Stage(1, s.bench_one_user_s, w)])
    phase("ramp", [Stage(u, s.bench_ramp_step_s, w) for u in s.bench_ramp_users])
    broke = breaking_users(run_dir, arch, s.bench_ramp_users[-1])
    phase("sustained", [Stage(broke, s.bench_sustained_s, w)])
    stress_users = math.ceil(s.bench_stress_factor * broke)
    phase(
        "stress",
        [Stage(stress_users, s.bench_stress_s, w), Stage(s.bench_recovery_users, s.bench_recovery_s, w)],
    )


def repeat_seconds(settings: BenchSettings) -> float:
    return settings.bench_repeat_one_user_s + settings.bench_repeat_sustained_s


def run_repeat(
    settings: BenchSettings,
    state: StackState,
    arch: str,
    run_dir: Path,
    rep: int,
    tick: Callable[[float], None] = lambda _: None,
) -> None:
    """Repetition ``rep`` (from 2) of the 1-user and sustained measurements: 1 user, then the users
    the ramp broke at, in one Locust phase (its workers as the sustained phase needed them)."""
    s = settings
    w = s.bench_warmup_s
    broke = breaking_users(run_dir, arch, s.bench_ramp_users[-1])
    workers = WorkerPlan(s, run_dir, arch).like("sustained", 1)
    stages = [Stage(1, s.bench_repeat_one_user_s, w), Stage(broke, s.bench_repeat_sustained_s, w)]
    run_phase(s, state, arch, repeat_phase(rep), stages, run_dir, tick, workers)
    tick(repeat_seconds(s))
