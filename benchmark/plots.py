"""The plots of a run: PNG files in ``<run>/plots/``, drawn from the summary and the raw files.

Every function returns the path it wrote, or None when the run holds no data for that plot. Figures are
made without pyplot (no global state, nothing kept open), on the Agg backend (no display needed).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.axes import Axes  # noqa: E402  (after the backend is chosen)
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from benchmark import analysis  # noqa: E402
from benchmark.stats import percentiles  # noqa: E402

Summary = dict[str, Any]
COLORS = {"sync": "#d95f02", "async": "#1b6ec2", "queue": "#1b9e77"}
FALLBACK_COLORS = ("#7570b3", "#e7298a", "#66a61e")
SPLIT_COLORS = {
    "feature store": "#8da0cb",
    "model calls": "#fc8d62",
    "rest (framework, HTTP, JSON)": "#b3b3b3",
}
BETTER, WORSE, LEVEL = "#1b9e77", "#d95f02", "#8c8c8c"  # waterfall: a step that helps, that hurts, a level
LABEL_WIDTH = 18  # waterfall: factor names are wrapped at this many characters (and slanted)
DPI = 110
HIST_BINS = 60
TAIL_PERCENTILE = 99.5  # latency histograms stop here, so one slow outlier does not squash the rest


def plot_all(run_dir: Path, summary: Summary, problems: list[str] | None = None) -> dict[str, Path]:
    """Every plot the run has data for, by name. A plot that fails is left out and its error appended to
    ``problems`` (when given, else raised): the report of an odd, partial run must still be written."""
    plotters: dict[str, Callable[[Path, Summary], Path | None]] = {
        "latency": plot_latency_distributions,
        "ramp": plot_ramp,
        "cpu": plot_cpu,
        "time_split": plot_time_split,
        "waterfall": plot_waterfall,
        "fanout": plot_fanout,
        "queue_depth": plot_queue_depth,
        "burst": plot_burst,
    }
    written: dict[str, Path] = {}
    for name, plotter in plotters.items():
        try:
            path = plotter(Path(run_dir), summary)
        except Exception as error:  # noqa: BLE001 - one broken plot must not cost the whole report
            if problems is None:
                raise
            problems.append(f"{name}: {type(error).__name__}: {error}")
            continue
        if path is not None:
            written[name] = path
    return written


def color(arch: str, index: int = 0) -> str:
    return COLORS.get(arch, FALLBACK_COLORS[index % len(FALLBACK_COLORS)])


def _archs(summary: Summary) -> dict[str, Summary]:
    return summary.get("architectures") or {}


def _save(fig: Figure, run_dir: Path, name: str) -> Path:
    folder = Path(run_dir) / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=DPI)
    return path


# --------------------------------------------------------------------------- latency distributions


def plot_latency_distributions(run_dir: Path, summary: Summary) -> Path | None:
    """Histograms of request latency, architectures overlaid: one panel per experiment (sequential timeit
    requests, one Locust user), each architecture's ideal p50 as a dashed line, its measured p50 solid."""
    panels = {
        title: samples
        for title, samples in (
            ("Sequential requests (timeit)", _timeit_latencies(run_dir, summary)),
            ("One user (Locust)", _one_user_latencies(run_dir, summary)),
        )
        if samples
    }
    if not panels:
        return None
    fig = Figure(figsize=(10, 3.8 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (title, samples) in zip(axes, panels.items()):
        _latency_panel(ax, title, samples, summary)
    fig.suptitle("Latency distribution: sync vs async (dashed: ideal p50, the model calls alone)")
    return _save(fig, run_dir, "latency_distribution")


def _timeit_latencies(run_dir: Path, summary: Summary) -> dict[str, list[float]]:
    found = {arch: analysis.ok_latencies(analysis.read_timeit(run_dir, arch)) for arch in _archs(summary)}
    return {arch: values for arch, values in found.items() if values}


def _one_user_latencies(run_dir: Path, summary: Summary) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for arch in _archs(summary):
        steps = analysis.read_schedule(run_dir, "one_user", arch)
        if not steps:
            continue
        requests = analysis.in_window(analysis.read_requests(run_dir, "one_user", arch), steps[0])
        values = [request.latency_ms for request in requests if request.ok]
        if values:
            found[arch] = values
    return found


def _latency_panel(ax: Axes, title: str, samples: dict[str, list[float]], summary: Summary) -> None:
    every = [value for values in samples.values() for value in values]
    low, high = min(every), percentiles(every, (TAIL_PERCENTILE,))[f"p{TAIL_PERCENTILE:g}"]
    ideals = [_get(_archs(summary), arch, "ideal", "p50_ms") for arch in samples]
    low = min([low, *[ideal for ideal in ideals if ideal is not None]])
    margin = max((high - low) * 0.05, 0.5)
    bins = _linspace(low - margin, high + margin, HIST_BINS + 1)
    for index, (arch, values) in enumerate(samples.items()):
        shown = [v for v in values if v <= bins[-1]]
        ax.hist(shown, bins=bins, weights=[100 / len(values)] * len(shown), alpha=0.45,
                color=color(arch, index), label=f"{arch} (n = {len(values):,})")
        p50 = percentiles(values)["p50"]
        ax.axvline(p50, color=color(arch, index), linewidth=1.6, label=f"{arch} measured p50 {p50:.1f} ms")
        ideal = _get(_archs(summary), arch, "ideal", "p50_ms")
        if ideal is not None:
            ax.axvline(ideal, color=color(arch, index), linestyle="--", linewidth=1.6,
                       label=f"{arch} ideal p50 {ideal:.1f} ms")
    ax.set_title(title)
    ax.set_xlabel(f"latency (ms), up to the p{TAIL_PERCENTILE:g}")
    ax.set_ylabel("share of requests (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncols=2)


def _linspace(low: float, high: float, count: int) -> list[float]:
    step = (high - low) / (count - 1)
    return [low + i * step for i in range(count)]


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


# --------------------------------------------------------------------------- ramp


def plot_ramp(run_dir: Path, summary: Summary) -> Path | None:
    """Throughput and p95 latency against users, the breaking point marked with an ✕."""
    ramps = {arch: data["ramp"] for arch, data in _archs(summary).items() if _get(data, "ramp", "steps")}
    if not ramps:
        return None
    fig = Figure(figsize=(10, 7.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    for index, (arch, ramp) in enumerate(ramps.items()):
        baseline_p95 = _get(_archs(summary), arch, "one_user", "p95_ms")
        _ramp_lines(top, bottom, arch, ramp, color(arch, index), baseline_p95)
    users = [step["users"] for ramp in ramps.values() for step in ramp["steps"]]
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
    return _save(fig, run_dir, "ramp")


def _ramp_lines(
    top: Axes, bottom: Axes, arch: str, ramp: Summary, tint: str, baseline_p95: float | None
) -> None:
    steps = ramp["steps"]
    users = [step["users"] for step in steps]
    rps = [step["rps"] if step["rps"] is not None else float("nan") for step in steps]
    p95 = [step["p95_ms"] if step["p95_ms"] is not None else float("nan") for step in steps]
    top.plot(users, rps, marker="o", color=tint, label=arch)
    bottom.plot(users, p95, marker="o", color=tint, label=arch)
    if baseline_p95:
        bottom.axhline(2 * baseline_p95, color=tint, linestyle=":", linewidth=1.2)
    index = _get(ramp, "breaking_point", "step_index")
    if isinstance(index, int) and 0 <= index < len(steps):
        label = f"{arch} breaks at {users[index]} users"
        for ax, values in ((top, rps), (bottom, p95)):
            ax.plot([users[index]], [values[index]], marker="X", markersize=14, color=tint,
                    markeredgecolor="black", linestyle="none", label=label)


# --------------------------------------------------------------------------- CPU


def plot_cpu(run_dir: Path, summary: Summary) -> Path | None:
    """CPU of each sampled process during the sustained phase, one panel per architecture."""
    series = {arch: _cpu_series(run_dir, arch) for arch in _archs(summary)}
    series = {arch: data for arch, data in series.items() if data[0]}
    if not series:
        return None
    fig = Figure(figsize=(10, 3.6 * len(series)), layout="constrained")
    axes = fig.subplots(len(series), 1, squeeze=False)[:, 0]
    for ax, (arch, (lines, warmup_end)) in zip(axes, series.items()):
        for name, (times, cpu) in sorted(lines.items()):
            style = {"linestyle": "--", "color": "grey"} if name == analysis.MACHINE else {}
            # psutil's value is the average since the previous sample: it holds over the interval before t
            ax.step(times, cpu, where="pre", label=name, linewidth=1.4, **style)
        if warmup_end is not None and warmup_end > 0:
            ax.axvspan(0, warmup_end, color="grey", alpha=0.15, label="warm-up (not counted)")
        ax.set_title(f"{arch}: CPU per process, sustained load")
        ax.set_xlabel("time since the start of the phase (s)")
        ax.set_ylabel("CPU (% of one core)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return _save(fig, run_dir, "cpu_sustained")


def _cpu_series(run_dir: Path, arch: str) -> tuple[dict[str, tuple[list[float], list[float]]], float | None]:
    samples = analysis.read_resources(run_dir / "resources" / f"sustained_{arch}.csv")
    if not samples:
        return {}, None
    steps = analysis.read_schedule(run_dir, "sustained", arch)
    origin = steps[0].start if steps else samples[0].t
    lines: dict[str, tuple[list[float], list[float]]] = {}
    for sample in samples:
        times, cpu = lines.setdefault(sample.name, ([], []))
        times.append(sample.t - origin)
        cpu.append(sample.cpu_percent)
    return lines, steps[0].warmup_s if steps else None


# --------------------------------------------------------------------------- time split


def plot_time_split(run_dir: Path, summary: Summary) -> Path | None:
    """Stacked bars of a request's mean server time (from Server-Timing), the ideal mean as a marker."""
    splits = {arch: data["time_split"] for arch, data in _archs(summary).items() if data.get("time_split")}
    if not splits:
        return None
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax = fig.subplots()
    names = list(splits)
    parts = _split_parts(splits.values())
    bottoms = [0.0] * len(names)
    for label, values in parts.items():
        ax.bar(names, values, bottom=bottoms, color=SPLIT_COLORS[label], label=label, width=0.55)
        bottoms = [b + v for b, v in zip(bottoms, values)]
    for x, total in enumerate(bottoms):  # the thin segments are hard to see: say their values
        detail = " · ".join(f"{label.split(' (')[0]} {values[x]:.1f}" for label, values in parts.items())
        ax.annotate(f"{total:.1f} ms\n{detail}", (x, total), textcoords="offset points", xytext=(0, 4),
                    ha="center", fontsize="small")
    ideals = [_get(_archs(summary), arch, "ideal", "mean_ms") for arch in names]
    shown = [(x, ideal) for x, ideal in enumerate(ideals) if ideal is not None]
    if shown:
        ax.hlines([v for _, v in shown], [x - 0.32 for x, _ in shown], [x + 0.32 for x, _ in shown],
                  colors="black", linewidth=2.5, label="ideal mean (model calls alone)")
    ax.set_ylim(0, max(bottoms + [v for _, v in shown]) * 1.2)
    ax.set_title("Where a request's server time goes (mean over sequential requests)")
    ax.set_xlabel("architecture")
    ax.set_ylabel("mean time per request (ms)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=2)
    return _save(fig, run_dir, "time_split")


def _split_parts(splits: Iterable[Summary]) -> dict[str, list[float]]:
    splits = list(splits)
    return {
        "feature store": [s["feature_store_ms"] or 0.0 for s in splits],
        "model calls": [s["models_ms"] or 0.0 for s in splits],
        "rest (framework, HTTP, JSON)": [s["other_ms"] or 0.0 for s in splits],
    }


# --------------------------------------------------------------------------- attribution: waterfall


def plot_waterfall(run_dir: Path, summary: Summary) -> Path | None:
    """Per architecture (rows), p50 at one user and req/s (columns): the seed-faithful level, each factor's
    change as a floating bar (green: better, orange: worse), the tuned level. Error bars: min–max over the
    repetitions of each step."""
    attribution = summary.get("attribution") or {}
    archs = [arch for arch in attribution.get("architectures") or [] if _waterfall_levels(attribution, arch)]
    if not archs:
        return None
    fig = Figure(figsize=(13, 4.6 * len(archs)), layout="constrained")
    axes = fig.subplots(len(archs), 2, squeeze=False)
    metrics = (("p50_ms", "p50 at 1 user (ms)", True), ("max_rps", "req/s at {users} users", False))
    users = attribution.get("load_users") or "N"
    for row, arch in zip(axes, archs):
        levels = _waterfall_levels(attribution, arch)
        for ax, (key, title, lower_is_better) in zip(row, metrics):
            _waterfall_panel(ax, levels, key, lower_is_better)
            ax.set_title(f"{arch}: {title.format(users=users)}")
    legend = [Patch(color=LEVEL, label="level"), Patch(color=BETTER, label="the factor helped"),
              Patch(color=WORSE, label="the factor hurt")]
    fig.legend(handles=legend, fontsize="small", loc="outside lower center", ncols=3)
    fig.suptitle("From seed-faithful to tuned, one factor at a time (error bars: min–max over repetitions)")
    return _save(fig, run_dir, "attribution_waterfall")


def _waterfall_levels(attribution: Summary, arch: str) -> list[tuple[str, Summary | None]]:
    """(label, level) from seed-faithful through each factor to tuned; a level has p50_ms, max_rps, spread."""
    steps = [step for step in attribution.get("steps") or [] if step.get("architecture") == arch]
    baseline, tuned = _get(attribution, "baseline", arch), _get(attribution, "tuned", arch)
    if baseline is None and not steps:
        return []
    levels: list[tuple[str, Summary | None]] = [("seed-faithful", baseline)]
    levels += [("+ " + str(step.get("factor") or f"step {step.get('step')}"), step) for step in steps]
    return levels + [("tuned", tuned)]


def _waterfall_panel(
    ax: Axes, levels: list[tuple[str, Summary | None]], key: str, lower_is_better: bool
) -> None:
    previous: float | None = None
    for x, (label, level) in enumerate(levels):
        value = _get(level, key)
        if value is None:
            previous = None
            continue
        total = x in (0, len(levels) - 1) or previous is None
        bottom = 0.0 if total else previous
        helps = value < bottom if lower_is_better else value > bottom
        tint = LEVEL if total or value == bottom else BETTER if helps else WORSE
        ax.bar(x, value - bottom, bottom=bottom, color=tint, width=0.65, edgecolor="black", linewidth=0.5)
        _range_bar(ax, x, value, _get(level, "spread", key))
        text = f"{value:.1f}" if total else f"{value - bottom:+.1f}"
        ax.annotate(text, (x, max(value, bottom)), textcoords="offset points", xytext=(0, 3), ha="center",
                    fontsize="small")
        if x + 1 < len(levels):  # the level carries on to the next bar
            ax.hlines(value, x + 0.33, x + 0.67, colors="black", linestyles=":", linewidth=1)
        previous = value
    ax.set_xticks(range(len(levels)), [textwrap.fill(label, LABEL_WIDTH) for label, _ in levels],
                  fontsize="small", rotation=30, ha="right", rotation_mode="anchor")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.08)
    ax.grid(axis="y", alpha=0.3)


def _range_bar(ax: Axes, x: float, value: float, spread: Summary | None) -> None:
    """The min–max range of the repetitions around ``value`` (their mean)."""
    if not spread or spread.get("n", 0) < 2:
        return
    low, high = value - spread["min"], spread["max"] - value
    ax.errorbar([x], [value], yerr=[[max(low, 0.0)], [max(high, 0.0)]], fmt="none", ecolor="black",
                elinewidth=1, capsize=3)


# --------------------------------------------------------------------------- attribution: fan-out


def plot_fanout(run_dir: Path, summary: Summary) -> Path | None:
    """p50 at one user and req/s against the number of model calls, measured (solid) and ideal (dashed:
    the sum of the calls for sequential calls, their maximum for concurrent ones)."""
    entries = [e for e in _get(summary, "attribution", "fanout") or [] if e.get("num_models") is not None]
    entries = [e for e in entries if e.get("p50_ms") is not None or e.get("rps") is not None]
    if not entries:
        return None
    by_arch: dict[str, list[Summary]] = {}
    for entry in sorted(entries, key=lambda e: e["num_models"]):
        by_arch.setdefault(entry["architecture"], []).append(entry)
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    latency, throughput = fig.subplots(1, 2)
    for index, (arch, series) in enumerate(by_arch.items()):
        tint = color(arch, index)
        models = [e["num_models"] for e in series]
        latency.plot(models, _values(series, "p50_ms"), marker="o", color=tint, label=f"{arch} measured p50")
        combine = "maximum" if series[0].get("concurrent") else "sum"
        latency.plot(models, _values(series, "ideal_p50_ms"), linestyle="--", color=tint,
                     label=f"{arch} ideal p50 ({combine} of the calls)")
        throughput.plot(models, _values(series, "rps"), marker="o", color=tint, label=arch)
    ticks = sorted({e["num_models"] for e in entries})
    users = _get(summary, "attribution", "load_users") or "N"
    for ax, title, ylabel in ((latency, "p50 at 1 user", "latency (ms)"),
                              (throughput, f"throughput at {users} users", "requests/s")):
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
    return _save(fig, run_dir, "attribution_fanout")


def _values(entries: Iterable[Summary], key: str) -> list[float]:
    return [entry[key] if entry.get(key) is not None else float("nan") for entry in entries]


# --------------------------------------------------------------------------- the queue


def plot_queue_depth(run_dir: Path, summary: Summary) -> Path | None:
    """The broker's queue depth against time during each load phase of the queue, one line per phase."""
    if "queue" not in _archs(summary):
        return None
    series = {}
    for phase in analysis.PHASES:
        rows = analysis.read_depth(Path(run_dir) / "resources" / f"{phase}_queue_depth.csv")
        if rows:
            steps = analysis.read_schedule(run_dir, phase, "queue")
            origin = steps[0].start if steps else rows[0][0]
            series[phase] = ([t - origin for t, _ in rows], [d for _, d in rows])
    if not series:
        return None
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax = fig.subplots()
    for phase, (times, depths) in series.items():
        ax.step(times, depths, where="post", label=phase.replace("_", " "), linewidth=1.4)
    ax.set_title("Queue depth: tasks waiting in the broker, per load phase")
    ax.set_xlabel("time since the start of the phase (s)")
    ax.set_ylabel("waiting tasks")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, run_dir, "queue_depth")


def plot_burst(run_dir: Path, summary: Summary) -> Path | None:
    """Left: results available over time, per burst (the queue at each worker concurrency, sync, async).
    Right: the queue's depth over time, per worker concurrency."""
    index = analysis.read_json(analysis.burst_dir(run_dir) / "runs.json")
    runs = index.get("runs") if isinstance(index, dict) else None
    entries = [e for e in runs if isinstance(e, dict)] if isinstance(runs, list) else []
    curves = {_burst_label(e): _finished_curve(run_dir, e) for e in entries}
    curves = {label: curve for label, curve in curves.items() if curve[0]}
    if not curves:
        return None
    fig = Figure(figsize=(12, 4.6), layout="constrained")
    done_ax, depth_ax = fig.subplots(1, 2)
    for index_, (label, (times, counts)) in enumerate(curves.items()):
        arch = label.split(" ")[0]
        style = {"color": color(arch, index_)} if arch != "queue" else {}
        done_ax.step(times, counts, where="post", label=label, linewidth=1.5, **style)
    for entry in entries:
        if entry.get("architecture") == "queue" and entry.get("depth_file"):
            rows = analysis.read_depth(analysis.burst_dir(run_dir) / str(entry["depth_file"]))
            start = float(entry.get("start") or 0.0)
            if rows:
                depth_ax.step([t - start for t, _ in rows], [d for _, d in rows], where="post",
                              label=_burst_label(entry), linewidth=1.5)
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
    fig.suptitle(f"Burst: {(index or {}).get('tasks')} requests at once")
    return _save(fig, run_dir, "burst")


def _burst_label(entry: Summary) -> str:
    arch = str(entry.get("architecture"))
    return f"queue × {entry.get('concurrency')}" if arch == "queue" else arch


def _finished_curve(run_dir: Path, entry: Summary) -> tuple[list[float], list[int]]:
    tasks = analysis.read_burst_tasks(analysis.burst_dir(run_dir) / str(entry.get("file")))
    done = sorted(task.done_s for task in tasks if task.ok and task.done_s is not None)
    return [0.0, *done], list(range(len(done) + 1))
