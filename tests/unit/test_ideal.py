"""Ideal latency: closed forms checked by hand, the rest against the real LatencySampler."""

from __future__ import annotations

import math
import statistics
from statistics import NormalDist
from typing import Any

import pytest

from benchmark.ideal import (
    IdealLatency,
    batch_wait_at_one_user_ms,
    batched_ideal_latency_ms,
    ideal_latency_ms,
)
from benchmark.stats import percentiles
from scoring_bench.core.model import LatencySampler
from scoring_bench.core.settings import Settings


def _settings(**overrides: Any) -> Settings:
    """Every latency field explicit, so no environment variable can leak into a test."""
    values: dict[str, Any] = {
        "num_models": 2,
        "model_latency": "uniform",
        "model_latency_min_ms": 40.0,
        "model_latency_max_ms": 50.0,
        "model_latency_fixed_ms": 45.0,
        "model_latency_median_ms": 45.0,
        "model_latency_sigma": 0.5,
        "model_latency_cap_ms": 5_000.0,
        "model_latency_seed": 7,
    }
    values.update(overrides)
    return Settings(**values)


def _sampled(settings: Settings, concurrent: bool, samples: int) -> tuple[float, dict[str, float]]:
    """Mean and percentiles of request latencies simulated with the model's own sampler."""
    sampler = LatencySampler(settings)
    combine = max if concurrent else sum
    latencies = [combine(sampler.draw_ms() for _ in range(settings.num_models)) for _ in range(samples)]
    return statistics.fmean(latencies), percentiles(latencies)


def _assert_close_to_sampled(ideal: IdealLatency, settings: Settings, concurrent: bool) -> None:
    mean, pct = _sampled(settings, concurrent, samples=25_000)
    assert ideal.mean_ms == pytest.approx(mean, rel=0.01)
    assert ideal.p50_ms == pytest.approx(pct["p50"], rel=0.01)
    assert ideal.p95_ms == pytest.approx(pct["p95"], rel=0.015)
    assert ideal.p99_ms == pytest.approx(pct["p99"], rel=0.05)  # the sampled tail is the noisy side


def test_uniform_concurrent_is_the_expected_max() -> None:
    ideal = ideal_latency_ms(_settings(), concurrent=True)
    assert ideal.mean_ms == pytest.approx(40 + 10 * 2 / 3)
    assert ideal.p50_ms == pytest.approx(40 + 10 * math.sqrt(0.50))
    assert ideal.p95_ms == pytest.approx(40 + 10 * math.sqrt(0.95))
    assert ideal.p99_ms == pytest.approx(40 + 10 * math.sqrt(0.99))
    assert ideal.description == "E[max of 2 × U(40, 50)] = 46.7 ms"


def test_uniform_sequential_is_the_triangular_sum() -> None:
    ideal = ideal_latency_ms(_settings(), concurrent=False)
    # Sum of two U(0, 1): P(Y > y) = (2 - y)^2 / 2 above 1.
    assert ideal.mean_ms == pytest.approx(90.0)
    assert ideal.p50_ms == pytest.approx(90.0)
    assert ideal.p95_ms == pytest.approx(80 + 10 * (2 - math.sqrt(0.10)))
    assert ideal.p99_ms == pytest.approx(80 + 10 * (2 - math.sqrt(0.02)))
    assert ideal.description == "E[sum of 2 × U(40, 50)] = 90.0 ms"


def test_uniform_sum_of_many_is_exact_where_floats_would_cancel() -> None:
    ideal = ideal_latency_ms(_settings(), concurrent=False, num_models=48)
    assert ideal.p50_ms == pytest.approx(48 * 45.0, abs=1e-6)  # symmetric: median = mean
    # Close to the normal approximation (Irwin-Hall tails are slightly lighter).
    normal = NormalDist(48 * 45.0, 10 * math.sqrt(48 / 12))
    assert ideal.p95_ms == pytest.approx(normal.inv_cdf(0.95), abs=0.5)
    assert ideal.p95_ms < ideal.p99_ms < normal.inv_cdf(0.99)


def test_num_models_defaults_to_settings_and_can_be_overridden() -> None:
    settings = _settings(num_models=3)
    assert ideal_latency_ms(settings, concurrent=False).mean_ms == pytest.approx(135.0)
    assert ideal_latency_ms(settings, concurrent=False, num_models=1).mean_ms == pytest.approx(45.0)
    assert ideal_latency_ms(settings, concurrent=True).mean_ms == pytest.approx(40 + 10 * 3 / 4)


def test_one_model_is_the_same_either_way() -> None:
    settings = _settings(num_models=1)
    assert ideal_latency_ms(settings, True) == ideal_latency_ms(settings, False)
    assert ideal_latency_ms(settings, True).p95_ms == pytest.approx(49.5)


def test_fixed_latency() -> None:
    settings = _settings(model_latency="fixed", num_models=3)
    sequential = ideal_latency_ms(settings, concurrent=False)
    concurrent = ideal_latency_ms(settings, concurrent=True)
    assert (sequential.mean_ms, sequential.p50_ms, sequential.p99_ms) == (135.0, 135.0, 135.0)
    assert (concurrent.mean_ms, concurrent.p50_ms, concurrent.p99_ms) == (45.0, 45.0, 45.0)


