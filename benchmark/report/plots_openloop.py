"""The open-loop plot: latency against offered load, every architecture on one chart (the hockey stick)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from benchmark.report.figures import color, nan_if_none, save
from benchmark.summary import ArchitectureSummary


def plot_openloop(archs: dict[str, ArchitectureSummary], out_dir: Path) -> Path | None:
    """p99 (solid) and p50 (dashed) from the scheduled send time against the offered rate, per
    architecture; dotted: its p99 limit; hollow markers: rates the generator did not hold."""
    sweeps = {arch: data.openloop for arch, data in archs.items() if data.openloop and data.openloop.rates}
    if not sweeps:
        return None
    fig = Figure(figsize=(10, 5.5), layout="constrained")
    ax = fig.subplots()
    for index, (arch, sweep) in enumerate(sweeps.items()):
        tint = color(arch, index)
        rates = [rate.offered_rps for rate in sweep.rates]
        ax.plot(
            rates, [nan_if_none(r.p99_ms) for r in sweep.rates], marker="o", color=tint, label=f"{arch} p99"
        )
        ax.plot(
            rates,
            [nan_if_none(r.p50_ms) for r in sweep.rates],
            linestyle="--",
            color=tint,
            label=f"{arch} p50",
        )
        missed = [r for r in sweep.rates if r.held is False and r.p99_ms is not None]
        if missed:
            ax.plot(
                [r.offered_rps for r in missed],
                [nan_if_none(r.p99_ms) for r in missed],
                marker="o",
                markersize=11,
                markerfacecolor="none",
                color=tint,
                linestyle="none",
                label=f"{arch}: generator late",
            )
        if sweep.p99_limit_ms:
            ax.axhline(sweep.p99_limit_ms, color=tint, linestyle=":", linewidth=1.2)
    ax.set_yscale("log")
    ax.set_title("Open loop: latency from the scheduled send time against the offered rate")
    ax.set_xlabel("offered rate (requests or tasks per second)")
    ax.set_ylabel("latency (ms, log scale)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small", ncols=2)
    return save(fig, out_dir, "openloop")
