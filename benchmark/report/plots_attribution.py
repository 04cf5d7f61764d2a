"""The attribution's plots: the waterfall from seed-faithful to tuned, the queue's own waterfall, and the
fan-out against the ideal."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from benchmark.report.figures import color, nan_if_none, save
from benchmark.summary import Attribution, Level, QueueWaterfall, Spread, StudyEntry, WaterfallStep

BETTER, WORSE, LEVEL = "#1b9e77", "#d95f02", "#8c8c8c"  # waterfall: a step that helps, that hurts, a level
LABEL_WIDTH = 18  # waterfall: factor names are wrapped at this many characters (and slanted)
Bar = Level | WaterfallStep  # what a waterfall bar shows: p50_ms, max_rps and their spread


def plot_waterfall(attribution: Attribution | None, out_dir: Path) -> Path | None:
    """Per architecture (rows), p50 at one user and req/s (columns): the seed-faithful level, each factor's
    change as a floating bar (green: better, orange: worse), the tuned level. Error bars: min–max over the
    repetitions of each step."""
    if attribution is None:
        return None
    archs = [arch for arch in attribution.architectures if _waterfall_levels(attribution, arch)]
    if not archs:
        return None
    fig = Figure(figsize=(13, 4.6 * len(archs)), layout="constrained")
    axes = fig.subplots(len(archs), 2, squeeze=False)
    metrics = (("p50_ms", "p50 at 1 user (ms)", True), ("max_rps", "req/s at {users} users", False))
    users = attribution.load_users or "N"
    for row, arch in zip(axes, archs):
        levels = _waterfall_levels(attribution, arch)
        for ax, (key, title, lower_is_better) in zip(row, metrics):
            _waterfall_panel(ax, levels, key, lower_is_better)
            ax.set_title(f"{arch}: {title.format(users=users)}")
    legend = [
        Patch(color=LEVEL, label="level"),
        Patch(color=BETTER, label="the factor helped"),
        Patch(color=WORSE, label="the factor hurt"),
    ]
    fig.legend(handles=legend, fontsize="small", loc="outside lower center", ncols=3)
    fig.suptitle("From seed-faithful to tuned, one factor at a time (error bars: min–max over repetitions)")
    return save(fig, out_dir, "attribution_waterfall")


def plot_queue_waterfall(attribution: Attribution | None, out_dir: Path) -> Path | None:
    """The queue's waterfall: p50 at one user (dashed: the tuned queue's ideal p50) and completed tasks/s,
    from seed-faithful through each factor to tuned, as :func:`plot_waterfall` draws them."""
    queue = attribution.queue if attribution else None
    if attribution is None or queue is None or queue.baseline is None:
        return None
    levels = queue_levels(queue)
    fig = Figure(figsize=(13, 5.2), layout="constrained")
    latency, throughput = fig.subplots(1, 2)
    _waterfall_panel(latency, levels, "p50_ms", lower_is_better=True)
    _waterfall_panel(throughput, levels, "max_rps", lower_is_better=False)
    legend = [
        Patch(color=LEVEL, label="level"),
        Patch(color=BETTER, label="the factor helped"),
        Patch(color=WORSE, label="the factor hurt"),
    ]
    if queue.ideal_p50_ms is not None:
        latency.axhline(queue.ideal_p50_ms, color="black", linestyle="--", linewidth=1)
        latency.annotate(
            f"ideal {queue.ideal_p50_ms:.1f}",
            (-0.45, queue.ideal_p50_ms),
            textcoords="offset points",
            xytext=(0, -11),
            ha="left",
            fontsize="small",
        )
    latency.set_title("queue: p50 at 1 user, submit to result (ms)")
    throughput.set_title(f"queue: completed tasks/s at {attribution.load_users or 'N'} users")
    fig.legend(handles=legend, fontsize="small", loc="outside lower center", ncols=3)
    fig.suptitle("The queue from seed-faithful to tuned, one factor at a time (error bars: min–max)")
    return save(fig, out_dir, "attribution_queue_waterfall")


def queue_levels(queue: QueueWaterfall) -> list[tuple[str, Bar | None]]:
    """(label, bar) from the seed-faithful queue through each factor to the tuned one."""
    levels: list[tuple[str, Bar | None]] = [("seed-faithful", queue.baseline)]
    levels += [("+ " + (step.factor or f"step {step.step}"), step) for step in queue.steps]
    return levels + [("tuned", queue.tuned)]


def _waterfall_levels(attribution: Attribution, arch: str) -> list[tuple[str, Bar | None]]:
    """(label, bar) from seed-faithful through each factor to tuned."""
    steps = [step for step in attribution.steps if step.architecture == arch]
    baseline = (attribution.baseline or {}).get(arch)
    tuned = (attribution.tuned or {}).get(arch)
    if baseline is None and not steps:
        return []
    levels: list[tuple[str, Bar | None]] = [("seed-faithful", baseline)]
    levels += [("+ " + (step.factor or f"step {step.step}"), step) for step in steps]
    return levels + [("tuned", tuned)]


def _value(bar: Bar | None, key: str) -> tuple[float | None, Spread | None]:
    """The bar's p50 (``key`` "p50_ms") or req/s ("max_rps") and its spread."""
    if bar is None:
        return None, None
    if key == "p50_ms":
        return bar.p50_ms, bar.spread.p50_ms
    return bar.max_rps, bar.spread.max_rps


