"""The seed's Locust experiments, per architecture, breaking point found automatically:

1. response time at 1 user;
2. a ramp of users, step by step, to the breaking point (see :mod:`benchmark.breaking_point`);
3. sustained load at the last step before the break, for a fixed time;
4. stress at ``BENCH_STRESS_FACTOR`` × the breaking users, then low load to see recovery.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from benchmark.analysis import one_user_section, ramp_section
from benchmark.load import Stage, run_phase
from benchmark.settings import BenchSettings
from scoring_bench.supervisor import StackState

PHASES = ("one_user", "ramp", "sustained", "stress")


def planned_seconds(settings: BenchSettings) -> dict[str, float]:
    s = settings
    return {
        "one_user": s.bench_one_user_s,
        "ramp": s.bench_ramp_step_s * len(s.bench_ramp_users),
        "sustained": s.bench_sustained_s,
        "stress": s.bench_stress_s + s.bench_recovery_s,
    }


def ramp_result(run_dir: Path, arch: str, first_users: int) -> tuple[int, int]:
    """(users of the last good step, users of the breaking step) from the ramp's raw files.

    A ramp that breaks at its first step has no good step: then the first step's users.
    """
    one_user = one_user_section(run_dir, arch, None) or {}
    ramp = ramp_section(run_dir, arch, one_user.get("p95_ms")) or {}
    good = (ramp.get("last_good") or {}).get("users") or first_users
    broke = (ramp.get("breaking_point") or {}).get("users") or good
    return int(good), int(broke)


def run_locust(
    settings: BenchSettings, state: StackState, arch: str, run_dir: Path,
    tick: Callable[[str, float], None] = lambda *_: None,
) -> None:
    s = settings
    w = s.bench_warmup_s

    def phase(name: str, stages: list[Stage]) -> None:
        run_phase(s, state, arch, name, stages, run_dir, lambda elapsed: tick(name, elapsed))
        tick(name, planned_seconds(s)[name])

    phase("one_user", [Stage(1, s.bench_one_user_s, w)])
    phase("ramp", [Stage(u, s.bench_ramp_step_s, w) for u in s.bench_ramp_users])
    good, broke = ramp_result(run_dir, arch, s.bench_ramp_users[0])
    phase("sustained", [Stage(good, s.bench_sustained_s, w)])
    stress_users = math.ceil(s.bench_stress_factor * max(broke, good))
    phase("stress", [Stage(stress_users, s.bench_stress_s, w), Stage(s.bench_recovery_users, s.bench_recovery_s, w)])
