"""The report of a run: ``summary.json``, the plots, ``report.md`` and a self-contained ``report.html``.

The report is a list of blocks (headings, paragraphs, bullet lists, tables, images) computed from the summary;
the Markdown and the HTML are two renderings of the same blocks, so they always say the same thing.
"""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark import analysis, plots

Summary = dict[str, Any]
DASH = "—"
PLOT_CAPTIONS = {
    "latency": "Latency distributions, architectures overlaid; dashed: ideal p50, solid: measured p50.",
    "ramp": "Throughput and p95 latency against users; ✕ marks the breaking point.",
    "cpu": "CPU per process during the sustained phase (% of one core); shaded: warm-up, not counted.",
    "time_split": "Where a request's server time goes (mean, from Server-Timing); black bar: ideal mean.",
}
SECTION_EXPERIMENT = {  # which experiment of run.json produces each section of the summary
    "one_user": "locust", "ramp": "locust", "sustained": "locust", "stress": "locust", "saturation": "locust",
    "timeit": "timeit", "time_split": "timeit", "profile": "profile",
}


# --------------------------------------------------------------------------- blocks


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]
    text_columns: int = 1  # the first columns hold text (left-aligned), the others numbers


@dataclass(frozen=True)
class Image:
    path: Path
    caption: str


Block = Heading | Paragraph | Bullets | Table | Image


def render_markdown(blocks: Sequence[Block], base_dir: Path) -> str:
    """Markdown; images are linked relative to ``base_dir`` (where the .md file goes)."""
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            parts.append(block.text)
        elif isinstance(block, Bullets):
            parts.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            parts.append(_markdown_table(block))
        else:
            parts.append(f"![{block.caption}]({_relative(block.path, base_dir)})\n\n*{block.caption}*")
    return "\n\n".join(parts) + "\n"


