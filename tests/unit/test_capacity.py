from pathlib import Path

import pytest

from benchmark.capacity import Capacity, capacity, ramp_capacity_rps
from benchmark.settings import BenchSettings
from scoring_bench.stack.supervisor import StackState


def test_a_rate_is_a_fraction_of_the_capacity_and_at_least_one_per_second() -> None:
    assert Capacity(400.0, "ramp").rate(0.5) == pytest.approx(200.0)
    assert Capacity(1.5, "probe").rate(0.1) == 1.0
    assert "closed-loop probe" in Capacity(400.0, "probe").describe()


def test_a_set_rate_wins_and_no_ramp_means_none(tmp_path: Path) -> None:
    settings = BenchSettings(bench_profile="smoke")
    state = StackState(processes=[], redis_url="redis://127.0.0.1:1/0")
    assert capacity(settings, state, "sync", tmp_path, 123.0, 1.0) == Capacity(123.0, "set")
    assert ramp_capacity_rps(tmp_path, "sync") is None
