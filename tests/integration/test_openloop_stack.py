"""The open-loop experiment against a real stack: a two-rate sweep of sync and of the queue, and the
closed-loop cross-check of sync, through :mod:`benchmark.openloop.experiment` (the generator as its own
process, its CPU sampled); then the files and the analysis. Structure only — never a speed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import psutil
import pytest

from benchmark.analysis.openloop import crosscheck_section, openloop_rates_at_limit, openloop_section
from benchmark.openloop.experiment import OpenLoopOptions, run_crosscheck, run_openloop
from benchmark.openloop.records import COLUMNS
from benchmark.openloop.schedule import arrival_offsets
from benchmark.settings import BenchSettings
from scoring_bench.core.settings import Settings
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

RATES = [10.0, 20.0]
OPTIONS = OpenLoopOptions(
    step_s=1.0,
    arrivals="poisson",
    seed=1,
    connections=16,
    queue_poll_wait_ms=1000,
    queue_timeout_s=20.0,
    pause_s=0.5,
)


def bench_settings(stack: Settings) -> BenchSettings:
    values = {name: getattr(stack, name) for name in Settings.model_fields}
    return BenchSettings(bench_profile="smoke", bench_sample_interval_s=0.25, **values)


def generators_running() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "benchmark.openloop" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


@pytest.mark.timeout(180)
def test_a_sweep_and_a_crosscheck_against_the_stack(stack: Stack, tmp_path: Path) -> None:
    """On the session's shared stack: the generator only sends it requests."""
    run_dir = tmp_path / "run"
    ticks: list[float] = []
    bench = bench_settings(stack.settings)
    for arch in ("sync", "queue"):
        folder = run_openloop(bench, stack.state, arch, run_dir, RATES, 0, OPTIONS, ticks.append)
        assert folder == run_dir / "openloop" / arch / "rep-0"
        assert not generators_running()
    run_crosscheck(bench, stack.state, "sync", run_dir, users=4, duration_s=2.0, warmup_s=0.5)
    assert not generators_running()
    assert ticks

    for arch in ("sync", "queue"):
        folder = run_dir / "openloop" / arch / "rep-0"
        index = json.loads((folder / "sweep.json").read_text())
        assert (index["architecture"], index["rep"], index["arrivals"], index["seed"]) == (
            arch,
            0,
            "poisson",
            1,
        )
        assert index["connections"] == 16 and [r["offered_rps"] for r in index["rates"]] == RATES
        with (folder / "rate-0.csv").open() as handle:
            assert tuple(next(csv.reader(handle))) == COLUMNS
        names = {
            row["name"]
            for row in csv.DictReader((run_dir / "resources" / f"openloop_{arch}_rep0.csv").open())
        }
        assert {"openloop", "scoring-sync", "scoring-queue", "queue-worker", "redis", "machine"} <= names

        section = openloop_section(run_dir, arch, p99_limit_ms=10_000.0)
        assert section is not None and [rate.offered_rps for rate in section.rates] == RATES
        for rate, offered in zip(section.rates, RATES):
            assert rate.requests == len(arrival_offsets(offered, OPTIONS.step_s, "poisson", OPTIONS.seed))
            assert rate.errors == 0 and rate.completed == rate.requests
            assert rate.p50_ms is not None and rate.uncorrected_p50_ms is not None
            assert rate.p50_ms >= rate.uncorrected_p50_ms > 0
            assert rate.send_lag_p99_ms is not None and rate.held is not None
            assert rate.generator_cpu_percent is not None
        assert len(openloop_rates_at_limit(run_dir, arch, 10_000.0)) == 1

    check = crosscheck_section(run_dir, "sync", locust_rps=50.0, locust_p50_ms=90.0, locust_cpu_percent=30.0)
    assert check is not None and check.users == 4
    assert check.tool in ("wrk", "openloop (closed loop)")
    assert check.other_rps and check.other_p50_ms and check.other_cpu_percent is not None
    assert check.disagree is not None
