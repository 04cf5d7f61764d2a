"""Breaking point of a load ramp.

The breaking point is the first step of a ramp (users rising step by step) at which the stack stops
keeping up: its p95 latency exceeds twice the unloaded baseline, more than 1% of its requests fail, or
adding users no longer adds throughput. The step before it is the sustainable maximum, the most load the
stack carries with latency, errors and throughput all still healthy.

(Twice, 1% and "no longer adds" are the defaults of :func:`find_breaking_point`; see its docstring.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise


@dataclass(frozen=True)
class RampStep:
    """One step of a load ramp: a fixed number of users, measured over the step."""

    users: int
    rps: float
    p50_ms: float
    p95_ms: float
    failure_ratio: float
    requests: int


@dataclass(frozen=True)
class BreakingPoint:
    """The first failing step (all ``None`` when none failed) and the last step before it."""

    step_index: int | None
    users: int | None
    rps: float | None
    reason: str
    last_good_index: int | None


def find_breaking_point(
    steps: Sequence[RampStep],
    *,
    baseline_p95_ms: float | None = None,
    latency_factor: float = 2.0,
    max_failure_ratio: float = 0.01,
    min_gain: float = 0.05,
    min_user_increase: float = 0.10,
    min_requests: int = 20,
) -> BreakingPoint:
    """The first step of ``steps`` (ordered by users) that breaks one of three rules.

    (a) latency: p95 > ``latency_factor`` × the baseline p95. The baseline is ``baseline_p95_ms`` when
        given (e.g. a 1-user measurement), else the p95 of the first step with enough requests.
    (b) failures: failure ratio > ``max_failure_ratio``. Applies to every step, however few requests:
        failures are never noise.
    (c) throughput: let *best* be the earlier step with the highest rps. A step with at least
        ``min_user_increase`` (10%) more users than *best* must deliver at least ``1 + min_gain``
        (1.05) × best's rps. Comparing with the best step, not the previous one, catches a plateau
        climbed in many small steps and a throughput that fell; requiring more users keeps noise
        between near-equal loads from reading as a plateau. Steps with under 10% more users than *best*
        are not judged by this rule.

    Steps with fewer than ``min_requests`` requests are too short to judge by percentiles or rps: they
    are skipped by (a) and (c) and never become the baseline or *best*. When one step breaks several
    rules, ``reason`` names them all, separated by "; ".
    """
    _check(steps, baseline_p95_ms, latency_factor, max_failure_ratio, min_gain, min_user_increase)
    baseline = baseline_p95_ms if baseline_p95_ms is not None else _first_p95(steps, min_requests)
    best: RampStep | None = None
    for index, step in enumerate(steps):
        judged = step.requests >= min_requests
        reasons = [
            _latency_reason(step, baseline, latency_factor) if judged else None,
            _failure_reason(step, max_failure_ratio),
            _throughput_reason(step, best, min_gain, min_user_increase) if judged else None,
        ]
        broken = [reason for reason in reasons if reason is not None]
        if broken:
            last_good = index - 1 if index > 0 else None
            return BreakingPoint(index, step.users, step.rps, "; ".join(broken), last_good)
        if judged and (best is None or step.rps > best.rps):
            best = step
    return BreakingPoint(None, None, None, f"no breaking point up to {steps[-1].users} users", len(steps) - 1)


def _latency_reason(step: RampStep, baseline: float | None, factor: float) -> str | None:
    if baseline is None or step.p95_ms <= factor * baseline:
        return None
    return (
        f"latency: p95 {step.p95_ms:.1f} ms > {factor:g} × baseline p95 {baseline:.1f} ms "
        f"at {step.users} users"
    )


def _failure_reason(step: RampStep, max_ratio: float) -> str | None:
    if not step.failure_ratio > max_ratio:
        return None
    return f"failures: {step.failure_ratio:.2%} of requests failed (> {max_ratio:.2%}) at {step.users} users"


def _throughput_reason(
    step: RampStep, best: RampStep | None, min_gain: float, min_user_increase: float
) -> str | None:
    if best is None or step.users < (1 + min_user_increase) * best.users:
        return None
    if step.rps >= (1 + min_gain) * best.rps:
        return None
    return (
        f"throughput: {step.rps:.1f} rps at {step.users} users < {1 + min_gain:g} × "
        f"{best.rps:.1f} rps at {best.users} users"
    )


def _first_p95(steps: Sequence[RampStep], min_requests: int) -> float | None:
    """The baseline p95: that of the first step with enough requests, or None if there is none."""
    return next((step.p95_ms for step in steps if step.requests >= min_requests), None)


def _check(
    steps: Sequence[RampStep],
    baseline_p95_ms: float | None,
    latency_factor: float,
    max_failure_ratio: float,
    min_gain: float,
    min_user_increase: float,
) -> None:
    if not steps:
        raise ValueError("a ramp needs at least one step")
    if any(later.users < earlier.users for earlier, later in pairwise(steps)):
        raise ValueError("ramp steps must be ordered by increasing users")
    if baseline_p95_ms is not None and baseline_p95_ms <= 0:
        raise ValueError("baseline_p95_ms must be positive")
    if latency_factor <= 0 or max_failure_ratio < 0 or min_gain < 0 or min_user_increase < 0:
        raise ValueError("latency_factor must be positive; the other thresholds must not be negative")
