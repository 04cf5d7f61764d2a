"""The queue's plots: its depth during each load phase, and the burst (results over time, depth)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from benchmark.analysis.series import BurstSeries, Line
from benchmark.report.figures import color, save


def plot_queue_depth(depth: dict[str, Line], out_dir: Path) -> Path | None:
    """The broker's queue depth against time during each load phase of the queue, one line per phase."""
    if not depth:
        return None
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax = fig.subplots()
    for phase, line in depth.items():
        ax.step(line.times, line.values, where="post", label=phase.replace("_", " "), linewidth=1.4)
    ax.set_title("Queue depth: tasks waiting in the broker, per load phase")
    ax.set_xlabel("time since the start of the phase (s)")
    ax.set_ylabel("waiting tasks")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save(fig, out_dir, "queue_depth")


def plot_burst(burst: BurstSeries | None, out_dir: Path) -> Path | None:
    """Left: results available over time, per burst (the queue at each worker concurrency, sync, async).
    Right: the queue's depth over time, per worker concurrency."""
    if burst is None or not burst.finished:
        return None
    fig = Figure(figsize=(12, 4.6), layout="constrained")
    done_ax, depth_ax = fig.subplots(1, 2)
    shades = queue_shades(list(burst.depth) or [k for k in burst.finished if k.startswith("queue")])
    for index, (label, line) in enumerate(burst.finished.items()):
        arch = label.split(" ")[0]
        tint = shades.get(label) or color(arch, index)
        done_ax.step(line.times, line.values, where="post", label=label, linewidth=1.5, color=tint)
    for label, line in burst.depth.items():
        depth_ax.step(
            line.times, line.values, where="post", label=label, linewidth=1.5, color=shades.get(label)
        )
    done_ax.set_title("Results available over time")
    done_ax.set_ylabel("results (tasks or answers)")
    depth_ax.set_title("Queue depth (tasks waiting in the broker)")
    depth_ax.set_ylabel("waiting tasks")
    for ax in (done_ax, depth_ax):
        ax.set_xlabel("time since the burst started (s)")
        ax.set_ylim(bottom=0)
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    fig.suptitle(f"Burst: {burst.tasks} requests at once")
    return save(fig, out_dir, "burst")


QUEUE_SHADES = ("#a1d99b", "#74c476", "#41ab5d", "#238b45", "#006d2c", "#00441b")  # light → dark green


def queue_shades(labels: list[str]) -> dict[str, str]:
    """The queue's bursts in greens, darker with more worker slots (sync and async keep their colours,
    so no queue curve is mistaken for theirs)."""
    return {label: QUEUE_SHADES[min(i, len(QUEUE_SHADES) - 1)] for i, label in enumerate(labels)}
