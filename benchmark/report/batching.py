"""The batching study in the attribution section (benchmark/analysis/batching.py): the grid of
BATCH_MAX_WAIT_MS × BATCH_MAX_SIZE (a lone request's p50 cost against the throughput gained over async) and
the per-item model cost at which batching stops paying, measured and as the closed-loop model predicts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from benchmark.analysis.batching import CROSSED, NEVER_PAYS, NO_CROSSING, PAYS_THROUGHOUT
from benchmark.report.attribution_differs import grouped
from benchmark.report.blocks import Block, Heading, Image, Paragraph, Table
from benchmark.report.differs import differs_bullets
from benchmark.report.format import DASH, number, rps
from benchmark.report.plot_captions import PLOT_CAPTIONS
from benchmark.summary import BatchingPoint, BatchingSweep, Level

BATCHING_TITLE = "Batching: what a lone request pays, what the load gains"
PLOT = "batching"


def batching_blocks(sweep: BatchingSweep | None, plot_paths: dict[str, Path]) -> list[Block]:
    """The study's subsection: intro, the grid's table and sentences, the per-item table and the break-even;
    nothing when it did not run."""
    if sweep is None:
        return []
    blocks: list[Block] = [Heading(3, BATCHING_TITLE), Paragraph(_intro(sweep))]
    if sweep.missing:
        blocks.append(Paragraph("⚠ Not measured: " + "; ".join(sweep.missing) + "."))
    if sweep.grid:
        blocks += [grid_table(sweep.grid), *[Paragraph(text) for text in grid_sentences(sweep)]]
    if sweep.per_item:
        blocks += [Paragraph(_model_text(sweep)), per_item_table(sweep)]
        blocks.append(Paragraph(break_even_sentence(sweep)))
    blocks += batching_differs_blocks(sweep)
    if PLOT in plot_paths:
        blocks.append(Image(plot_paths[PLOT], PLOT_CAPTIONS[PLOT]))
    return blocks


def batching_differs_blocks(sweep: BatchingSweep) -> list[Block]:
    """batched against async on each point's stack: one bullet per distinct diff, with its points."""
    points = {point.step: point for point in [*sweep.grid, *sweep.per_item]}
    pairs = [(point.label or f"step {point.step}", point.differs) for _, point in sorted(points.items())]
    items = [f"batched vs async at {text}" for text in grouped(pairs)]
    return differs_bullets(
        items, "What differs between batched and async (from each point's recorded settings):"
    )


def _intro(sweep: BatchingSweep) -> str:
    users = sweep.load_users if sweep.load_users is not None else "N"
    return (
        "The batching handler (doc/batching.md) against the async one, its reference without a batcher, both "
        "measured on the same stack for every configuration: p50 and p95 of sequential requests at one user, "
        f"the throughput of {users} closed-loop users and the server CPU per request under that load. The "
        "cost is batched minus async p50 at one user; the predicted cost is what a lone request should "
        "pay: it rides in a batch of one, sent when it has waited BATCH_MAX_WAIT_MS, and the batch adds one "
        "item's MODEL_BATCH_PER_ITEM_MS. The gain is batched ÷ async req/s. Each point is a single "
        "measurement."
    )


def _ratio(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}×"


def _signed_ms(value: float | None) -> str:
    return number(value, "+.1f", "ms")


def _pair(batched: Level | None, reference: Level | None, key: str, spec: str, unit: str) -> str:
    values = [getattr(level, key) if level is not None else None for level in (batched, reference)]
    if all(value is None for value in values):
        return DASH
    return " / ".join(number(value, spec) for value in values) + (f" {unit}" if unit else "")


def _mark(point: BatchingPoint, yours: bool, run: bool) -> str:
    if yours:
        return " (yours)"
    return " (default)" if run else ""


