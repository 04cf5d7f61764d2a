"""Where the soak's raw files go (written by :mod:`benchmark.soak.experiment`, read only by
:mod:`benchmark.analysis.soak`). In a run folder::

    soak/<arch>/soak.json       the plan: architecture, rate_rps, fraction (None when SOAK_RATE set the
                                rate), capacity_rps, capacity_source (set | ramp | probe), duration_s,
                                warmup_s, window_s, sample_interval_s
    soak/<arch>/sweep.json      the open-loop generator's index: one rate; its ``start`` (epoch s) is the
                                soak's time origin (benchmark.openloop.records)
    soak/<arch>/rate-0.csv      one row per scheduled request (benchmark.openloop.records)
    soak/<arch>/generator.log   the generator's output
    soak/<arch>/processes.csv   every process of every service, every SOAK_SAMPLE_S
                                (benchmark.soak.sampler: t, service, pid, ppid, process, rss_mb, fds,
                                threads, connections)
    resources/soak_<arch>.csv   CPU of each service, of the generator (``openloop``), of the machine and
                                of the processes outside the run (``others``), every SOAK_SAMPLE_S
                                (benchmark.sampler)
"""

from __future__ import annotations

from pathlib import Path

SOAK_DIR = "soak"
PLAN_JSON = "soak.json"
PROCESSES_CSV = "processes.csv"


def soak_dir(run_dir: Path, arch: str) -> Path:
    return Path(run_dir) / SOAK_DIR / arch


def soak_resources(run_dir: Path, arch: str) -> Path:
    return Path(run_dir) / "resources" / f"soak_{arch}.csv"
