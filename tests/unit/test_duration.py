"""The planned duration printed at the start of a run (benchmark.duration)."""

from __future__ import annotations

from benchmark.attribution import studies
from benchmark.duration import PREFORK_STOP_S, attribution_config_s, planned_duration_s
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


def test_locust_with_workers_costs_more_than_standalone() -> None:
    """auto: the first phase of each architecture standalone, the others with a master and workers."""
    auto = planned_duration_s(BenchSettings(bench_profile="quick", experiments=["locust"]))
    standalone = planned_duration_s(
        BenchSettings(bench_profile="quick", experiments=["locust"], locust_workers=0)
    )
    workers = planned_duration_s(
        BenchSettings(bench_profile="quick", experiments=["locust"], locust_workers=2)
    )
    assert standalone < auto < workers


def test_a_prefork_queue_step_waits_for_its_worker_to_stop() -> None:
    s = BenchSettings(bench_profile="quick", architectures=["queue"], bench_attribution_studies=["queue"])
    configs = studies(s)
    prefork = [c for c in configs if c.overrides.get("queue_worker_pool") == "prefork"]
    threads = [c for c in configs if c.overrides.get("queue_worker_pool") == "threads"]
    assert prefork and threads
    assert attribution_config_s(s, prefork[-1]) == attribution_config_s(s, threads[0]) + PREFORK_STOP_S
