"""The open-loop schedule (benchmark/openloop/schedule.py): when each request is sent, fixed in advance."""

from __future__ import annotations

import math
import statistics
from itertools import pairwise

import pytest

from benchmark.openloop.schedule import arrival_offsets


def gaps(offsets: list[float]) -> list[float]:
    return [b - a for a, b in pairwise(offsets)]


def test_poisson_sends_about_rate_times_duration_requests() -> None:
    offsets = arrival_offsets(1000, 10, "poisson", seed=1)
    # Poisson count: mean 10,000, standard deviation 100
    assert abs(len(offsets) - 10_000) < 400


def test_poisson_gaps_are_exponential_with_mean_one_over_rate() -> None:
    spacing = gaps(arrival_offsets(500, 20, "poisson", seed=2))
    mean = statistics.fmean(spacing)
    assert mean == pytest.approx(1 / 500, rel=0.03)
    assert statistics.stdev(spacing) / mean == pytest.approx(1.0, abs=0.05)  # exponential: CV 1
    assert min(spacing) < 0.1 / 500  # bursts: some gaps far below the mean


def test_constant_spacing_is_exactly_one_over_rate() -> None:
    offsets = arrival_offsets(200, 4, "constant")
    assert len(offsets) == 800
    assert offsets[0] == 0.0
    assert all(gap == pytest.approx(1 / 200) for gap in gaps(offsets))


def test_constant_count_does_not_overshoot_by_rounding() -> None:
    offsets = arrival_offsets(0.7, 10, "constant")
    assert len(offsets) == 7 and offsets[-1] < 10


@pytest.mark.parametrize("arrivals", ["poisson", "constant"])
def test_offsets_rise_within_the_duration(arrivals: str) -> None:
    offsets = arrival_offsets(300, 3, arrivals, seed=3)  # type: ignore[arg-type]
    assert offsets == sorted(offsets)
    assert all(0 <= t < 3 for t in offsets)


def test_the_same_seed_gives_the_same_schedule_another_seed_another() -> None:
    assert arrival_offsets(100, 5, "poisson", seed=7) == arrival_offsets(100, 5, "poisson", seed=7)
    assert arrival_offsets(100, 5, "poisson", seed=7) != arrival_offsets(100, 5, "poisson", seed=8)


def test_rates_share_their_draws_stretched() -> None:
    """Common random numbers: the same seed at twice the rate is the same schedule, twice as dense."""
    slow = arrival_offsets(100, 5, "poisson", seed=4)
    fast = arrival_offsets(200, 2.5, "poisson", seed=4)
    assert len(slow) == len(fast)
    assert all(math.isclose(a, 2 * b, rel_tol=1e-9) for a, b in zip(slow, fast))


@pytest.mark.parametrize(("rate", "duration"), [(0, 1), (-5, 1), (10, 0)])
def test_a_rate_or_duration_that_is_not_positive_is_refused(rate: float, duration: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        arrival_offsets(rate, duration)


def test_unknown_arrivals_are_refused() -> None:
    with pytest.raises(ValueError, match="poisson, constant"):
        arrival_offsets(10, 1, "bursty")  # type: ignore[arg-type]
