"""Breaking point: synthetic ramps that break at a known step for each reason, and ramps that do not."""

from __future__ import annotations

import pytest

from benchmark.breaking_point import BreakingPoint, RampStep, find_breaking_point


def _step(
    users: int, rps: float, p95_ms: float = 50.0, failure_ratio: float = 0.0, requests: int = 1_000
) -> RampStep:
    return RampStep(
        users, rps, p50_ms=p95_ms * 0.8, p95_ms=p95_ms, failure_ratio=failure_ratio, requests=requests
    )


def _healthy(users: list[int]) -> list[RampStep]:
    """Throughput proportional to users, steady latency, no failures."""
    return [_step(u, 20.0 * u) for u in users]


def test_healthy_ramp_never_breaks() -> None:
    result = find_breaking_point(_healthy([1, 2, 4, 8, 16]))
    assert result == BreakingPoint(None, None, None, "no breaking point up to 16 users", 4)


def test_latency_breaks_when_p95_exceeds_twice_the_first_step() -> None:
    steps = _healthy([1, 2, 4, 8, 16])
    steps[3] = _step(8, 160.0, p95_ms=100.1)
    steps[2] = _step(4, 80.0, p95_ms=100.0)  # exactly twice: not yet broken
    result = find_breaking_point(steps)
    assert (result.step_index, result.users, result.rps, result.last_good_index) == (3, 8, 160.0, 2)
    assert result.reason.startswith("latency:")
    assert "100.1 ms" in result.reason and "50.0 ms" in result.reason


def test_explicit_baseline_replaces_the_first_step() -> None:
    steps = _healthy([1, 2, 4])
    steps[1] = _step(2, 40.0, p95_ms=61.0)
    assert find_breaking_point(steps).step_index is None
    result = find_breaking_point(steps, baseline_p95_ms=30.0)
    assert result.step_index == 1 and "baseline p95 30.0 ms" in result.reason


def test_failures_break_above_the_ratio() -> None:
    steps = _healthy([1, 2, 4, 8])
    steps[1] = _step(2, 40.0, failure_ratio=0.01)  # at the limit: fine
    steps[2] = _step(4, 80.0, failure_ratio=0.03)
    result = find_breaking_point(steps)
    assert (result.step_index, result.last_good_index) == (2, 1)
    assert result.reason.startswith("failures:") and "3.00%" in result.reason


def test_failures_count_even_in_short_steps() -> None:
    steps = [_step(1, 20.0, failure_ratio=0.5, requests=4), *_healthy([2, 4])]
    result = find_breaking_point(steps)
    assert (result.step_index, result.last_good_index) == (0, None)


def test_throughput_plateau_breaks() -> None:
    steps = [_step(10, 100.0), _step(20, 200.0), _step(40, 205.0), _step(80, 210.0)]
    result = find_breaking_point(steps)
    assert (result.step_index, result.users, result.last_good_index) == (2, 40, 1)
    assert result.reason.startswith("throughput:")
    assert "205.0 rps at 40 users" in result.reason and "200.0 rps at 20 users" in result.reason


def test_throughput_is_compared_with_the_best_step_not_the_previous_one() -> None:
    # 21 users is under 10% more than 20: not judged. 24 users gains 14% over 180 but 2.5% over 200.
    steps = [_step(10, 100.0), _step(20, 200.0), _step(21, 180.0), _step(24, 205.0)]
    result = find_breaking_point(steps)
    assert result.step_index == 3 and "200.0 rps at 20 users" in result.reason


def test_throughput_needs_ten_percent_more_users() -> None:
    steps = [_step(10, 100.0), _step(20, 200.0), _step(21, 200.0)]
    assert find_breaking_point(steps).step_index is None
    assert find_breaking_point(steps, min_user_increase=0.0).step_index == 2


def test_short_steps_are_ignored_for_latency_and_throughput() -> None:
    steps = [
        _step(1, 20.0, p95_ms=10.0, requests=5),  # would be a 10 ms baseline
        _step(2, 40.0, p95_ms=50.0),
        _step(4, 5.0, p95_ms=500.0, requests=19),  # slow and no throughput, but too short to judge
        _step(8, 160.0, p95_ms=60.0),
    ]
    assert find_breaking_point(steps) == BreakingPoint(None, None, None, "no breaking point up to 8 users", 3)
    assert find_breaking_point(steps, min_requests=5).step_index == 1


def test_every_broken_rule_is_named() -> None:
    steps = [_step(10, 100.0), _step(20, 101.0, p95_ms=150.0, failure_ratio=0.2)]
    reason = find_breaking_point(steps).reason
    assert [part.split(":")[0] for part in reason.split("; ")] == ["latency", "failures", "throughput"]


@pytest.mark.parametrize(
    "steps",
    [[], [_step(4, 80.0), _step(2, 40.0)]],
    ids=["empty", "users-decreasing"],
)
def test_invalid_ramps_are_rejected(steps: list[RampStep]) -> None:
    with pytest.raises(ValueError):
        find_breaking_point(steps)
