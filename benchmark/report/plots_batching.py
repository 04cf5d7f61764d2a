"""The batching study's plot: the grid (a lone request's p50 cost against the throughput gained over async,
one point per BATCH_MAX_WAIT_MS × BATCH_MAX_SIZE) and the break-even curve (batched ÷ async against the
per-item cost, measured and as the closed-loop model predicts)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from benchmark.report.figures import color, linspace, nan_if_none, save
from benchmark.summary import Attribution, BatchingPoint, BatchingSweep

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # one per BATCH_MAX_SIZE


def plot_batching(attribution: Attribution | None, out_dir: Path) -> Path | None:
    """Two panels: the grid's points (x: p50 cost at one user, y: batched ÷ async req/s; colour by wait,
    marker by size; the run's own point ringed) and the break-even curve. None without a measured ratio."""
    sweep = attribution.batching if attribution else None
    if sweep is None:
        return None
    grid = [p for p in sweep.grid if p.p50_cost_ms is not None and p.throughput_ratio is not None]
    curve = [p for p in sweep.per_item if p.per_item_ms is not None and p.throughput_ratio is not None]
    if not grid and not curve:
        return None
    fig = Figure(figsize=(13, 5.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    _grid_panel(left, grid, sweep.load_users)
    _curve_panel(right, sweep, curve)
    fig.suptitle("Batching against async: the latency a lone request pays, the throughput the load gains")
    return save(fig, out_dir, "attribution_batching")


def _grid_panel(ax: Axes, grid: list[BatchingPoint], users: int | None) -> None:
    waits = sorted({p.wait_ms for p in grid if p.wait_ms is not None})
    sizes = sorted({p.max_size for p in grid if p.max_size is not None})
    cmap = color("batched")
    for point in grid:
        assert point.p50_cost_ms is not None and point.throughput_ratio is not None
        shade = (
            0.35 + 0.65 * (waits.index(point.wait_ms) / max(len(waits) - 1, 1))
            if point.wait_ms in waits
            else 1
        )
        marker = MARKERS[sizes.index(point.max_size) % len(MARKERS)] if point.max_size in sizes else "o"
        ax.scatter(
            [point.p50_cost_ms],
            [point.throughput_ratio],
            marker=marker,
            s=70,
            color=cmap,
            alpha=shade,
            edgecolors="black" if point.run_batch else "none",
            linewidths=1.5,
            zorder=3,
        )
        mark = " (yours)" if point.yours_batch else " (default)" if point.run_batch else ""
        ax.annotate(
            f"{point.wait_ms:g} ms / {point.max_size}{mark}",
            (point.p50_cost_ms, point.throughput_ratio),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize="x-small",
        )
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1)
    ax.axvline(0.0, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("p50 cost at 1 user: batched − async (ms)")
    ax.set_ylabel(f"throughput gain: batched ÷ async req/s at {users or 'N'} users")
    ax.set_title("The grid, wait / size (darker: a longer wait; ringed: the run's own)")
    ax.grid(alpha=0.3)


def _curve_panel(ax: Axes, sweep: BatchingSweep, curve: list[BatchingPoint]) -> None:
    costs = [p.per_item_ms or 0.0 for p in curve]
    ax.plot(
        costs,
        [nan_if_none(p.throughput_ratio) for p in curve],
        marker="o",
        color=color("batched"),
        label="measured",
    )
    modelled = [p for p in sweep.per_item if p.per_item_ms is not None and p.predicted_ratio]
    xs = [p.per_item_ms or 0.0 for p in modelled]
    if len(modelled) >= 2 and max(xs) > min(xs):
        # the model's 1 ÷ ratio is linear in the per-item cost (the loop's time per request): a smooth curve
        (x0, r0), (x1, r1) = (xs[0], modelled[0].predicted_ratio), (xs[-1], modelled[-1].predicted_ratio)
        assert r0 and r1
        slope = (1 / r1 - 1 / r0) / (x1 - x0)
        line = linspace(x0, x1, 60)
        ratios = [
            1 / (1 / r0 + slope * (x - x0)) if 1 / r0 + slope * (x - x0) > 0 else float("nan") for x in line
        ]
        ax.plot(line, ratios, linestyle="--", color="black", label="closed-loop model")
    span = costs + xs
    ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    for value, style, name in (
        (sweep.break_even_per_item_ms, "-", "measured"),
        (sweep.predicted_break_even_per_item_ms, "--", "predicted"),
    ):
        if value is not None and span and min(span) <= value <= max(span):
            ax.axvline(value, color="grey", linestyle=style, linewidth=1)
            ax.annotate(
                f"{name} break-even {value:.2f} ms",
                (value, 1.0),
                textcoords="offset points",
                xytext=(4, 6 if name == "measured" else -12),
                fontsize="x-small",
            )
    ax.set_xlabel("MODEL_BATCH_PER_ITEM_MS (ms)")
    ax.set_ylabel("batched ÷ async req/s")
    ax.set_title(f"Where batching stops paying (batches of up to {sweep.batch_items or 'n'})")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if curve or len(modelled) >= 2:
        ax.legend(fontsize="small")
