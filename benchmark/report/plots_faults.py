"""The faults' timelines: one figure per fault, a column per architecture it ran on, drawn from the summary
(its per-second series), so a report rebuilt from summary.json alone still has them."""

from __future__ import annotations

from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

from benchmark.report.faults import plot_name
from benchmark.report.figures import color, nan_if_none, save
from benchmark.summary import FaultRun, Faults

OUTCOME_COLORS = {
    "502": "#e41a1c",
    "503": "#ff7f00",
    "504": "#984ea3",
    "FAILURE": "#a65628",
    "timeout": "#f781bf",
    "no answer": "#4d4d4d",
    "invalid": "#999999",
}
FALLBACK = "#bdbdbd"
SHADE = "#fdd0a2"


def plot_fault_timeline(faults: Faults | None, fault: str, out_dir: Path) -> Path | None:
    """Per second, by when the answers came back — rows: valid answers and failed ones by outcome; the
    failed share; the p95 wait (from the scheduled send). Columns:
    the architectures ``fault`` ran on. Shaded: the fault window; dashed: the process back; dotted: the
    start of the first recovered window."""
    runs = [run for run in (faults.runs if faults else []) if run.fault == fault and run.timeline]
    if not runs:
        return None
    fig = Figure(figsize=(max(4.4 * len(runs) + 1.0, 7.0), 8.2), layout="constrained")
    axes = fig.subplots(3, len(runs), squeeze=False, sharex="col")
    for column, run in enumerate(runs):
        throughput, errors, p95 = (axes[row][column] for row in range(3))
        _throughput(throughput, run, column)
        _error_share(errors, run, column)
        _p95(p95, run, column)
        for ax in (throughput, errors, p95):
            _marks(ax, run)
            ax.grid(alpha=0.3)
        p95.set_xlabel("s since the fault began")
        throughput.set_title(f"{run.architecture}: {_recovery_text(run)}", fontsize="medium")
    axes[0][0].set_ylabel("per second")
    axes[1][0].set_ylabel("failed (% of answers)")
    axes[2][0].set_ylabel("p95 wait (ms, log)")
    fig.suptitle(f"Fault: {runs[0].label}")
    return save(fig, out_dir, plot_name(fault))


def _steps(run: FaultRun, values: list[float]) -> tuple[list[float], list[float]]:
    """x and y of a per-second step line whose last second is drawn to its end."""
    times = [float(s.t_s) for s in run.timeline]
    return [*times, times[-1] + 1.0], [*values, values[-1]]


def _recovery_text(run: FaultRun) -> str:
    if run.recovery_s is not None:
        return f"recovered {run.recovery_s:.2f} s after the fault"
    return "did not recover" if run.recovered is False else "recovery unknown"


def _throughput(ax: Axes, run: FaultRun, column: int) -> None:
    times = [s.t_s for s in run.timeline]
    outcomes = sorted({o for s in run.timeline for o in s.by_outcome})
    bottom = [0.0] * len(times)
    for outcome in outcomes:
        counts = [float(s.by_outcome.get(outcome, 0)) for s in run.timeline]
        ax.bar(
            times,
            counts,
            width=0.9,
            align="edge",
            bottom=bottom,
            color=OUTCOME_COLORS.get(outcome, FALLBACK),
            label=f"failed: {outcome}",
        )
        bottom = [b + c for b, c in zip(bottom, counts)]
    ax.step(
        *_steps(run, [float(s.ok_done) for s in run.timeline]),
        where="post",
        color=color(run.architecture, column),
        linewidth=1.6,
        label="valid answers",
    )
    if run.offered_rps:
        ax.axhline(run.offered_rps, color="black", linestyle=":", linewidth=0.8, label="offered")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="x-small", loc="lower right")


def _error_share(ax: Axes, run: FaultRun, column: int) -> None:
    ax.step(
        *_steps(run, [100.0 * s.errors / s.answered if s.answered else float("nan") for s in run.timeline]),
        where="post",
        color=color(run.architecture, column),
        linewidth=1.4,
    )
    ax.set_ylim(-2, 102)


def _p95(ax: Axes, run: FaultRun, column: int) -> None:
    ax.step(
        *_steps(run, [nan_if_none(s.p95_ms) for s in run.timeline]),
        where="post",
        color=color(run.architecture, column),
        linewidth=1.4,
    )
    if run.baseline_p50_ms:
        ax.axhline(run.baseline_p50_ms, color="grey", linestyle="--", linewidth=0.8)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())


def _marks(ax: Axes, run: FaultRun) -> None:
    if run.fault_start_s is None or run.fault_end_s is None:
        return
    end = run.fault_end_s - run.fault_start_s
    ax.axvspan(0.0, end, color=SHADE, alpha=0.6, linewidth=0, zorder=0)  # behind the bars
    if run.ready_s is not None and run.ready_s - run.fault_end_s > 0.05:
        ax.axvline(run.ready_s - run.fault_start_s, color="black", linestyle="--", linewidth=0.8)
    if run.recovery_s is not None:
        ax.axvline(end + run.recovery_s, color="green", linestyle=":", linewidth=1.2)
