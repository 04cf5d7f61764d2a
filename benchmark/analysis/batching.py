"""The attribution's ``batching`` study (benchmark/batching_sweep.py): batching's 1-user latency cost against
its throughput gain over async, per BATCH_MAX_WAIT_MS × BATCH_MAX_SIZE, and the per-item model cost at which
it stops paying, measured and as a closed-loop model predicts it.

The model. Batching changes two things against async's model calls overlapping on the event loop. A lone
request (one user) rides in a batch of one: it waits the whole BATCH_MAX_WAIT_MS before its batch is sent,
then the batch costs the model's base draw plus one item, so its p50 should cost ``wait + per_item`` more
than async's. Under a closed loop of U users the loop's time per request is U ÷ throughput (Little's law);
a batch of n costs ``base + per_item × n`` and every request in it waits for the last item, so raising the
per-item cost by Δ adds n × Δ to that time, where n = min(BATCH_MAX_SIZE, U) (the loop's users arrive
together, every batch full). From the batched throughput measured at the lowest per-item cost swept, p₀,
the model predicts ``batched(p) = U ÷ (U ÷ batched(p₀) + n × (p − p₀))`` and a break-even (batched =
async) at ``p₀ + (U ÷ async − U ÷ batched(p₀)) ÷ n``. What batching buys in the model is only what the
loop saves per request at p₀ (fewer HTTP calls, less CPU, less queueing for it); if async is not short of
CPU at U users there is nothing to save and batching cannot pay.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

from benchmark.analysis.measurements import Measurement, level
from benchmark.analysis.raw import ATTRIBUTION, read_json, recorded_settings
from benchmark.batching_sweep import ARCHITECTURES, BATCHING_STUDY, GRID, PER_ITEM, mean_model_ms
from benchmark.summary import BatchingPoint, BatchingSweep
from scoring_bench.core.settings import Settings

CROSSED, PAYS_THROUGHOUT, NEVER_PAYS, NO_CROSSING = "crossed", "pays_throughout", "never_pays", "no_crossing"


def _minus(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _plan(run_dir: Path) -> dict[int, dict[str, Any]]:
    """The study's configurations in ``attribution/plan.json`` by step: label, part (factor) and meta."""
    data = read_json(Path(run_dir) / ATTRIBUTION / "plan.json")
    plan: dict[int, dict[str, Any]] = {}
    for entry in data if isinstance(data, list) else []:
        if (
            isinstance(entry, dict)
            and entry.get("study") == BATCHING_STUDY
            and isinstance(entry.get("step"), int)
        ):
            plan[entry["step"]] = entry
    return plan


def _config_settings(run_dir: Path, step: int) -> Settings | None:
    config = read_json(Path(run_dir) / ATTRIBUTION / BATCHING_STUDY / str(step) / "config.json")
    if isinstance(config, dict) and isinstance(config.get("settings"), dict):
        return recorded_settings({"settings": config["settings"]})
    return None


def batching_point(
    step: int, rows: Sequence[Measurement], entry: dict[str, Any] | None, settings: Settings | None
) -> BatchingPoint:
    """One configuration: its values (plan.json's meta, else its own settings), both architectures' levels,
    the p50 cost, the throughput ratio and the 1-user cost the model predicts (wait + one item)."""
    meta = entry.get("meta") if entry and isinstance(entry.get("meta"), dict) else {}
    assert isinstance(meta, dict)
    by_arch = {arch: [row for row in rows if row.arch == arch] for arch in ARCHITECTURES}
    batched, reference = (level(by_arch[arch]) if by_arch[arch] else None for arch in ("batched", "async"))
    wait = _number(meta.get("wait_ms"))
    size = _number(meta.get("size"))
    per_item = _number(meta.get("per_item_ms"))
    if settings is not None:
        wait = settings.batch_max_wait_ms if wait is None else wait
        size = settings.batch_max_size if size is None else size
        per_item = settings.model_batch_per_item_ms if per_item is None else per_item
    label = (entry.get("label") if entry else None) or (rows[0].label if rows else "")
    return BatchingPoint(
        step=step,
        label=str(label),
        wait_ms=wait,
        max_size=int(size) if size is not None else None,
        per_item_ms=per_item,
        run_batch=bool(meta.get("run_batch")),
        run_per_item=bool(meta.get("run_per_item")),
        yours_batch=bool(meta.get("yours_batch")),
        yours_per_item=bool(meta.get("yours_per_item")),
        batched=batched,
        async_=reference,
        p50_cost_ms=_minus(batched.p50_ms if batched else None, reference.p50_ms if reference else None),
        p95_cost_ms=_minus(batched.p95_ms if batched else None, reference.p95_ms if reference else None),
        throughput_ratio=_ratio(
            batched.max_rps if batched else None, reference.max_rps if reference else None
        ),
        predicted_p50_cost_ms=wait + per_item if wait is not None and per_item is not None else None,
    )


def break_even(points: Sequence[tuple[float, float]]) -> tuple[str | None, float | None]:
    """Where the throughput ratio (batched ÷ async) first falls through 1 as the per-item cost grows, linearly
    interpolated between the two costs around it: (CROSSED, cost). Otherwise PAYS_THROUGHOUT (≥ 1 at every
    cost swept), NEVER_PAYS (< 1 at every cost), NO_CROSSING (< 1 then ≥ 1 only: noise, or a non-monotone
    curve); (None, None) without a ratio. ``points``: (per-item ms, ratio)."""
    ordered = sorted(points)
    if not ordered:
        return None, None
    for (low, low_ratio), (high, high_ratio) in pairwise(ordered):
        if low_ratio >= 1 > high_ratio:
            return CROSSED, low + (low_ratio - 1) * (high - low) / (low_ratio - high_ratio)
    if all(ratio >= 1 for _, ratio in ordered):
        return PAYS_THROUGHOUT, None
    if all(ratio < 1 for _, ratio in ordered):
        return NEVER_PAYS, None
    return NO_CROSSING, None


