"""The planned duration printed at the start of a run (benchmark.duration)."""

from __future__ import annotations

from benchmark.duration import planned_duration_s
from benchmark.settings import BenchSettings


def test_every_experiment_adds_to_the_plan() -> None:
    everything = planned_duration_s(BenchSettings(bench_profile="quick"))
    for experiment in ("profile", "timeit", "locust", "openloop", "crosscheck", "burst", "attribution"):
        rest = [e for e in BenchSettings().experiments if e != experiment]
        assert planned_duration_s(BenchSettings(bench_profile="quick", experiments=rest)) < everything


def test_repetitions_and_longer_phases_take_longer() -> None:
    quick = planned_duration_s(BenchSettings(bench_profile="quick"))
    assert planned_duration_s(BenchSettings(bench_profile="quick", bench_repeats=5)) > quick
    assert planned_duration_s(BenchSettings(bench_profile="quick", bench_sustained_s=60)) > quick
    assert (
        planned_duration_s(BenchSettings(bench_profile="smoke"))
        < quick
        < planned_duration_s(BenchSettings(bench_profile="full"))
    )
