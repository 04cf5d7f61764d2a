"""Percentiles, spread and the bootstrap interval of the async improvement."""

from __future__ import annotations

import random
import statistics

import pytest

from benchmark.stats import Improvement, improvement_ci, improvement_pct, percentiles, spread


def _latencies(n: int, mean: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, 10.0) for _ in range(n)]


def test_percentiles_interpolate_linearly() -> None:
    assert percentiles([4.0, 1.0, 3.0, 2.0]) == pytest.approx({"p50": 2.5, "p95": 3.85, "p99": 3.97})


def test_percentiles_match_statistics_inclusive_quantiles() -> None:
    values = _latencies(101, 50.0, seed=1)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    assert percentiles(values) == pytest.approx({"p50": cuts[49], "p95": cuts[94], "p99": cuts[98]})


def test_percentiles_custom_levels_and_single_value() -> None:
    assert percentiles([1.0, 2.0, 3.0], qs=(0, 100, 99.9)) == pytest.approx(
        {"p0": 1.0, "p100": 3.0, "p99.9": 2.998}
    )
    assert percentiles([7.0]) == {"p50": 7.0, "p95": 7.0, "p99": 7.0}


@pytest.mark.parametrize("values, qs", [([], (50,)), ([1.0], (101,)), ([1.0], (-1,))])
def test_percentiles_reject_bad_input(values: list[float], qs: tuple[float, ...]) -> None:
    with pytest.raises(ValueError):
        percentiles(values, qs)


def test_improvement_point_estimate() -> None:
    assert improvement_pct([100.0, 100.0], [70.0, 80.0]) == pytest.approx(25.0)
    assert improvement_pct([50.0], [60.0]) == pytest.approx(-20.0)


def test_constant_samples_give_a_degenerate_interval() -> None:
    result = improvement_ci([100.0] * 10, [60.0] * 5, resamples=200)
    assert result == Improvement(40.0, 40.0, 40.0, 0.95, 10, 5)


def test_interval_contains_the_estimate_and_is_deterministic() -> None:
    sync, async_ = _latencies(60, 90.0, seed=2), _latencies(60, 50.0, seed=3)
    result = improvement_ci(sync, async_, resamples=1000, seed=5)
    assert result.percent == pytest.approx(improvement_pct(sync, async_))
    assert result.low < result.percent < result.high
    assert result.low > 35 and result.high < 55  # truth: 100 * (90 - 50) / 90 = 44.4
    assert improvement_ci(sync, async_, resamples=1000, seed=5) == result
    assert improvement_ci(sync, async_, resamples=1000, seed=6) != result


def test_interval_narrows_with_more_samples_and_less_confidence() -> None:
    def width(n: int, confidence: float = 0.95) -> float:
        result = improvement_ci(_latencies(n, 90.0, 2), _latencies(n, 50.0, 3), confidence, resamples=500)
        return result.high - result.low

    assert width(400) < 0.5 * width(25)  # expected ratio: sqrt(25 / 400) = 0.25
    assert width(100, confidence=0.5) < 0.6 * width(100, confidence=0.99)


@pytest.mark.parametrize(
    "sync, async_, confidence",
    [([], [1.0], 0.95), ([1.0], [], 0.95), ([0.0], [1.0], 0.95), ([1.0], [1.0], 1.0), ([1.0], [1.0], 0.0)],
)
def test_improvement_rejects_bad_input(sync: list[float], async_: list[float], confidence: float) -> None:
    with pytest.raises(ValueError):
        improvement_ci(sync, async_, confidence)


def test_spread() -> None:
    assert spread([1.0, 2.0, 3.0, 4.0]) == pytest.approx(
        {"mean": 2.5, "stdev": statistics.stdev([1.0, 2.0, 3.0, 4.0]), "min": 1.0, "max": 4.0, "n": 4}
    )
    assert spread([5.0]) == {"mean": 5.0, "stdev": 0.0, "min": 5.0, "max": 5.0, "n": 1}
    with pytest.raises(ValueError):
        spread([])