def test_cap_applies_to_every_distribution() -> None:
    fixed = _settings(model_latency="fixed", model_latency_cap_ms=30.0)
    assert ideal_latency_ms(fixed, concurrent=False).mean_ms == 60.0
    uniform = _settings(model_latency_cap_ms=45.0)
    ideal = ideal_latency_ms(uniform, concurrent=True)
    assert ideal.mean_ms == pytest.approx(45 - 10 / 3 * 0.5**3)
    assert ideal.p95_ms == 45.0
    assert "capped at 45" in ideal.description
    assert ideal_latency_ms(uniform, concurrent=False).mean_ms == pytest.approx(2 * (45 - 25 / 20))


def test_capped_uniform_sum_matches_the_sampler() -> None:
    settings = _settings(model_latency_cap_ms=45.0, num_models=3)
    _assert_close_to_sampled(ideal_latency_ms(settings, concurrent=False), settings, concurrent=False)


def test_lognormal_concurrent_closed_form_quantiles() -> None:
    ideal = ideal_latency_ms(_settings(model_latency="lognormal"), concurrent=True)
    for q, value in ((0.50, ideal.p50_ms), (0.95, ideal.p95_ms), (0.99, ideal.p99_ms)):
        assert value == pytest.approx(45 * math.exp(0.5 * NormalDist().inv_cdf(math.sqrt(q))))


def test_lognormal_matches_the_sampler() -> None:
    settings = _settings(model_latency="lognormal", num_models=3)
    for concurrent in (True, False):
        _assert_close_to_sampled(ideal_latency_ms(settings, concurrent), settings, concurrent)


def test_lognormal_sequential_mean_and_determinism() -> None:
    settings = _settings(model_latency="lognormal")
    ideal = ideal_latency_ms(settings, concurrent=False)
    assert ideal.mean_ms == pytest.approx(2 * 45 * math.exp(0.5**2 / 2))
    assert ideal_latency_ms(settings, concurrent=False) == ideal
    assert "Monte Carlo" in ideal.description


def test_lognormal_with_a_biting_cap_matches_the_sampler() -> None:
    settings = _settings(model_latency="lognormal", model_latency_sigma=1.0, model_latency_cap_ms=60.0)
    for concurrent in (True, False):
        ideal = ideal_latency_ms(settings, concurrent)
        assert ideal.p99_ms <= (60.0 if concurrent else 120.0)
        _assert_close_to_sampled(ideal, settings, concurrent)


def test_num_models_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ideal_latency_ms(_settings(), concurrent=True, num_models=0)


# --------------------------------------------------------------------------- the batching handler


def _sampled_batched(settings: Settings, samples: int) -> tuple[float, dict[str, float]]:
    """A lone request of the batching handler, simulated: each model's batch of one waits
    BATCH_MAX_WAIT_MS, then one batch call (the model's own draw_batch_ms); the slowest model counts."""
    sampler = LatencySampler(settings)
    wait = settings.batch_max_wait_ms if settings.batch_max_size > 1 else 0.0
    latencies = [
        wait + max(sampler.draw_batch_ms(1) for _ in range(settings.num_models)) for _ in range(samples)
    ]
    return statistics.fmean(latencies), percentiles(latencies)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"model_latency": "lognormal", "model_batch_per_item_ms": 3.0},
        {"model_latency": "uniform", "model_latency_cap_ms": 48.0, "model_batch_per_item_ms": 2.0},
        {"batch_max_wait_ms": 20.0, "num_models": 5},
    ],
)
def test_the_batched_ideal_is_the_wait_then_the_slowest_batch_call_of_one_item(
    overrides: dict[str, Any],
) -> None:
    settings = _settings(**overrides)
    ideal = batched_ideal_latency_ms(settings)
    mean, pct = _sampled_batched(settings, samples=25_000)
    assert ideal.mean_ms == pytest.approx(mean, rel=0.01)
    assert ideal.p50_ms == pytest.approx(pct["p50"], rel=0.01)
    assert ideal.p95_ms == pytest.approx(pct["p95"], rel=0.015)
    assert ideal.p99_ms == pytest.approx(pct["p99"], rel=0.05)


def test_the_batched_ideal_by_hand() -> None:
    settings = _settings(batch_max_wait_ms=5.0, model_batch_per_item_ms=1.0)
    concurrent = ideal_latency_ms(settings, concurrent=True)
    batched = batched_ideal_latency_ms(settings)
    # U(40, 50) shifted by one item's 1 ms, after a 5 ms wait: every number 6 ms above async's ideal
    for field in ("mean_ms", "p50_ms", "p95_ms", "p99_ms"):
        assert getattr(batched, field) == pytest.approx(getattr(concurrent, field) + 6.0)
    assert "BATCH_MAX_WAIT_MS = 5 ms" in batched.description and "+1 ms per item" in batched.description


def test_a_batch_of_one_is_full_and_waits_for_nothing() -> None:
    settings = _settings(batch_max_size=1, model_batch_per_item_ms=0.0)
    assert batch_wait_at_one_user_ms(settings) == 0.0
    assert batched_ideal_latency_ms(settings).p50_ms == pytest.approx(ideal_latency_ms(settings, True).p50_ms)


def test_the_cap_bounds_the_whole_batch_call() -> None:
    fixed = _settings(model_latency="fixed", model_latency_fixed_ms=60.0, model_latency_cap_ms=60.5)
    assert batched_ideal_latency_ms(fixed).p50_ms == pytest.approx(60.5 + 5.0)  # min(60 + 1, 60.5) + wait
    tiny_cap = _settings(model_latency_cap_ms=0.5)  # the per-item cost alone reaches the cap
    assert batched_ideal_latency_ms(tiny_cap).mean_ms == pytest.approx(0.5 + 5.0)
