"""Locust users back off after failures of the target (benchmark/backoff.py), and only then."""

from __future__ import annotations

import pytest

from benchmark.backoff import BASE_S, FailureBackoff, failure_backoff_s, is_target_failure


def test_no_failure_no_wait_whatever_the_random_source() -> None:
    assert failure_backoff_s(0, 1.0, lambda: 1.0) == 0.0
    assert failure_backoff_s(-1, 1.0, lambda: 1.0) == 0.0


def test_zero_max_turns_the_backoff_off() -> None:
    assert failure_backoff_s(5, 0.0, lambda: 1.0) == 0.0


def test_the_cap_starts_at_50_ms_and_doubles_up_to_the_max() -> None:
    caps = [failure_backoff_s(n, 1.0, lambda: 1.0) for n in range(1, 9)]
    assert caps == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])
    assert BASE_S == 0.05
    assert failure_backoff_s(10_000, 2.5, lambda: 1.0) == pytest.approx(2.5)  # no overflow
    assert failure_backoff_s(3, 0.03, lambda: 1.0) == pytest.approx(0.03)  # a max below the first cap


def test_full_jitter_is_uniform_between_zero_and_the_cap() -> None:
    assert failure_backoff_s(4, 1.0, lambda: 0.0) == 0.0
    assert failure_backoff_s(4, 1.0, lambda: 0.5) == pytest.approx(0.2)


@pytest.mark.parametrize("status", [0, 500, 502, 503])
def test_no_answer_and_5xx_are_failures_of_the_target(status: int) -> None:
    assert is_target_failure(status)


@pytest.mark.parametrize("status", [200, 202, 404, 422, 429])
def test_an_answer_that_is_not_5xx_is_the_target_up(status: int) -> None:
    assert not is_target_failure(status)


def test_a_user_waits_longer_with_each_failure_and_not_at_all_after_an_answer() -> None:
    backoff = FailureBackoff(1.0, lambda: 1.0)
    assert backoff.wait_s() == 0.0  # the closed loop: no wait
    waits = []
    for status in (0, 0, 503, 0):
        backoff.record(status)
        waits.append(backoff.wait_s())
    assert waits == pytest.approx([0.05, 0.1, 0.2, 0.4])
    backoff.record(200)
    assert backoff.failures == 0 and backoff.wait_s() == 0.0
    backoff.record(502)
    assert backoff.wait_s() == pytest.approx(0.05)  # a new streak starts from the bottom
