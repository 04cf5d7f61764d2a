"""The open loop's rates and limit, and where a repetition looks (benchmark.decisive)."""

from __future__ import annotations

from benchmark.decisive import focused_rates, p99_limit_ms, sweep_rates

FRACTIONS = [0.25, 0.5, 0.7, 0.85, 1.0, 1.15]


def test_the_sweep_offers_fractions_of_the_capacity_or_the_rates_asked_for() -> None:
    assert sweep_rates(FRACTIONS, [], 1000.0) == [250.0, 500.0, 700.0, 850.0, 1000.0, 1150.0]
    assert sweep_rates(FRACTIONS, [400, 100], 1000.0) == [100.0, 400.0]
    assert sweep_rates(FRACTIONS, [], None) == [] and sweep_rates(FRACTIONS, [], 0.0) == []


def test_a_repetition_looks_at_the_knee_and_its_neighbours() -> None:
    rates = [250.0, 500.0, 700.0, 850.0, 1000.0, 1150.0]
    assert focused_rates(rates, 850.0) == [700.0, 850.0, 1000.0]
    assert focused_rates(rates, 1150.0) == [1000.0, 1150.0]
    assert focused_rates(rates, 250.0) == [250.0, 500.0]
    assert focused_rates(rates, None) == [250.0, 500.0]
    assert focused_rates([], 10.0) == []


def test_the_limit_is_twice_the_one_user_p99_unless_set() -> None:
    assert p99_limit_ms(None, 52.5) == 105.0
    assert p99_limit_ms(80.0, 52.5) == 80.0
    assert p99_limit_ms(None, None) is None
