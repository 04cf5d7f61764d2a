"""The capacity a steady load is a fraction of (the faults experiment, the soak).

A steady load is offered at a fraction of what the architecture can serve on this machine, so that it
means the same on a fast and a slow one. That capacity is, in order of preference: a rate the user set
(req/s), the peak throughput of this run's Locust ramp when it ran, or a short probe — the open-loop
generator run as ``users`` closed loops for a few seconds (``capacity/<arch>/closed.{json,csv}``), whose
throughput in its measured window is the capacity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from benchmark.analysis.openloop import read_records
from benchmark.analysis.phases import one_user_section, ramp_section
from benchmark.openloop.accounting import closed_loop_stats
from benchmark.openloop.experiment import Sampled, closed_loop
from benchmark.openloop.records import CLOSED_CSV
from benchmark.sampler import phase_sampler
from benchmark.settings import BenchSettings
from scoring_bench.stack.supervisor import StackState

Source = Literal["set", "ramp", "probe"]
PROBE_WARMUP_S = 1.0


@dataclass(frozen=True)
class Capacity:
    """What an architecture can serve (req/s, tasks/s for the queue) and where the number comes from."""

    rps: float
    source: Source

    def rate(self, fraction: float) -> float:
        """The steady rate at ``fraction`` of the capacity (at least 1 req/s)."""
        return max(1.0, fraction * self.rps)

    def describe(self) -> str:
        how = {"set": "set by the user", "ramp": "this run's ramp peak", "probe": "a closed-loop probe"}
        return f"{self.rps:.0f} req/s ({how[self.source]})"


def probe_dir(run_dir: Path, arch: str) -> Path:
    return Path(run_dir) / "capacity" / arch


def ramp_capacity_rps(run_dir: Path, arch: str) -> float | None:
    """The peak throughput of this run's ramp for ``arch``, or None when the ramp did not run."""
    one_user = one_user_section(run_dir, arch, None)
    ramp = ramp_section(run_dir, arch, one_user.p95_ms if one_user else None)
    return ramp.peak.rps if ramp and ramp.peak and ramp.peak.rps else None


def probe_capacity_rps(
    settings: BenchSettings, state: StackState, arch: str, run_dir: Path, users: int, duration_s: float
) -> float:
    """Throughput of ``users`` closed loops over ``duration_s`` (after a warm-up); raises if none came."""
    folder = probe_dir(run_dir, arch)
    resources = Path(run_dir) / "resources" / f"capacity_{arch}.csv"
    targets = Sampled(state)
    with phase_sampler(settings, resources, targets):
        closed_loop(settings, arch, folder, users, duration_s, PROBE_WARMUP_S, lambda _: None, targets)
    stats = closed_loop_stats(read_records(folder / CLOSED_CSV), PROBE_WARMUP_S, duration_s)
    if not stats.rps:
        raise RuntimeError(f"the capacity probe of {arch} completed no request: see {folder}")
    return stats.rps


def capacity(
    settings: BenchSettings,
    state: StackState,
    arch: str,
    run_dir: Path,
    set_rps: float | None,
    probe_s: float,
) -> Capacity:
    """The capacity of ``arch``: ``set_rps`` when given, else this run's ramp peak, else a probe with as
    many closed loops as the ramp's last step."""
    if set_rps:
        return Capacity(set_rps, "set")
    ramp = ramp_capacity_rps(run_dir, arch)
    if ramp:
        return Capacity(ramp, "ramp")
    users = settings.bench_ramp_users[-1]
    return Capacity(probe_capacity_rps(settings, state, arch, run_dir, users, probe_s), "probe")