def _mean(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return sum(present) / len(present) if present else None


def implied_batch_items(per_item: Sequence[BatchingPoint], users: int | None) -> float | None:
    """The batch size batched's own throughputs imply: how much its loop's time per request (U ÷ req/s)
    grew from the lowest to the highest per-item cost swept, over how much the cost grew. The model takes
    every batch as full (n = min(BATCH_MAX_SIZE, U)); fewer items per batch grow it less."""
    measured = [p for p in per_item if p.per_item_ms is not None and p.batched and p.batched.max_rps]
    if not users or len(measured) < 2:
        return None
    low = min(measured, key=lambda p: p.per_item_ms or 0.0)
    high = max(measured, key=lambda p: p.per_item_ms or 0.0)
    assert low.batched and high.batched and low.batched.max_rps and high.batched.max_rps
    span = (high.per_item_ms or 0.0) - (low.per_item_ms or 0.0)
    if span <= 0:
        return None
    return (users * 1000 / high.batched.max_rps - users * 1000 / low.batched.max_rps) / span


def predicted(
    per_item: Sequence[BatchingPoint], users: int | None, batch_items: int | None
) -> tuple[list[BatchingPoint], float | None]:
    """The closed-loop model (module docstring) anchored at the lowest per-item cost with a batched
    throughput; async's throughput is the mean over the part's points (it does not depend on the per-item
    cost). The points with their predicted ratio, and the predicted break-even."""
    measured = [p for p in per_item if p.per_item_ms is not None and p.batched and p.batched.max_rps]
    reference = _mean(p.async_.max_rps for p in per_item if p.async_ is not None)
    if not measured or not users or not batch_items or not reference:
        return list(per_item), None
    anchor = min(measured, key=lambda p: p.per_item_ms or 0.0)
    assert anchor.batched is not None and anchor.batched.max_rps and anchor.per_item_ms is not None
    loop_ms = users * 1000 / anchor.batched.max_rps  # the loop's time per request, ms
    p0 = anchor.per_item_ms

    def ratio(cost: float) -> float | None:
        time_ms = loop_ms + batch_items * (cost - p0)
        return users * 1000 / time_ms / reference if time_ms > 0 else None

    with_model = [
        p.model_copy(update={"predicted_ratio": ratio(p.per_item_ms)}) if p.per_item_ms is not None else p
        for p in per_item
    ]
    return with_model, p0 + (users * 1000 / reference - loop_ms) / batch_items


def batching_section(
    run_dir: Path, rows: Sequence[Measurement], recorded: Settings | None = None
) -> BatchingSweep | None:
    """The study from the attribution's measurements (None when it did not run). ``recorded``: the run's
    stack settings, for the model's scale when a configuration's own config.json is missing."""
    study_rows = [row for row in rows if row.study == BATCHING_STUDY]
    plan = _plan(run_dir)
    if not study_rows and not plan:
        return None
    steps = sorted({row.step for row in study_rows} | set(plan))
    points: list[BatchingPoint] = []
    missing: list[str] = []
    settings_seen: list[Settings] = []
    for step in steps:
        step_rows = [row for row in study_rows if row.step == step]
        own = _config_settings(run_dir, step)
        if own is not None:
            settings_seen.append(own)
        point = batching_point(step, step_rows, plan.get(step), own or recorded)
        points.append(point)
        absent = [arch for arch in ARCHITECTURES if not any(row.arch == arch for row in step_rows)]
        if absent:
            missing.append(f"{point.label or step} ({' and '.join(absent)})")
    part = {step: (entry.get("factor") or "") for step, entry in plan.items()}
    part.update({row.step: row.factor for row in study_rows if row.factor})
    grid = [p for p in points if part.get(p.step) == GRID]
    # the per-item curve: its own configurations and the grid's point at the run's batch settings
    per_item = sorted(
        [p for p in points if part.get(p.step) == PER_ITEM] + [p for p in grid if p.run_batch],
        key=lambda p: (p.per_item_ms if p.per_item_ms is not None else float("inf"), p.step),
    )
    users = _users(study_rows)
    scale = settings_seen[0] if settings_seen else recorded
    run_size = next((p.max_size for p in per_item if p.max_size is not None), None)
    batch_items = min(run_size, users) if run_size is not None and users else None
    per_item, predicted_break_even = predicted(per_item, users, batch_items)
    status, cost = break_even(
        [
            (p.per_item_ms, p.throughput_ratio)
            for p in per_item
            if p.per_item_ms is not None and p.throughput_ratio is not None
        ]
    )
    return BatchingSweep(
        load_users=users,
        model_mean_ms=mean_model_ms(scale) if scale is not None else None,
        grid=grid,
        per_item=per_item,
        batch_items=batch_items,
        break_even=status,
        break_even_per_item_ms=cost,
        predicted_break_even_per_item_ms=predicted_break_even,
        implied_batch_items=implied_batch_items(per_item, users),
        missing=missing,
    )


def _users(rows: Sequence[Measurement]) -> int | None:
    users = [row.load_users for row in rows if row.load_users is not None]
    return max(users) if users else None
