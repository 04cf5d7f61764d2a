"""One row of the attribution's ``measurements.csv`` and one configuration's level over its repetitions:
what every study's analysis (the waterfalls, fan-out, cpu, tail, batching, servers) starts from."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from benchmark.stats import spread
from benchmark.summary import Level, Spread, Spreads


@dataclass(frozen=True)
class Measurement:
    """One row of ``attribution/measurements.csv``: one architecture, one repetition of one configuration."""

    study: str
    step: int
    label: str
    factor: str
    before: str
    after: str
    arch: str
    rep: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    rps: float | None
    failure_ratio: float | None
    load_users: int | None
    num_models: int | None
    model_kind: str
    model_latency: str
    cpu_ms_per_request: float | None = None
    polls_per_task: float | None = None


def mean_and_spread(values: Iterable[float | None]) -> tuple[float | None, Spread | None]:
    present = [value for value in values if value is not None]
    if not present:
        return None, None
    summary = Spread.model_validate(spread(present))
    return summary.mean, summary


def level(rows: Sequence[Measurement]) -> Level:
    """One configuration and architecture over its repetitions: means, and the spread of p50 and req/s."""
    p50, p50_spread = mean_and_spread(row.p50_ms for row in rows)
    rps, rps_spread = mean_and_spread(row.rps for row in rows)
    return Level(
        step=rows[0].step,
        label=rows[0].label,
        reps=len(rows),
        p50_ms=p50,
        p95_ms=mean_and_spread(row.p95_ms for row in rows)[0],
        p99_ms=mean_and_spread(row.p99_ms for row in rows)[0],
        max_rps=rps,
        failure_ratio=mean_and_spread(row.failure_ratio for row in rows)[0],
        spread=Spreads(p50_ms=p50_spread, max_rps=rps_spread),
        cpu_ms_per_request=mean_and_spread(row.cpu_ms_per_request for row in rows)[0],
        polls_per_task=mean_and_spread(row.polls_per_task for row in rows)[0],
    )
