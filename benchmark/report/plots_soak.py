"""The soak's plots: every process's RSS, descriptors and TCP connections over the soak (one row per
architecture), and the p50 and p99 of every minute."""

from __future__ import annotations

from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from benchmark.analysis.soak import SoakSeries
from benchmark.report.figures import color, nan_if_none, save
from benchmark.soak.growth import Windows
from benchmark.summary import Soak

PANELS = {"rss_mb": "RSS (MB)", "fds": "open descriptors", "connections": "TCP connections"}


def plot_soak(series: dict[str, SoakSeries], out_dir: Path) -> Path | None:
    """One row per architecture, one column per metric (:data:`PANELS`), one line per process; shaded: the
    warm-up (grey) and the first and last minute compared (green)."""
    rows = {arch: data for arch, data in series.items() if data.processes}
    if not rows:
        return None
    fig = Figure(figsize=(15, 3.6 * len(rows) + 0.6), layout="constrained")
    axes = fig.subplots(len(rows), len(PANELS), squeeze=False)
    for row, (arch, data) in enumerate(rows.items()):
        for col, (metric, title) in enumerate(PANELS.items()):
            ax = axes[row][col]
            for process in data.processes:
                ax.plot(
                    [t / 60 for t in process.times],
                    process.values[metric],
                    label=process.label,
                    linewidth=1.2,
                )
            _shade(ax, data.windows)
            ax.set_title(f"{arch}: {title}")
            ax.set_xlabel("minutes since the soak's start")
            ax.grid(alpha=0.3)
            if metric != "rss_mb":
                ax.set_ylim(bottom=0)
        axes[row][0].legend(fontsize="x-small", loc="best")
    fig.suptitle("Soak: every process of each architecture's path over time")
    return save(fig, out_dir, "soak")


def _shade(ax: Axes, windows: Windows) -> None:
    ax.axvspan(0, windows.warmup_s / 60, color="grey", alpha=0.15, linewidth=0)
    for low, high in (windows.first, windows.last):
        ax.axvspan(low / 60, high / 60, color="#1b9e77", alpha=0.10, linewidth=0)


def plot_soak_p99(soak: Soak | None, out_dir: Path) -> Path | None:
    """Above: p99 (solid) and p50 (dashed) of the requests scheduled in each minute, per architecture (log
    scale: a stall of seconds and a steady 100 ms both show). Below: the machine's CPU (solid) and that of
    the processes outside the run (dotted) in each minute."""
    archs = {arch: data for arch, data in (soak.architectures.items() if soak else []) if data.minutes}
    if not archs:
        return None
    with_cpu = any(w.machine_cpu_percent is not None for data in archs.values() for w in data.minutes)
    fig = Figure(figsize=(10, 7 if with_cpu else 4.8), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1)) if with_cpu else [fig.subplots()]
    latency = axes[0]
    for index, (arch, data) in enumerate(archs.items()):
        tint = color(arch, index)
        middles = [(w.start_s + w.end_s) / 2 / 60 for w in data.minutes]
        lines = [
            (latency, "p99_ms", "-", "o", f"{arch} p99"),
            (latency, "p50_ms", "--", "", f"{arch} p50"),
        ]
        if with_cpu:
            lines += [
                (axes[1], "machine_cpu_percent", "-", "o", f"{arch}: machine"),
                (axes[1], "others_cpu_percent", ":", "", f"{arch}: outside the run"),
            ]
        for ax, field, style, marker, label in lines:
            values = [nan_if_none(getattr(w, field)) for w in data.minutes]
            ax.plot(middles, values, linestyle=style, marker=marker, color=tint, label=label)
    latency.set_title("Soak: latency of each minute (from the scheduled send time)")
    latency.set_ylabel("latency (ms, log scale)")
    latency.set_yscale("log")
    if with_cpu:
        axes[1].set_ylabel("CPU (% of one core)")
        axes[1].set_ylim(bottom=0)
    axes[-1].set_xlabel("minutes since the soak's start")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small", ncols=2)
    return save(fig, out_dir, "soak_p99")
