"""The report of a run: ``summary.json``, the plots, ``report.md`` and a self-contained ``report.html``.

The report is a list of blocks computed from the typed summary (:mod:`benchmark.summary`) and, for the
plots, the run's series; no section opens the run folder (:mod:`benchmark.analysis` does). The Markdown and
the HTML are two renderings of the same blocks, so they always say the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from benchmark.analysis import read_run
from benchmark.analysis.raw import recorded_settings
from benchmark.report.attribution import attribution_blocks
from benchmark.report.batched import batched_blocks
from benchmark.report.blocks import Block, Bullets, Heading, Image, Paragraph, render_html, render_markdown
from benchmark.report.compare import compare_runs
from benchmark.report.control import control_blocks
from benchmark.report.differs import burst_blocks as burst_differs_blocks
from benchmark.report.differs import headline_blocks as headline_differs_blocks
from benchmark.report.external import external_blocks, machine_heading, machine_note
from benchmark.report.faults import FAULT_PLOT_PREFIX, faults_blocks
from benchmark.report.headline import QUEUE_NOTE, SPREAD_NOTE, headline_table, status_blocks
from benchmark.report.per_core import per_core_sentences
from benchmark.report.plot_captions import ATTRIBUTION_PLOTS, PLOT_CAPTIONS, QUEUE_PLOTS
from benchmark.report.plots import plot_all
from benchmark.report.queue import burst_blocks, queue_blocks
from benchmark.report.sections import (
    latency_sentences,
    machine_lines,
    saturation_blocks,
    split_sentences,
    stress_sentences,
    sustained_sentences,
    throughput_sentences,
    timeit_sentence,
)
from benchmark.report.soak import SOAK_PLOTS, soak_blocks
from benchmark.report.targets import target_blocks
from benchmark.report.trust import (
    calibration_lines,
    calibration_warnings,
    crosscheck_blocks,
    openloop_blocks,
    verification_blocks,
)
from benchmark.summary import SUMMARY_FILE, Summary

# The experiments whose numbers the headline and the per-architecture sections show.
ARCHITECTURE_EXPERIMENTS = ("profile", "timeit", "locust", "openloop", "crosscheck")
NO_RAW_FILES = (
    "⚠ The raw files of this run are absent: this report was built from its summary.json "
    "(schema version {version}). The plots drawn from the raw files (latency distributions, CPU "
    "over time, queue depth, burst) are left out."
)


def report_blocks(
    summary: Summary, plot_paths: dict[str, Path], plot_problems: Sequence[str] = (), raw_files: bool = True
) -> list[Block]:
    """Every block of the report, in order. ``raw_files`` False: the report says it was built from the
    summary alone (its plots are only those of the summary)."""
    archs = summary.architectures
    blocks: list[Block] = [Heading(1, title(summary)), *status_blocks(summary)]
    blocks += external_blocks(summary.environment)  # a stack started by someone else: where, what skipped
    if not raw_files:
        blocks.append(Paragraph(NO_RAW_FILES.format(version=summary.schema_version)))
    blocks += [
        Paragraph(f"⚠ {warning}: the numbers below may show that.")
        for warning in calibration_warnings(summary.environment)
    ]
    measured = measures_architectures(summary)
    if measured:
        settings = recorded_settings(summary.environment)
        blocks += [Heading(2, "Headline"), headline_table(archs, settings), Paragraph(SPREAD_NOTE)]
        blocks += headline_differs_blocks(summary)
        blocks += batched_blocks(summary.comparison.batched_vs_async)
        if "queue" in archs:
            blocks.append(Paragraph(QUEUE_NOTE))
    bench = summary.environment.bench if summary.environment and summary.environment.bench else {}
    blocks += verification_blocks(summary.verification, bench.get("bench_verify_requests"))
    if measured:
        blocks += architecture_blocks(summary, plot_paths)
    blocks += control_blocks(summary.control)
    blocks += burst_blocks(summary.burst, summary.experiments, plot_paths)
    blocks += burst_differs_blocks(summary.burst, recorded_settings(summary.environment))
    blocks += attribution_blocks(summary, plot_paths)
    blocks += soak_blocks(summary.soak, plot_paths)
    blocks += faults_blocks(summary.faults, plot_paths)
    general = {
        name: path
        for name, path in plot_paths.items()
        if name not in ATTRIBUTION_PLOTS
        and name not in QUEUE_PLOTS
        and name not in SOAK_PLOTS
        and not name.startswith(FAULT_PLOT_PREFIX)
        and name != "openloop"
    }
    if measured or general or plot_problems:
        blocks += _plot_blocks(general, plot_problems)
    blocks += [
        Heading(2, machine_heading(summary.environment)),
        Bullets(
            machine_note(summary.environment)
            + machine_lines(summary.environment)
            + calibration_lines(summary.environment)
        ),
    ]
    return blocks


def measures_architectures(summary: Summary) -> bool:
    """Whether the run measured what the headline and the per-architecture sections show; a run of the soak
    alone (``make soak``) did not, and its report leaves those sections out."""
    experiments = summary.experiments
    return experiments is None or any(name in ARCHITECTURE_EXPERIMENTS for name in experiments)


def architecture_blocks(summary: Summary, plot_paths: dict[str, Path]) -> list[Block]:
    """The sections about every architecture, from the latency at one user to the queue's."""
    archs = summary.architectures
    blocks: list[Block] = []
    for heading, sentences in (
        ("Latency at one user", latency_sentences),
        ("Throughput and breaking point", throughput_sentences),
        ("Sustained load and CPU cost", sustained_sentences),
        ("Stress and recovery", stress_sentences),
        ("Where the time goes", split_sentences),
    ):
        blocks += [Heading(2, heading), *[Paragraph(text) for text in sentences(archs)]]
        if heading == "Sustained load and CPU cost":
            settings = recorded_settings(summary.environment)
            blocks += [Paragraph(text) for text in per_core_sentences(archs, settings)]
        if heading == "Stress and recovery":
            blocks += openloop_blocks(archs, plot_paths) + crosscheck_blocks(archs)
    blocks += [
        Heading(2, "Sequential requests (timeit)"),
        Paragraph(timeit_sentence(archs, summary.comparison)),
    ]
    machine = summary.environment.machine if summary.environment else None
    blocks += [Heading(2, "Saturation"), *saturation_blocks(archs, machine.cores if machine else None)]
    blocks += target_blocks(summary)
    blocks += queue_blocks(archs.get("queue"), plot_paths)
    return blocks


