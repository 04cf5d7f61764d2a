"""The attribution's ``batching`` study (issue 15 §1, doc/batching.md): what micro-batching costs a lone
request and what it buys under load, and the per-item model cost at which it stops paying.

Two parts, every configuration measured for ``batched`` and, on the same stack, ``async`` (the reference:
the same handler without the batcher, its model calls overlapping on the event loop):

* ``grid``: ``BATCH_MAX_WAIT_MS`` × ``BATCH_MAX_SIZE`` (``BENCH_BATCHING_WAITS_MS`` ×
  ``BENCH_BATCHING_SIZES``) at the run's ``MODEL_BATCH_PER_ITEM_MS``: the 1-user p50's cost against the
  throughput's gain;
* ``per-item``: ``MODEL_BATCH_PER_ITEM_MS`` (``BENCH_BATCHING_PER_ITEM``: fractions of the model's mean
  latency) at the run's batch settings: the throughput ratio batched/async per per-item cost.

A user's explicit ``BATCH_MAX_WAIT_MS`` / ``BATCH_MAX_SIZE`` / ``MODEL_BATCH_PER_ITEM_MS`` does not stop the
sweep: their point is added to it if missing and marked as theirs (``meta["yours_batch"]`` and
``["yours_per_item"]``). Each configuration's ``meta`` (written to ``attribution/plan.json``) says its
part and values; the analysis is :mod:`benchmark.analysis.batching`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmark.ideal import ideal_latency_ms
from benchmark.settings import BenchSettings
from scoring_bench.core.settings import Settings

BATCHING_STUDY = "batching"
GRID, PER_ITEM = "grid", "per-item"
ARCHITECTURES = ("async", "batched")  # async first: the reference, measured on the same stack
BATCH_KNOBS = ("batch_max_wait_ms", "batch_max_size")
PER_ITEM_KNOB = "model_batch_per_item_ms"
PER_ITEM_DECIMALS = 3  # per-item costs (ms) are rounded to this: they are fractions of a mean latency


def runs_batching(base: BenchSettings) -> bool:
    """Whether the run measures the study: asked for, and both architectures driven."""
    return BATCHING_STUDY in base.bench_attribution_studies and all(
        arch in base.architectures for arch in ARCHITECTURES
    )


def mean_model_ms(settings: Settings) -> float:
    """The mean of one draw of the model's latency (MODEL_LATENCY, capped): what the per-item fractions
    are fractions of."""
    return ideal_latency_ms(settings, concurrent=True, num_models=1).mean_ms


def per_item_costs(base: BenchSettings) -> list[float]:
    """The per-item costs (ms) of the per-item part: BENCH_BATCHING_PER_ITEM × the model's mean latency,
    rounded, without repeats, in increasing order."""
    mean = mean_model_ms(base)
    return sorted({round(fraction * mean, PER_ITEM_DECIMALS) for fraction in base.bench_batching_per_item})


def _explicit(base: BenchSettings, names: tuple[str, ...]) -> bool:
    return any(name in base.model_fields_set for name in names)


def grid_points(base: BenchSettings) -> list[tuple[float, int]]:
    """(wait ms, size) of the grid, sizes the model API accepts (≤ MODEL_MAX_BATCH); the user's explicit
    point added when it is not in it."""
    points = [
        (float(wait), size)
        for wait in base.bench_batching_waits_ms
        for size in base.bench_batching_sizes
        if size <= base.model_max_batch
    ]
    yours = (float(base.batch_max_wait_ms), base.batch_max_size)
    if points and _explicit(base, BATCH_KNOBS) and yours not in points:
        points.append(yours)
    return points


@dataclass(frozen=True)
class Point:
    """One configuration of the study (benchmark/attribution.py makes it a ``Config``)."""

    part: str  # GRID or PER_ITEM
    label: str
    overrides: dict[str, Any]
    meta: dict[str, Any]


def points(base: BenchSettings) -> list[Point]:
    """The study's configurations, in the order they are measured (none when it is not asked for, or
    batched or async is not driven)."""
    if not runs_batching(base):
        return []
    run_point = (float(base.batch_max_wait_ms), base.batch_max_size)
    run_per_item = round(base.model_batch_per_item_ms, PER_ITEM_DECIMALS)
    batch_yours = _explicit(base, BATCH_KNOBS)
    per_item_yours = _explicit(base, (PER_ITEM_KNOB,))
    configs: list[Point] = []

    def add(
        part: str, label: str, overrides: dict[str, Any], wait: float, size: int, per_item: float
    ) -> None:
        meta = {
            "part": part,
            "wait_ms": wait,
            "size": size,
            "per_item_ms": per_item,
            "run_batch": (wait, size) == run_point,  # the run's BATCH_MAX_* (default or the user's)
            "run_per_item": per_item == run_per_item,  # the run's MODEL_BATCH_PER_ITEM_MS
            "yours_batch": batch_yours and (wait, size) == run_point,  # ... set by the user
            "yours_per_item": per_item_yours and per_item == run_per_item,
        }
        configs.append(Point(part, label, overrides, meta))

    for wait, size in grid_points(base):
        overrides = {"batch_max_wait_ms": wait, "batch_max_size": size}
        add(GRID, f"wait {wait:g} ms, size {size}", overrides, wait, size, run_per_item)
    costs = per_item_costs(base)
    if costs and per_item_yours and run_per_item not in costs:
        costs = sorted([*costs, run_per_item])
    for cost in costs:
        if cost == run_per_item and run_point in grid_points(base):
            continue  # the grid measured it: the run's batch settings at the run's per-item cost
        add(PER_ITEM, f"per item {cost:g} ms", {PER_ITEM_KNOB: cost}, *run_point, cost)
    return configs
