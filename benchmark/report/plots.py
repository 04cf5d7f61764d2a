"""The plots of a run: PNG files in ``<run>/plots/``, drawn from the summary and the run's series
(:class:`~benchmark.analysis.series.RunSeries`); no plot opens the run folder.

Every function returns the path it wrote, or None when the run holds no data for that plot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from benchmark.analysis.raw import MACHINE, OTHERS
from benchmark.analysis.series import CpuSeries, RunSeries
from benchmark.report.faults import fault_names, plot_name
from benchmark.report.figures import color, linspace, nan_if_none, save
from benchmark.report.plots_attribution import plot_fanout, plot_queue_waterfall, plot_waterfall
from benchmark.report.plots_batching import plot_batching
from benchmark.report.plots_faults import plot_fault_timeline
from benchmark.report.plots_openloop import plot_openloop
from benchmark.report.plots_queue import plot_burst, plot_queue_depth
from benchmark.report.plots_soak import plot_soak, plot_soak_p99
from benchmark.stats import percentiles
from benchmark.summary import ArchitectureSummary, Ramp, Summary, TimeSplit

SPLIT_COLORS = {
    "feature store": "#8da0cb",
    "model calls": "#fc8d62",
    "batched: wait for its batch": "#e78ac3",
    "rest (framework, HTTP, JSON)": "#b3b3b3",
    "queue: submit to task start": "#66c2a5",
    "queue: task end to client": "#a6d854",
}
SPLIT_SHORT = {  # the parts as a bar's annotation names them
    "feature store": "store",
    "batched: wait for its batch": "batch wait",
    "model calls": "models",
    "rest (framework, HTTP, JSON)": "rest",
    "queue: submit to task start": "queued",
    "queue: task end to client": "returned",
}
HIST_BINS = 60
TAIL_PERCENTILE = 99.5  # latency histograms stop here, so one slow outlier does not squash the rest

LINE_STYLES: dict[str, dict[str, str]] = {
    MACHINE: {"linestyle": "--", "color": "grey"},
    OTHERS: {"linestyle": ":", "color": "black"},
}


def plot_all(
    summary: Summary, series: RunSeries | None, out_dir: Path, problems: list[str] | None = None
) -> dict[str, Path]:
    """Every plot the run has data for, by name, written into ``out_dir``. Without ``series`` (the raw
    files are absent) only the plots of the summary are drawn. A plot that fails is left out and its error
    appended to ``problems`` (when given, else raised): the report of an odd, partial run must still be
    written."""
    plotters: dict[str, Callable[[], Path | None]] = {
        "ramp": lambda: plot_ramp(summary.architectures, out_dir),
        "time_split": lambda: plot_time_split(summary.architectures, out_dir),
        "openloop": lambda: plot_openloop(summary.architectures, out_dir),
        "waterfall": lambda: plot_waterfall(summary.attribution, out_dir),
        "queue_waterfall": lambda: plot_queue_waterfall(summary.attribution, out_dir),
        "fanout": lambda: plot_fanout(summary.attribution, out_dir),
        "batching": lambda: plot_batching(summary.attribution, out_dir),
        "soak_p99": lambda: plot_soak_p99(summary.soak, out_dir),
    }
    faults: dict[str, Callable[[], Path | None]] = {
        plot_name(fault): partial(plot_fault_timeline, summary.faults, fault, out_dir)
        for fault in fault_names(summary.faults)
    }
    plotters.update(faults)
    if series is not None:
        raw = series
        plotters = {
            "latency": lambda: plot_latency_distributions(summary.architectures, raw, out_dir),
            "ramp": plotters["ramp"],
            "cpu": lambda: plot_cpu(raw.sustained_cpu, out_dir),
            "time_split": plotters["time_split"],
            "openloop": plotters["openloop"],
            "waterfall": plotters["waterfall"],
            "queue_waterfall": plotters["queue_waterfall"],
            "fanout": plotters["fanout"],
            "batching": plotters["batching"],
            "soak_p99": plotters["soak_p99"],
            "queue_depth": lambda: plot_queue_depth(raw.queue_depth, out_dir),
            "burst": lambda: plot_burst(raw.burst, out_dir),
            "soak": lambda: plot_soak(raw.soak, out_dir),
            **faults,
        }
    written: dict[str, Path] = {}
    for name, plotter in plotters.items():
        try:
            path = plotter()
        except Exception as error:
            if problems is None:
                raise
            problems.append(f"{name}: {type(error).__name__}: {error}")
            continue
        if path is not None:
            written[name] = path
    return written


def _ideal_p50(data: ArchitectureSummary | None) -> float | None:
    return data.ideal.p50_ms if data and data.ideal else None


# --------------------------------------------------------------------------- latency distributions


def plot_latency_distributions(
    archs: dict[str, ArchitectureSummary], series: RunSeries, out_dir: Path
) -> Path | None:
    """Histograms of request latency, architectures overlaid: one panel per experiment (sequential timeit
    requests, one Locust user), each architecture's ideal p50 as a dashed line, its measured p50 solid."""
    panels = {
        title: {arch: values for arch, values in samples.items() if arch in archs and values}
        for title, samples in (
            ("Sequential requests (timeit)", series.timeit_latencies),
            ("One user (Locust)", series.one_user_latencies),
        )
    }
    panels = {title: samples for title, samples in panels.items() if samples}
    if not panels:
        return None
    fig = Figure(figsize=(10, 3.8 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (title, samples) in zip(axes, panels.items()):
        _latency_panel(ax, title, samples, {arch: _ideal_p50(archs.get(arch)) for arch in samples})
    fig.suptitle(
        f"Latency distribution: {' vs '.join(archs)} (dashed: ideal p50, the model calls alone)",
        fontsize="medium",
    )
    return save(fig, out_dir, "latency_distribution")


def _latency_panel(
    ax: Axes, title: str, samples: dict[str, list[float]], ideals: dict[str, float | None]
) -> None:
    every = [value for values in samples.values() for value in values]
    low, high = min(every), percentiles(every, (TAIL_PERCENTILE,))[f"p{TAIL_PERCENTILE:g}"]
    low = min([low, *[ideal for ideal in ideals.values() if ideal is not None]])
    margin = max((high - low) * 0.05, 0.5)
    bins = linspace(low - margin, high + margin, HIST_BINS + 1)
    for index, (arch, values) in enumerate(samples.items()):
        shown = [v for v in values if v <= bins[-1]]
        ax.hist(
            shown,
            bins=bins,
            weights=[100 / len(values)] * len(shown),
            alpha=0.45,
            color=color(arch, index),
            label=f"{arch} (n = {len(values):,})",
        )
        p50 = percentiles(values)["p50"]
        ax.axvline(p50, color=color(arch, index), linewidth=1.6, label=f"{arch} measured p50 {p50:.1f} ms")
        ideal = ideals.get(arch)
        if ideal is not None:
            ax.axvline(
                ideal,
                color=color(arch, index),
                linestyle="--",
                linewidth=1.6,
                label=f"{arch} ideal p50 {ideal:.1f} ms",
            )
    ax.set_title(title)
    ax.set_xlabel(f"latency (ms), up to the p{TAIL_PERCENTILE:g}")
    ax.set_ylabel("share of requests (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncols=2)


# --------------------------------------------------------------------------- ramp


def plot_ramp(archs: dict[str, ArchitectureSummary], out_dir: Path) -> Path | None:
    """Throughput and p95 latency against users, the breaking point marked with an ✕."""
    ramps = {arch: data.ramp for arch, data in archs.items() if data.ramp and data.ramp.steps}
    if not ramps:
        return None
    fig = Figure(figsize=(10, 7.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    for index, (arch, ramp) in enumerate(ramps.items()):
        one_user = archs[arch].one_user
        _ramp_lines(top, bottom, arch, ramp, color(arch, index), one_user.p95_ms if one_user else None)
    users = [step.users for ramp in ramps.values() for step in ramp.steps]
    if min(users) > 0 and max(users) / min(users) >= 16:
        bottom.set_xscale("log", base=2)
    ticks = sorted(set(users))
    bottom.set_xticks(ticks, [str(u) for u in ticks])
    bottom.minorticks_off()
    top.set_title("Throughput against users")
    top.set_ylabel("throughput (requests/s)")
    bottom.set_title("p95 latency against users (dotted: 2 × the 1-user p95, the latency limit)")
    bottom.set_ylabel("p95 latency (ms)")
    bottom.set_xlabel("concurrent users")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle("Load ramp (✕: breaking point)")
    return save(fig, out_dir, "ramp")


def _ramp_lines(
    top: Axes, bottom: Axes, arch: str, ramp: Ramp, tint: str, baseline_p95: float | None
) -> None:
    users = [step.users for step in ramp.steps]
    rps = [nan_if_none(step.rps) for step in ramp.steps]
    p95 = [nan_if_none(step.p95_ms) for step in ramp.steps]
    top.plot(users, rps, marker="o", color=tint, label=arch)
    bottom.plot(users, p95, marker="o", color=tint, label=arch)
    if baseline_p95:
        bottom.axhline(2 * baseline_p95, color=tint, linestyle=":", linewidth=1.2)
    index = ramp.breaking_point.step_index if ramp.breaking_point else None
    if index is not None and 0 <= index < len(users):
        label = f"{arch} breaks at {users[index]} users"
        for ax, values in ((top, rps), (bottom, p95)):
            ax.plot(
                [users[index]],
                [values[index]],
                marker="X",
                markersize=14,
                color=tint,
                markeredgecolor="black",
                linestyle="none",
                label=label,
            )


# --------------------------------------------------------------------------- CPU


def plot_cpu(cpu: dict[str, CpuSeries], out_dir: Path) -> Path | None:
    """CPU of each sampled process during the sustained phase, one panel per architecture."""
    series = {arch: data for arch, data in cpu.items() if data.lines}
    if not series:
        return None
    fig = Figure(figsize=(10, 3.6 * len(series)), layout="constrained")
    axes = fig.subplots(len(series), 1, squeeze=False)[:, 0]
    for ax, (arch, data) in zip(axes, series.items()):
        for name, line in sorted(data.lines.items()):
            style = LINE_STYLES.get(name, {})
            # psutil's value is the average since the previous sample: it holds over the interval before t
            ax.step(line.times, line.values, where="pre", label=name, linewidth=1.4, **style)
        if data.warmup_end_s is not None and data.warmup_end_s > 0:
            ax.axvspan(0, data.warmup_end_s, color="grey", alpha=0.15, label="warm-up (not counted)")
        ax.set_title(f"{arch}: CPU per process, sustained load")
        ax.set_xlabel("time since the start of the phase (s)")
        ax.set_ylabel("CPU (% of one core)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return save(fig, out_dir, "cpu_sustained")


# --------------------------------------------------------------------------- time split


def plot_time_split(archs: dict[str, ArchitectureSummary], out_dir: Path) -> Path | None:
    """Stacked bars of a request's mean server time (from Server-Timing), the ideal mean as a marker."""
    splits = {arch: data.time_split for arch, data in archs.items() if data.time_split}
    if not splits:
        return None
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax = fig.subplots()
    names = list(splits)
    parts = _split_parts(split for split in splits.values() if split is not None)
    bottoms = [0.0] * len(names)
    for label, values in parts.items():
        ax.bar(names, values, bottom=bottoms, color=SPLIT_COLORS[label], label=label, width=0.55)
        bottoms = [b + v for b, v in zip(bottoms, values)]
    for x, total in enumerate(bottoms):  # the thin segments are hard to see: say their values
        named = [f"{SPLIT_SHORT[label]} {values[x]:.1f}" for label, values in parts.items() if values[x] > 0]
        detail = "\n".join(" · ".join(named[i : i + 2]) for i in range(0, len(named), 2))  # two a line
        ax.annotate(
            f"{total:.1f} ms\n{detail}",
            (x, total),
            textcoords="offset points",
            xytext=(0, 4),
            ha="center",
            fontsize="x-small",
        )
    ideals = [ideal.mean_ms if (ideal := archs[arch].ideal) else None for arch in names]
    shown = [(x, ideal) for x, ideal in enumerate(ideals) if ideal is not None]
    if shown:
        ax.hlines(
            [v for _, v in shown],
            [x - 0.32 for x, _ in shown],
            [x + 0.32 for x, _ in shown],
            colors="black",
            linewidth=2.5,
            label="ideal mean (model calls alone)",
        )
    ax.set_ylim(0, max(bottoms + [v for _, v in shown]) * 1.3)
    ax.set_title("Where a request's server time goes (mean over sequential requests)")
    ax.set_xlabel("architecture")
    ax.set_ylabel("mean time per request (ms)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=2)
    return save(fig, out_dir, "time_split")


def _split_parts(splits: Iterable[TimeSplit]) -> dict[str, list[float]]:
    splits = list(splits)
    parts = {"feature store": [s.feature_store_ms for s in splits]}
    if any(s.batch_wait_ms is not None for s in splits):  # batched: its wait before the batch call
        parts["batched: wait for its batch"] = [s.batch_wait_ms or 0.0 for s in splits]
    parts["model calls"] = [s.models_ms for s in splits]
    parts["rest (framework, HTTP, JSON)"] = [s.other_ms for s in splits]
    if any(s.queued_ms is not None for s in splits):  # the queue's own time, around its task
        parts["queue: submit to task start"] = [s.queued_ms or 0.0 for s in splits]
        parts["queue: task end to client"] = [s.returned_ms or 0.0 for s in splits]
    return parts