def title(summary: Summary) -> str:
    return f"scoring-bench report: run {summary.run_id}"


def _plot_blocks(plot_paths: dict[str, Path], problems: Sequence[str]) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Plots")]
    blocks += [Image(path, PLOT_CAPTIONS.get(name, name)) for name, path in plot_paths.items()]
    if not plot_paths:
        blocks.append(Paragraph("No data to plot."))
    if problems:
        blocks += [Paragraph("Plots that could not be drawn:"), Bullets(list(problems))]
    return blocks


def build_report(run_dir: Path) -> dict[str, Path]:
    """Compute everything from the raw files of ``run_dir``; return the paths written, by name
    (``summary``, ``markdown``, ``html``, and ``plot_<name>`` for each plot).

    A folder without raw files but with a summary.json (e.g. ``doc/sample-report``) gets its report from
    that summary, which is left as it is (``summary`` is then its path); a summary.json this code cannot
    read raises :class:`~benchmark.summary.SchemaVersionError` or pydantic's ``ValidationError``.
    """
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    summary = run.summary
    written = {"summary": summary.write(run_dir) if run.from_raw_files else run_dir / SUMMARY_FILE}
    problems: list[str] = []
    plot_paths = plot_all(summary, run.series, run_dir / "plots", problems)
    written.update({f"plot_{name}": path for name, path in plot_paths.items()})
    blocks = report_blocks(summary, plot_paths, problems, raw_files=run.from_raw_files)
    written["markdown"] = _write(run_dir / "report.md", render_markdown(blocks, run_dir))
    written["html"] = _write(run_dir / "report.html", render_html(blocks, title(summary)))
    return written


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


__all__ = ["build_report", "compare_runs", "report_blocks"]