def grid_table(grid: Sequence[BatchingPoint]) -> Table:
    rows = [
        [
            number(point.wait_ms, "g", "ms") + _mark(point, point.yours_batch, point.run_batch),
            number(point.max_size, "d"),
            _pair(point.batched, point.async_, "p50_ms", ".1f", "ms"),
            _pair(point.batched, point.async_, "p95_ms", ".1f", "ms"),
            _signed_ms(point.p50_cost_ms),
            _signed_ms(point.predicted_p50_cost_ms),
            _pair(point.batched, point.async_, "max_rps", ".0f", "req/s"),
            _ratio(point.throughput_ratio),
            _pair(point.batched, point.async_, "cpu_ms_per_request", ".2f", "ms"),
        ]
        for point in grid
    ]
    header = [
        "BATCH_MAX_WAIT_MS",
        "BATCH_MAX_SIZE",
        "p50 at 1 user, batched / async",
        "p95 at 1 user, batched / async",
        "p50 cost",
        "predicted cost",
        "req/s, batched / async",
        "gain",
        "server CPU per request, batched / async",
    ]
    return Table(header, rows, text_columns=1)


def _point_name(point: BatchingPoint) -> str:
    return f"BATCH_MAX_WAIT_MS={number(point.wait_ms, 'g')}, BATCH_MAX_SIZE={number(point.max_size, 'd')}"


def grid_sentences(sweep: BatchingSweep) -> list[str]:
    """The best point of the grid for throughput and what it costs at one user; the run's own point; how
    well the 1-user cost follows the prediction."""
    measured = [p for p in sweep.grid if p.throughput_ratio is not None]
    if not measured:
        return ["No point of the grid has both throughputs: no gain to report."]
    users = sweep.load_users if sweep.load_users is not None else "N"
    best = max(measured, key=lambda p: p.throughput_ratio or 0.0)
    gainers = [p for p in measured if (p.throughput_ratio or 0.0) > 1]
    sentences = []
    if gainers:
        sentences.append(
            f"Points of the grid that gained throughput over async at {users} users: {len(gainers)} of "
            f"{len(measured)}. The most: {_point_name(best)}, {_ratio(best.throughput_ratio)} "
            f"({rps(best.batched.max_rps if best.batched else None)} against "
            f"{rps(best.async_.max_rps if best.async_ else None)}), for a p50 cost of "
            f"{_signed_ms(best.p50_cost_ms)} at one user."
        )
    else:
        sentences.append(
            f"No point of the grid gained throughput over async at {users} users; the closest: "
            f"{_point_name(best)}, {_ratio(best.throughput_ratio)} "
            f"({rps(best.batched.max_rps if best.batched else None)} against "
            f"{rps(best.async_.max_rps if best.async_ else None)}), at a p50 cost of "
            f"{_signed_ms(best.p50_cost_ms)} at one user."
        )
    run = next((p for p in sweep.grid if p.run_batch), None)
    if run is not None and run is not best:
        whose = "yours" if run.yours_batch else "the defaults"
        sentences.append(
            f"The run's own settings ({whose}: {_point_name(run)}): {_ratio(run.throughput_ratio)} for "
            f"{_signed_ms(run.p50_cost_ms)} at one user."
        )
    off = [
        p.p50_cost_ms - p.predicted_p50_cost_ms
        for p in sweep.grid
        if p.p50_cost_ms is not None and p.predicted_p50_cost_ms is not None
    ]
    if off:
        sentences.append(
            "At one user the measured cost minus the predicted one (the wait plus one item) ranges from "
            f"{_signed_ms(min(off))} to {_signed_ms(max(off))} over the grid: "
            + (
                "a lone request pays the wait and little else."
                if max(abs(value) for value in off) <= 2.0
                else "more than the wait and one item alone explain (timer resolution, the event loop, "
                "noise of a single measurement)."
            )
        )
    return sentences