def _waterfall_panel(ax: Axes, levels: list[tuple[str, Bar | None]], key: str, lower_is_better: bool) -> None:
    previous: float | None = None
    for x, (_, bar) in enumerate(levels):
        value, spread = _value(bar, key)
        if value is None:
            previous = None
            continue
        total = x in (0, len(levels) - 1) or previous is None
        bottom = 0.0 if total or previous is None else previous
        helps = value < bottom if lower_is_better else value > bottom
        tint = LEVEL if total or value == bottom else BETTER if helps else WORSE
        ax.bar(x, value - bottom, bottom=bottom, color=tint, width=0.65, edgecolor="black", linewidth=0.5)
        _range_bar(ax, x, value, spread)
        text = f"{value:.1f}" if total else f"{value - bottom:+.1f}"
        ax.annotate(
            text,
            (x, max(value, bottom)),
            textcoords="offset points",
            xytext=(0, 3),
            ha="center",
            fontsize="small",
        )
        if x + 1 < len(levels):  # the level carries on to the next bar
            ax.hlines(value, x + 0.33, x + 0.67, colors="black", linestyles=":", linewidth=1)
        previous = value
    ax.set_xticks(
        range(len(levels)),
        [textwrap.fill(label, LABEL_WIDTH) for label, _ in levels],
        fontsize="small",
        rotation=30,
        ha="right",
        rotation_mode="anchor",
    )
    ax.set_ylim(0, ax.get_ylim()[1] * 1.08)
    ax.grid(axis="y", alpha=0.3)


def _range_bar(ax: Axes, x: float, value: float, spread: Spread | None) -> None:
    """The min–max range of the repetitions around ``value`` (their mean)."""
    if spread is None or spread.n < 2 or spread.min is None or spread.max is None:
        return
    low, high = value - spread.min, spread.max - value
    ax.errorbar(
        [x],
        [value],
        yerr=[[max(low, 0.0)], [max(high, 0.0)]],
        fmt="none",
        ecolor="black",
        elinewidth=1,
        capsize=3,
    )


# --------------------------------------------------------------------------- fan-out


def plot_fanout(attribution: Attribution | None, out_dir: Path) -> Path | None:
    """p50 at one user and req/s against the number of model calls, measured (solid) and ideal (dashed:
    the sum of the calls for sequential calls, their maximum for concurrent ones)."""
    if attribution is None:
        return None
    entries = [
        e
        for e in attribution.fanout
        if e.num_models is not None and (e.p50_ms is not None or e.rps is not None)
    ]
    if not entries:
        return None
    by_arch: dict[str, list[StudyEntry]] = {}
    for entry in sorted(entries, key=lambda e: e.num_models or 0):
        by_arch.setdefault(entry.architecture, []).append(entry)
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    latency, throughput = fig.subplots(1, 2)
    for index, (arch, series) in enumerate(by_arch.items()):
        tint = color(arch, index)
        models = [e.num_models for e in series]
        latency.plot(
            models, _values(e.p50_ms for e in series), marker="o", color=tint, label=f"{arch} measured p50"
        )
        combine = "maximum" if series[0].concurrent else "sum"
        latency.plot(
            models,
            _values(e.ideal_p50_ms for e in series),
            linestyle="--",
            color=tint,
            label=f"{arch} ideal p50 ({combine} of the calls)",
        )
        throughput.plot(models, _values(e.rps for e in series), marker="o", color=tint, label=arch)
    ticks = sorted({e.num_models for e in entries if e.num_models is not None})
    users = attribution.load_users or "N"
    for ax, title, ylabel in (
        (latency, "p50 at 1 user", "latency (ms)"),
        (throughput, f"throughput at {users} users", "requests/s"),
    ):
        if len(ticks) > 1 and ticks[0] > 0 and ticks[-1] / ticks[0] >= 4:
            ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_title(title)
        ax.set_xlabel("model calls per request (NUM_MODELS)")
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle("Fan-out: sequential (sync) against concurrent (async) model calls")
    return save(fig, out_dir, "attribution_fanout")


def _values(values: Iterable[float | None]) -> list[float]:
    return [nan_if_none(value) for value in values]