def _markdown_table(table: Table) -> str:
    def row(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    align = ["---"] * table.text_columns + ["--:"] * (len(table.header) - table.text_columns)
    lines = [row(table.header), "|" + "|".join(align) + "|"]
    return "\n".join(lines + [row(cells) for cells in table.rows])


def _relative(path: Path, base_dir: Path) -> str:
    try:
        return path.resolve().relative_to(base_dir.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


HTML_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
.text { text-align: left; } th { background: #f3f3f3; }
figure { margin: 1.2em 0; } img { max-width: 100%; } figcaption { color: #555; font-size: 0.9em; }
.note { background: #fff4e5; border-left: 4px solid #f0a020; padding: 0.5em 0.8em; }
"""


def render_html(blocks: Sequence[Block], title: str) -> str:
    """One HTML file: inline CSS, images embedded as base64 PNG, every text escaped; nothing external."""
    body = "\n".join(_html_block(block) for block in blocks)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{HTML_STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _html_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{html.escape(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        note = ' class="note"' if block.text.startswith("⚠") else ""
        return f"<p{note}>{html.escape(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>\n" + "\n".join(f"<li>{html.escape(item)}</li>" for item in block.items) + "\n</ul>"
    if isinstance(block, Table):
        head = _html_cells("th", block.header, block)
        rows = "\n".join(f"<tr>{_html_cells('td', cells, block)}</tr>" for cells in block.rows)
        return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>"
    return _html_image(block)


def _html_cells(tag: str, cells: Sequence[str], table: Table) -> str:
    text = ' class="text"'
    return "".join(
        f"<{tag}{text if i < table.text_columns else ''}>{html.escape(cell)}</{tag}>"
        for i, cell in enumerate(cells)
    )


def _html_image(block: Image) -> str:
    data = base64.b64encode(block.path.read_bytes()).decode("ascii")
    caption = html.escape(block.caption)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


# --------------------------------------------------------------------------- number formatting


def number(value: Any, spec: str = ".1f", unit: str = "") -> str:
    """``value`` formatted, with its unit; a dash when it is unknown."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return DASH
    return f"{value:{spec}}{' ' + unit if unit else ''}"


def ms(value: Any) -> str:
    return number(value, ".1f", "ms")


def rps(value: Any) -> str:
    return number(value, ".1f", "req/s")


def share(ratio: Any) -> str:
    return number(ratio * 100 if isinstance(ratio, (int, float)) else None, ".2f") + (
        "%" if isinstance(ratio, (int, float)) else ""
    )


def times(ratio: float) -> str:
    return f"{ratio:.1f}×" if ratio < 10 else f"{ratio:.0f}×"


def get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _positive(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return float(value)


# --------------------------------------------------------------------------- content


def report_blocks(
    summary: Summary, plot_paths: dict[str, Path], plot_problems: Sequence[str] = ()
) -> list[Block]:
    archs: dict[str, Summary] = summary.get("architectures") or {}
    blocks: list[Block] = [Heading(1, f"scoring-bench report: run {summary.get('run_id')}")]
    blocks += _status(summary)
    blocks += [Heading(2, "Headline"), headline_table(archs)]
    for title, sentences in (
        ("Latency at one user", _latency_sentences),
        ("Throughput and breaking point", _throughput_sentences),
        ("Sustained load and CPU cost", _sustained_sentences),
        ("Stress and recovery", _stress_sentences),
        ("Where the time goes", _split_sentences),
    ):
        blocks += [Heading(2, title), *[Paragraph(text) for text in sentences(archs)]]
    blocks += [Heading(2, "Sequential requests (timeit)"), Paragraph(_timeit_sentence(summary))]
    blocks += [Heading(2, "Saturation"), *_saturation_blocks(summary)]
    blocks += _plot_blocks(plot_paths, plot_problems)
    blocks += [Heading(2, "Machine"), Bullets(machine_lines(summary.get("environment")))]
    return blocks


def _status(summary: Summary) -> list[Block]:
    blocks: list[Block] = [Paragraph(_run_line(summary))]
    missing, not_run = missing_sections(summary)
    if not summary.get("complete"):
        text = "⚠ This run is incomplete: it was interrupted or an experiment failed; the numbers below "
        text += "cover only what ran."
        if missing:
            text += " Missing: " + "; ".join(missing) + "."
        blocks.append(Paragraph(text))
    elif missing:
        blocks.append(Paragraph("⚠ Missing from this run: " + "; ".join(missing) + "."))
    if not_run:
        blocks.append(Paragraph("Not part of this run: " + "; ".join(not_run) + "."))
    if summary.get("errors"):
        blocks += [Paragraph("Errors recorded by the run:"), Bullets([str(e) for e in summary["errors"]])]
    return blocks


def _run_line(summary: Summary) -> str:
    parts = [f"Run {summary.get('run_id')}"]
    if summary.get("profile"):
        parts.append(f"profile {summary['profile']}")
    started = summary.get("started_at")
    if isinstance(started, (int, float)):
        parts.append("started " + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)))
        finished = summary.get("finished_at")
        if isinstance(finished, (int, float)) and finished >= started:
            parts.append(f"took {(finished - started) / 60:.1f} min")
    parts.append("architectures: " + ", ".join(summary.get("architectures") or {}))
    return ", ".join(parts) + "."


def missing_sections(summary: Summary) -> tuple[list[str], list[str]]:
    """Sections without data, as "ramp (sync, async)": (missing, not part of the run's experiments)."""
    experiments = summary.get("experiments")
    missing: list[str] = []
    not_run: list[str] = []
    archs: dict[str, Summary] = summary.get("architectures") or {}
    for section, experiment in SECTION_EXPERIMENT.items():
        absent = [arch for arch, data in archs.items() if data.get(section) is None]
        if not absent:
            continue
        label = f"{section.replace('_', ' ')} ({', '.join(absent)})"
        skipped = isinstance(experiments, list) and experiment not in experiments
        (not_run if skipped else missing).append(label)
    return missing, not_run


def headline_table(archs: dict[str, Summary]) -> Table:
    rows: list[tuple[str, Callable[[Summary], str]]] = [
        ("p50 at 1 user", lambda a: ms(get(a, "one_user", "p50_ms"))),
        ("p95 at 1 user", lambda a: ms(get(a, "one_user", "p95_ms"))),
        ("p99 at 1 user", lambda a: ms(get(a, "one_user", "p99_ms"))),
        ("ideal p50 (model calls alone)", lambda a: ms(get(a, "ideal", "p50_ms"))),
        ("overhead over ideal p50", lambda a: number(get(a, "one_user", "overhead_p50_ms"), "+.1f", "ms")),
        ("timeit mean (sequential)", lambda a: ms(get(a, "timeit", "mean_ms"))),
        ("breaking point", lambda a: _users_rps(get(a, "ramp", "breaking_point"), "none")),
        ("last good step", lambda a: _users_rps(get(a, "ramp", "last_good"), DASH)),
        ("max sustained (at the breaking point)", lambda a: _users_rps(get(a, "sustained"), DASH)),
        ("capacity (ramp's highest throughput)", lambda a: _users_rps(get(a, "ramp", "peak"), DASH)),
        ("server CPU per request", lambda a: number(get(a, "sustained", "server_cpu_ms_per_request"), ".2f",
                                                    "ms")),
        ("failures at 1 user", lambda a: _failures(get(a, "one_user"))),
        ("failures, sustained", lambda a: share(get(a, "sustained", "failure_ratio"))),
        ("failures under stress", lambda a: share(get(a, "stress", "failure_ratio"))),
        ("recovered after stress", lambda a: _yes_no(get(a, "stress", "recovery", "recovered"))),
        ("saturation flags", lambda a: _flag_count(get(a, "saturation"))),
    ]
    return Table(["", *archs], [[label, *[cell(data) for data in archs.values()]] for label, cell in rows])


def _users_rps(section: Any, when_absent: str) -> str:
    if not isinstance(section, dict):
        return DASH
    if section.get("users") is None:
        return when_absent
    return f"{section['users']} users, {rps(section.get('rps'))}"


def _failures(section: Any) -> str:
    if not isinstance(section, dict) or section.get("requests") is None:
        return DASH
    return f"{section.get('failures', 0)} of {section['requests']:,}"


def _yes_no(value: Any) -> str:
    return DASH if value is None else "yes" if value else "no"


def _flag_count(saturation: Any) -> str:
    if not isinstance(saturation, dict):
        return DASH
    return str(len(saturation.get("flags") or [])) if saturation.get("flags") else "none"


def _pairs(archs: dict[str, Summary]) -> list[tuple[str, str]]:
    """(baseline, other) pairs: every architecture against sync (or the first one)."""
    if len(archs) < 2:
        return []
    base = "sync" if "sync" in archs else next(iter(archs))
    return [(base, other) for other in archs if other != base]


def _compare(label_a: str, a: Any, label_b: str, b: Any, lower_is_better: bool) -> str | None:
    """E.g. "async: 2.0× lower than sync"; None when either number is missing or not positive."""
    a_value, b_value = _positive(a), _positive(b)
    if a_value is None or b_value is None:
        return None
    if lower_is_better:
        word = "lower" if b_value < a_value else "higher"
    else:
        word = "higher" if b_value > a_value else "lower"
    ratio = max(a_value, b_value) / min(a_value, b_value)
    return f"{label_b}'s is {times(ratio)} {word} than {label_a}'s"


def _latency_sentences(archs: dict[str, Summary]) -> list[str]:
    sentences = []
    for arch, data in archs.items():
        one_user, ideal = data.get("one_user"), data.get("ideal")
        if one_user is None or one_user.get("p50_ms") is None:
            sentences.append(f"{arch}: no 1-user measurement in this run.")
            continue
        text = (
            f"{arch}: at one user the median latency was {ms(one_user['p50_ms'])} "
            f"(p95 {ms(one_user['p95_ms'])}, p99 {ms(one_user['p99_ms'])}, {one_user['requests']:,} requests)"
        )
        if ideal and one_user.get("overhead_p50_ms") is not None:
            text += (
                f", {number(one_user['overhead_p50_ms'], '.1f', 'ms')} above its ideal p50 of "
                f"{ms(ideal['p50_ms'])} ({ideal['description']}): that is what the stack itself adds"
            )
        sentences.append(text + ".")
    for base, other in _pairs(archs):
        versus = _compare(base, get(archs[base], "one_user", "p50_ms"), other,
                          get(archs[other], "one_user", "p50_ms"), lower_is_better=True)
        if versus:
            sentences.append(f"Median latency at one user: {versus}.")
    return sentences


def _throughput_sentences(archs: dict[str, Summary]) -> list[str]:
    sentences = []
    for arch, data in archs.items():
        ramp = data.get("ramp")
        if ramp is None:
            sentences.append(f"{arch}: the ramp did not run (or left no files): breaking point unknown.")
            continue
        point = ramp.get("breaking_point") or {}
        steps = ramp.get("steps") or []
        top_users = steps[-1]["users"] if steps else None
        if point.get("users") is None:
            text = f"{arch} did not break in the ramp up to {top_users} users ({point.get('reason', '')})"
        else:
            text = f"{arch} broke at {point['users']} users ({rps(point.get('rps'))}): {point.get('reason')}"
        good = ramp.get("last_good")
        if good:
            text += f". Its last good step: {good['users']} users at {rps(good.get('rps'))}"
        peak = ramp.get("peak")
        if peak:
            text += f". Its highest throughput in the ramp: {rps(peak.get('rps'))} at {peak['users']} users"
        elif point.get("users") is not None:
            text += ". It broke at the first step: there is no good step"
        sentences.append(text + ".")
    for base, other in _pairs(archs):
        base_rps = _positive(get(archs[base], "ramp", "peak", "rps"))
        other_rps = _positive(get(archs[other], "ramp", "peak", "rps"))
        if base_rps and other_rps:
            sentences.append(
                f"At their highest, {other} served {times(other_rps / base_rps)} the {base} "
                f"throughput ({rps(other_rps)} against {rps(base_rps)})."
            )
    return sentences


def _sustained_sentences(archs: dict[str, Summary]) -> list[str]:
    sentences = []
    for arch, data in archs.items():
        sustained = data.get("sustained")
        if sustained is None:
            sentences.append(f"{arch}: the sustained phase did not run.")
            continue
        text = (
            f"{arch} held {rps(sustained.get('rps'))} at {sustained.get('users')} users for "
            f"{number(sustained.get('duration_s'), '.0f', 's')} (p50 {ms(sustained.get('p50_ms'))}, "
            f"p95 {ms(sustained.get('p95_ms'))}, {share(sustained.get('failure_ratio'))} failed)"
        )
        cpu = sustained.get("server_cpu_ms_per_request")
        if cpu is not None:
            text += f"; its services used {number(cpu, '.2f', 'ms')} of CPU per request"
        sentences.append(text + ".")
    for base, other in _pairs(archs):
        versus = _compare(base, get(archs[base], "sustained", "server_cpu_ms_per_request"), other,
                          get(archs[other], "sustained", "server_cpu_ms_per_request"), lower_is_better=True)
        if versus:
            sentences.append(f"Server CPU per request: {versus}.")
    return sentences


def _stress_sentences(archs: dict[str, Summary]) -> list[str]:
    sentences = []
    for arch, data in archs.items():
        stress = data.get("stress")
        if stress is None:
            sentences.append(f"{arch}: the stress phase did not run.")
            continue
        text = (
            f"Under stress at {stress.get('users')} users {arch} served {rps(stress.get('rps'))} with p95 "
            f"{ms(stress.get('p95_ms'))} and {share(stress.get('failure_ratio'))} failures"
        )
        sentences.append(text + _recovery_clause(stress.get("recovery")) + ".")
    return sentences


def _recovery_clause(recovery: Any) -> str:
    if not isinstance(recovery, dict):
        return "; the recovery step did not run"
    verdict = recovery.get("recovered")
    limit = recovery.get("reference_p50_ms")
    detail = (
        f"p50 {ms(recovery.get('p50_ms'))} (limit {analysis.RECOVERY_LATENCY_FACTOR:g} × {ms(limit)}), "
        f"{share(recovery.get('failure_ratio'))} failed (limit {analysis.RECOVERY_MAX_FAILURE_RATIO:.0%})"
    )
    state = "recovered" if verdict else "did not recover" if verdict is False else "recovery is undecided"
    return f"; back at {recovery.get('users')} users it {state}: {detail}"


def _split_sentences(archs: dict[str, Summary]) -> list[str]:
    sentences = []
    for arch, data in archs.items():
        split = data.get("time_split")
        if split:
            total = split["feature_store_ms"] + split["models_ms"] + split["other_ms"]
            model_share = f", {split['models_ms'] / total:.0%} of it" if total > 0 else ""
            combined = "concurrently: their maximum counts" if arch != "sync" else "one after another"
            sentences.append(
                f"{arch}: of a mean {ms(total)} on the server, the model calls ({combined}) took "
                f"{ms(split['models_ms'])}{model_share}; the feature store took "
                f"{ms(split['feature_store_ms'])} and everything else (framework, HTTP, JSON, aggregation) "
                f"{ms(split['other_ms'])}."
            )
        profile = data.get("profile")
        if profile:
            shares = ", ".join(f"{name.replace('_', ' ')} {value:.0%}" for name, value in profile.items())
            sentences.append(f"{arch}, profiled: {shares} of the handler's wall time.")
    return sentences or ["No Server-Timing or profile data in this run."]


def _timeit_sentence(summary: Summary) -> str:
    archs: dict[str, Summary] = summary.get("architectures") or {}
    means = ", ".join(
        f"{arch} {ms(get(data, 'timeit', 'mean_ms'))} mean over {get(data, 'timeit', 'n'):,} requests"
        for arch, data in archs.items() if get(data, "timeit", "n") is not None
    )
    improvement = get(summary, "comparison", "timeit_improvement_pct")
    if not means:
        return "The timeit experiment did not run."
    if not isinstance(improvement, dict) or improvement.get("percent") is None:
        return f"Sequential requests: {means}."
    percent = improvement["percent"]
    word = "faster" if percent >= 0 else "slower"
    return (
        f"Sequential requests: {means}. On average async was {abs(percent):.1f}% {word} than sync "
        f"({improvement['confidence']:.0%} bootstrap interval: {improvement['low']:.1f}% to "
        f"{improvement['high']:.1f}% faster)."
    )


def _saturation_blocks(summary: Summary) -> list[Block]:
    archs: dict[str, Summary] = summary.get("architectures") or {}
    flags = [
        f"{arch}, {flag}" for arch, data in archs.items() for flag in get(data, "saturation", "flags") or []
    ]
    peaks = [
        f"{arch}: load generator peaked at {number(sat.get('load_generator_max_cpu_percent'), '.0f')}% "
        f"of one core, machine at {number(sat.get('machine_max_cpu_percent'), '.0f')}%"
        for arch, data in archs.items() if isinstance(sat := data.get("saturation"), dict)
    ]
    if not peaks:
        return [Paragraph("No resource samples in this run: saturation is unknown.")]
    cores = get(summary, "environment", "machine", "cores")
    scale = f" (CPU in % of one core; the machine has {cores} cores)" if cores else " (CPU in % of one core)"
    blocks: list[Block] = [Paragraph("Peaks" + scale + ": " + "; ".join(peaks) + ".")]
    if flags:
        warning = "⚠ The measurement may be limited by the client or the machine:"
        blocks += [Paragraph(warning), Bullets(flags)]
    else:
        blocks.append(Paragraph("No saturation flags: neither the load generator nor the machine ran hot."))
    return blocks


def _plot_blocks(plot_paths: dict[str, Path], problems: Sequence[str]) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Plots")]
    blocks += [Image(path, PLOT_CAPTIONS.get(name, name)) for name, path in plot_paths.items()]
    if not plot_paths:
        blocks.append(Paragraph("No data to plot."))
    if problems:
        blocks += [Paragraph("Plots that could not be drawn:"), Bullets(list(problems))]
    return blocks


def machine_lines(environment: Any) -> list[str]:
    if not isinstance(environment, dict):
        return ["environment.json is missing: the machine is unknown."]
    machine = environment.get("machine") or {}
    settings = environment.get("settings") or {}
    lines = [
        f"CPU: {machine.get('cpu_model', DASH)}, {machine.get('cores', DASH)} cores",
        f"memory: {number(machine.get('memory_gb'), '.1f', 'GB')}",
        f"OS: {machine.get('os', DASH)}, kernel {machine.get('kernel', DASH)}",
        f"Python {environment.get('python', DASH)}, "
        f"git commit {str(environment.get('git_commit') or DASH)[:12]}",
    ]
    if settings:
        lines.append(
            f"stack: {settings.get('num_models')} model calls per request, "
            f"model kind {settings.get('model_kind')}, latency {settings.get('model_latency')}; "
            f"sync {settings.get('scoring_sync_worker_class')} "
            f"{settings.get('scoring_sync_workers')} × {settings.get('scoring_sync_threads')} threads, "
            f"async {settings.get('scoring_async_workers')} worker(s) on {settings.get('async_loop')}"
        )
    packages = environment.get("packages") or {}
    if packages:
        lines.append("packages: " + ", ".join(f"{name} {packages[name]}" for name in sorted(packages)))
    return lines


# --------------------------------------------------------------------------- entry point


def build_report(run_dir: Path) -> dict[str, Path]:
    """Compute everything from the raw files of ``run_dir``; return the paths written, by name
    (``summary``, ``markdown``, ``html``, and ``plot_<name>`` for each plot)."""
    run_dir = Path(run_dir)
    summary = analysis.finite(analysis.build_summary(run_dir))
    written = {"summary": analysis.write_summary(run_dir, summary)}
    problems: list[str] = []
    plot_paths = plots.plot_all(run_dir, summary, problems)
    written.update({f"plot_{name}": path for name, path in plot_paths.items()})
    blocks = report_blocks(summary, plot_paths, problems)
    title = f"scoring-bench report: run {summary.get('run_id')}"
    written["markdown"] = _write(run_dir / "report.md", render_markdown(blocks, run_dir))
    written["html"] = _write(run_dir / "report.html", render_html(blocks, title))
    return written


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