def _model_text(sweep: BatchingSweep) -> str:
    n = sweep.batch_items if sweep.batch_items is not None else "n"
    users = sweep.load_users if sweep.load_users is not None else "U"
    return (
        "Where batching stops paying: MODEL_BATCH_PER_ITEM_MS swept at the run's batch settings, batched "
        f"against async at {users} users (async never calls the batch route: its cost does not depend on "
        "it). The model: n calls overlapping on the event loop cost one draw of the model's latency "
        "each, at the same time; a batch of n costs one draw plus n × the per-item cost, and every request "
        f"in it waits for the last item. In a closed loop of {users} users the time per request is {users} "
        f"÷ throughput, so each millisecond of per-item cost adds n = min(BATCH_MAX_SIZE, users) = {n} ms "
        "to it. From the "
        "batched throughput at the lowest per-item cost swept it predicts the ratio at every other cost, and "
        "the break-even where the batched loop's time per request reaches async's: batching can only buy "
        "back what it saves per request at that lowest cost (HTTP calls, CPU, the queueing for it)."
    )


def per_item_table(sweep: BatchingSweep) -> Table:
    mean = sweep.model_mean_ms
    rows = [
        [
            number(point.per_item_ms, "g", "ms")
            + _mark(point, point.yours_per_item, point.run_per_item and not point.yours_per_item),
            f"{point.per_item_ms / mean * 100:.1f}%" if point.per_item_ms is not None and mean else DASH,
            _pair(point.batched, point.async_, "p50_ms", ".1f", "ms"),
            _pair(point.batched, point.async_, "max_rps", ".0f", "req/s"),
            _ratio(point.throughput_ratio),
            _ratio(point.predicted_ratio),
            _pair(point.batched, point.async_, "cpu_ms_per_request", ".2f", "ms"),
        ]
        for point in sweep.per_item
    ]
    header = [
        "MODEL_BATCH_PER_ITEM_MS",
        "of the model's mean latency",
        "p50 at 1 user, batched / async",
        "req/s, batched / async",
        "batched ÷ async",
        "predicted",
        "server CPU per request, batched / async",
    ]
    return Table(header, rows, text_columns=1)


def break_even_sentence(sweep: BatchingSweep) -> str:
    """Where batching stops paying, measured (interpolated) or why not within the range swept, beside the
    model's prediction."""
    costs = [p.per_item_ms for p in sweep.per_item if p.per_item_ms is not None and p.throughput_ratio]
    low, high = (min(costs), max(costs)) if costs else (None, None)
    predicted = sweep.predicted_break_even_per_item_ms
    model = (
        f" The closed-loop model predicts {number(predicted, '.2f', 'ms')}"
        + (" (below zero: even free items would not make batching pay)" if predicted < 0 else "")
        + "."
        if predicted is not None
        else " The closed-loop model has too few measurements for a prediction."
    )
    implied, n = sweep.implied_batch_items, sweep.batch_items
    if predicted is not None and implied is not None and n is not None:
        model += (
            f" It takes every batch as full ({n} items); batched's own throughputs, from the lowest to the "
            f"highest per-item cost swept, grew its time per request as batches of {implied:.1f} items would."
        )
    status, cost = sweep.break_even, sweep.break_even_per_item_ms
    if status == CROSSED and cost is not None:
        share = (
            f", {cost / sweep.model_mean_ms * 100:.1f}% of the model's mean latency"
            if sweep.model_mean_ms
            else ""
        )
        n = sweep.batch_items
        batch = (
            f"; a full batch of {n} then costs {number(n * cost, '.0f', 'ms')} more than one call"
            if n is not None
            else ""
        )
        return (
            f"Batching stops paying at about {number(cost, '.2f', 'ms')} per item{share} (interpolated where "
            f"batched ÷ async falls through 1){batch}." + model
        )
    if status == PAYS_THROUGHOUT:
        return (
            f"Batching still paid at the highest per-item cost swept ({number(high, 'g', 'ms')}): the "
            "break-even is not within the range swept (it is above it)." + model
        )
    if status == NEVER_PAYS:
        return (
            f"Batching did not pay at any per-item cost swept, not even at {number(low, 'g', 'ms')}: the "
            "break-even is not within the range swept (below it, if there is one)." + model
        )
    if status == NO_CROSSING:
        return (
            "batched ÷ async does not fall through 1 as the per-item cost grows (it rises through it, or "
            "wanders around it: single measurements): the break-even is not within the range swept." + model
        )
    return "Too few measurements for a break-even." + model
