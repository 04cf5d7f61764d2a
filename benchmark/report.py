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
from benchmark.targets import check_targets

Summary = dict[str, Any]
DASH = "—"
PLOT_CAPTIONS = {
    "latency": "Latency distributions, architectures overlaid; dashed: ideal p50, solid: measured p50.",
    "ramp": "Throughput and p95 latency against users; ✕ marks the breaking point.",
    "cpu": "CPU per process during the sustained phase (% of one core); shaded: warm-up, not counted.",
    "time_split": "Where a request's server time goes (mean, from Server-Timing); black bar: ideal mean.",
    "waterfall": "From seed-faithful to tuned, one factor at a time: p50 at one user and req/s per "
                 "architecture; green: the factor helped, orange: it hurt; error bars: min–max over "
                 "repetitions.",
    "fanout": "p50 at one user and req/s against the model calls per request; dashed: the ideal p50 (sum of "
              "the calls for sequential calls, their maximum for concurrent ones).",
    "queue_depth": "Tasks waiting in the broker (sampled from it) during each load phase of the queue.",
    "burst": "Burst: results available over time (tasks submitted at once; sync and async: the same requests "
             "at once) and the queue's depth, per worker concurrency.",
}
QUEUE_PLOTS = ("queue_depth", "burst")  # shown in their own sections, not under "Plots"
NOT_PROFILED = "queue"  # its API does not install the profiler: no profile section expected
ATTRIBUTION_PLOTS = ("waterfall", "fanout")  # shown in the attribution section, not under "Plots"
ATTRIBUTION_TITLE = "Attribution of the gap"
SAME_WITHIN = 0.10  # cpu study: throughputs within 10% of each other count as the same (single measurements)
QUEUE_NOTE = ("For the queue, every latency is end-to-end — from the submit to the moment the client has "
              "the result, polling included — and every throughput is completed tasks per second.")
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
    if "queue" in archs:
        blocks.append(Paragraph(QUEUE_NOTE))
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
    blocks += target_blocks(summary)
    blocks += queue_blocks(summary, plot_paths)
    blocks += burst_blocks(summary, plot_paths)
    blocks += attribution_blocks(summary, plot_paths)
    general = {name: path for name, path in plot_paths.items()
               if name not in ATTRIBUTION_PLOTS and name not in QUEUE_PLOTS}
    blocks += _plot_blocks(general, plot_problems)
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
        absent = [arch for arch, data in archs.items() if data.get(section) is None
                  and not (section == "profile" and arch == NOT_PROFILED)]
        if not absent:
            continue
        label = f"{section.replace('_', ' ')} ({', '.join(absent)})"
        skipped = isinstance(experiments, list) and experiment not in experiments
        (not_run if skipped else missing).append(label)
    if isinstance(experiments, list):
        attribution = summary.get("attribution")
        if attribution is None:
            (missing if "attribution" in experiments else not_run).append("attribution")
        elif attribution.get("missing"):
            missing.append(f"attribution ({', '.join(attribution['missing'])})")
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
            combined = "concurrently: their maximum counts" if arch == "async" else "one after another"
            sentences.append(
                f"{arch}: of a mean {ms(total)} on the server, the model calls ({combined}) took "
                f"{ms(split['models_ms'])}{model_share}; the feature store took "
                f"{ms(split['feature_store_ms'])} and everything else (framework, HTTP, JSON, aggregation) "
                f"{ms(split['other_ms'])}."
            )
        if arch == "queue" and split:
            sentences.append("queue: these are the worker's steps (from the task's timings), the time a task "
                             "runs; queueing and polling come on top of them.")
        profile = data.get("profile")
        if profile:
            shares = ", ".join(f"{name.replace('_', ' ')} {value:.0%}" for name, value in profile.items())
            sentences.append(f"{arch}, profiled: {shares} of the handler's wall time.")
        elif arch == NOT_PROFILED:
            sentences.append("queue: not profiled — its API does not install the profiler "
                             "(scoring_bench.service.profiling covers the sync and async services only).")
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


# --------------------------------------------------------------------------- attribution


def attribution_blocks(summary: Summary, plot_paths: dict[str, Path]) -> list[Block]:
    """The "Attribution of the gap" section: the waterfall table and what it says, fan-out, cpu, tail."""
    attribution = summary.get("attribution")
    if not isinstance(attribution, dict):
        experiments = summary.get("experiments")
        if isinstance(experiments, list) and "attribution" in experiments:
            note = "⚠ The attribution experiment left no measurements (attribution/measurements.csv)."
            return [Heading(2, ATTRIBUTION_TITLE), Paragraph(note)]
        return []
    blocks: list[Block] = [Heading(2, ATTRIBUTION_TITLE)]
    if attribution.get("missing"):
        blocks.append(Paragraph("⚠ Planned but not measured: " + "; ".join(attribution["missing"]) + "."))
    if attribution.get("steps"):
        blocks += [Paragraph(_waterfall_intro(attribution)), waterfall_table(attribution)]
        blocks += [Paragraph(text) for text in gap_sentences(summary)]
    else:
        blocks.append(Paragraph("The waterfall study did not run: no attribution of the gap."))
    blocks += _plot_image(plot_paths, "waterfall")
    for title, content in (
        ("Fan-out: more model calls per request", _fanout_blocks),
        ("A CPU-bound model", _cpu_blocks),
        ("A long tail", _tail_blocks),
    ):
        blocks += [Heading(3, title), *content(attribution)]
        if title.startswith("Fan-out"):
            blocks += _plot_image(plot_paths, "fanout")
    return blocks


def _plot_image(plot_paths: dict[str, Path], name: str) -> list[Block]:
    return [Image(plot_paths[name], PLOT_CAPTIONS[name])] if name in plot_paths else []


def _waterfall_intro(attribution: Summary) -> str:
    reps = max((step.get("reps") or 0 for step in attribution.get("steps") or []), default=0)
    users = attribution.get("load_users")
    return (
        "Starting from the seed's choices (the seed-faithful preset), each step switches one more of them to "
        f"its tuned value, until the stack is the tuned one; each step was measured {reps} time(s), both "
        f"architectures: p50 of sequential requests at one user and the throughput of {users} closed-loop "
        "users. Δ is a step's mean minus the previous step's; † marks a change no larger than the spread "
        "(min–max) between repetitions, i.e. not distinguishable from noise. The gap is sync minus async "
        "(p50) and async minus sync (req/s); a share is the part of its change from seed-faithful to tuned "
        "that the factor made. Factors are switched cumulatively in the order of the table, so each effect "
        "is measured with the factors above it already switched."
    )


def waterfall_table(attribution: Summary) -> Table:
    archs = list(attribution.get("architectures") or [])
    steps: dict[tuple[int, str], Summary] = {
        (step["step"], step["architecture"]): step for step in attribution.get("steps") or []
    }
    factors = get(attribution, "gap", "factors") or _factors_of(attribution.get("steps") or [])
    rows = [_level_row("seed-faithful", attribution.get("baseline"), archs)]
    for factor in factors:
        by_arch = [steps.get((factor["step"], arch)) for arch in archs]
        rows.append([
            str(factor.get("factor")), f"{factor.get('from')} → {factor.get('to')}",
            *[_delta(step, "delta_p50_ms", "p50_ms", "ms") for step in by_arch],
            *[_delta(step, "delta_rps", "max_rps", "req/s") for step in by_arch],
            _share_text(factor.get("share_p50")), _share_text(factor.get("share_rps")),
        ])
    rows.append(_level_row("tuned", attribution.get("tuned"), archs))
    header = ["factor", "from → to", *[f"{arch} p50 Δ" for arch in archs],
              *[f"{arch} req/s Δ" for arch in archs], "share of the latency gap's change",
              "share of the throughput gap's change"]
    return Table(header, rows, text_columns=2)


def _factors_of(steps: Sequence[Summary]) -> list[Summary]:
    """The factors of the steps (when there is no gap: a single architecture)."""
    found: dict[int, Summary] = {}
    for step in steps:
        found.setdefault(step["step"], step)
    return list(found.values())


def _level_row(label: str, levels: Any, archs: Sequence[str]) -> list[str]:
    values = [get(levels, arch) for arch in archs]
    return [f"{label} (level)", "", *[ms(get(v, "p50_ms")) for v in values],
            *[rps(get(v, "max_rps")) for v in values], "", ""]


def _delta(step: Summary | None, key: str, noise_key: str, unit: str) -> str:
    text = number(get(step, key), "+.1f", unit)
    return text + " †" if get(step, "within_noise", noise_key) else text


def _share_text(ratio: Any) -> str:
    """A share of the gap's change in whole percent (it may be negative or above 100%)."""
    return number(ratio * 100, ".0f") + "%" if isinstance(ratio, (int, float)) else DASH


def _faster(gap_ms: float) -> str:
    """async's p50 against sync's, from the gap (sync − async)."""
    if round(gap_ms, 1) == 0:
        return "as fast as sync"
    return f"{abs(gap_ms):.1f} ms {'faster' if gap_ms > 0 else 'slower'} than sync"


def _throughput_phrase(ratio: float | None) -> str:
    if ratio is None:
        return "an unknown share of the sync throughput"
    if ratio >= 1:
        return f"{times(ratio)} the sync throughput"
    return f"less than sync: {times(ratio)} of its throughput"


def gap_sentences(summary: Summary) -> list[str]:
    attribution = summary.get("attribution") or {}
    gap = attribution.get("gap")
    if not isinstance(gap, dict):
        return ["Only one architecture was measured: there is no gap to attribute."]
    sentences = [_seed_sentence(gap.get("seed_faithful"), attribution.get("load_users"))]
    factors = gap.get("factors") or []
    sentences += _change_sentences(gap, factors, "latency_gap_ms", "gap_change_p50_ms", "share_p50")
    sentences += _change_sentences(gap, factors, "throughput_difference_rps", "gap_change_rps", "share_rps")
    if any((f.get("share_p50") or 0) < 0 or (f.get("share_rps") or 0) < 0 for f in factors):
        sentences.append("A negative share means the factor moved the gap against its overall change"
                         + ("; the shares still add up to 100%." if _shares_add_up(factors) else "."))
    sentences.append(_tuned_sentence(gap.get("tuned"), summary.get("architectures") or {}))
    return [text for text in sentences if text]


def _shares_add_up(factors: Sequence[Summary]) -> bool:
    """Whether every factor has both shares and each kind sums to 1 (every step was measured)."""
    for key in ("share_p50", "share_rps"):
        shares = [f.get(key) for f in factors]
        if not shares or None in shares or abs(sum(shares) - 1) > 1e-6:
            return False
    return True


def _seed_sentence(seed: Any, users: Any) -> str:
    if not isinstance(seed, dict) or seed.get("latency_gap_ms") is None:
        return "The seed-faithful step was not measured for both architectures."
    return (
        f"At seed-faithful settings async was {_faster(seed['latency_gap_ms'])} at one user (p50 "
        f"{ms(seed['async_p50_ms'])} against {ms(seed['sync_p50_ms'])}) and served "
        f"{_throughput_phrase(seed.get('throughput_ratio'))} ({rps(seed.get('async_rps'))} against "
        f"{rps(seed.get('sync_rps'))} at {users} users)."
    )


def _change_sentences(gap: Summary, factors: Sequence[Summary], level_key: str, change_key: str,
                      share_key: str) -> list[str]:
    """How the gap (latency or throughput) changed from seed-faithful to tuned, and which factor moved it."""
    latency = level_key == "latency_gap_ms"
    what, unit, spec = ("latency gap (sync − async p50)", "ms", "+.1f") if latency else (
        "throughput difference (async − sync)", "req/s", "+.0f")
    before, after = get(gap, "seed_faithful", level_key), get(gap, "tuned", level_key)
    measured = [f for f in factors if f.get(change_key) is not None]
    if before is None or after is None or not measured:
        return []
    top = max(measured, key=lambda f: abs(f[change_key]))
    text = (f"The {what} went from {number(before, spec, unit)} at seed-faithful to "
            f"{number(after, spec, unit)} tuned ({number(after - before, spec, unit)}")
    ratios = [get(gap, side, "throughput_ratio") for side in ("seed_faithful", "tuned")]
    if not latency and None not in ratios:
        text += f"; async served {times(ratios[0])} then {times(ratios[1])} the sync throughput"
    text += ")."
    moved = f"{top['factor']} ({top.get('from')} → {top.get('to')})"
    moved = moved[:1].upper() + moved[1:]  # it starts a sentence
    if top.get(share_key) is None:
        text += (f" That is no change, so there are no shares; the largest move was {moved}'s "
                 f"{number(top[change_key], spec, unit)}.")
        return [text]
    text += (f" {moved} alone accounts for {_share_text(top[share_key])} of that change "
             f"({number(top[change_key], spec, unit)})")
    text += ": more than all of it, the other factors moved it back." if top[share_key] > 1 else "."
    others = [f"{f['factor']} {_share_text(f.get(share_key))}" for f in measured if f is not top]
    return [text + (f" The others: {'; '.join(others)}." if others else "")]


def _tuned_sentence(tuned: Any, archs: dict[str, Summary]) -> str:
    if not isinstance(tuned, dict) or tuned.get("latency_gap_ms") is None:
        return "The tuned step was not measured for both architectures."
    gap, ratio = tuned["latency_gap_ms"], tuned.get("throughput_ratio")
    latency = f"async is {_faster(gap)} at one user"
    throughput = f"serves {_throughput_phrase(ratio)}"
    faster, more = round(gap, 1) > 0, ratio is not None and ratio > 1
    if faster and more:
        verdict = "that is what concurrency itself buys on this machine"
    elif faster or more:
        verdict = f"concurrency itself buys {'latency' if faster else 'throughput'} only, on this machine"
    else:
        verdict = "on this machine concurrency itself buys nothing once both stacks are tuned"
    text = f"Once both are tuned, {latency} and {throughput}: {verdict}."
    ideal_sync, ideal_async = get(archs, "sync", "ideal", "p50_ms"), get(archs, "async", "ideal", "p50_ms")
    if ideal_sync is not None and ideal_async is not None:
        text += (f" Waiting for the model calls concurrently instead of one after another saves "
                 f"{ms(ideal_sync - ideal_async)} in the ideal case (ideal p50 {ms(ideal_sync)} against "
                 f"{ms(ideal_async)}).")
    return text


def _fanout_blocks(attribution: Summary) -> list[Block]:
    entries = attribution.get("fanout") or []
    by_models: dict[int, dict[str, Summary]] = {}
    for entry in entries:
        if entry.get("num_models") is not None:
            by_models.setdefault(entry["num_models"], {})[entry["architecture"]] = entry
    if not by_models:
        return [Paragraph("The fan-out study did not run.")]
    archs = list(dict.fromkeys(entry["architecture"] for entry in entries))
    header = ["model calls", *[f"{arch} {what}" for arch in archs for what in ("p50", "ideal p50", "req/s")]]
    rows = [[str(n), *[cell for arch in archs for cell in (
        ms(get(by_arch, arch, "p50_ms")), ms(get(by_arch, arch, "ideal_p50_ms")),
        rps(get(by_arch, arch, "rps")))]] for n, by_arch in sorted(by_models.items())]
    return [Table(header, rows), *[Paragraph(text) for text in fanout_sentences(by_models, archs)]]


def _combined(entry: Summary) -> str:
    return "maximum" if entry.get("concurrent") else "sum"


def fanout_sentences(by_models: dict[int, dict[str, Summary]], archs: Sequence[str]) -> list[str]:
    low, high = min(by_models), max(by_models)
    parts = [
        f"{arch} takes {ms(entry.get('p50_ms'))} against an ideal {_combined(entry)} of "
        f"{ms(entry.get('ideal_p50_ms'))}"
        for arch in archs if (entry := by_models[high].get(arch))
    ]
    sentences = [f"With {high} model calls per request, " + "; ".join(parts) + " (p50 at one user)."]
    if low == high:
        return sentences
    growth = []
    for arch in archs:
        first, last = by_models[low].get(arch), by_models[high].get(arch)
        grew = _difference(get(last, "p50_ms"), get(first, "p50_ms"))
        ideal = _difference(get(last, "ideal_p50_ms"), get(first, "ideal_p50_ms"))
        if grew is not None:
            growth.append(f"{arch}'s p50 grew by {number(grew, '.1f', 'ms')} (ideal: "
                          f"{number(ideal, '.1f', 'ms')}) and its throughput went from "
                          f"{rps(get(first, 'rps'))} to {rps(get(last, 'rps'))}")
    if growth:
        sentences.append(f"From {low} to {high} calls, " + "; ".join(growth) + ".")
    return sentences


def _difference(a: Any, b: Any) -> float | None:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a - b
    return None


def _cpu_blocks(attribution: Summary) -> list[Block]:
    cpu = attribution.get("cpu")
    if not isinstance(cpu, dict) or not cpu:
        return [Paragraph("The cpu-bound study did not run.")]
    return [Paragraph(text) for text in cpu_sentences(cpu)]


def cpu_sentences(cpu: dict[str, Summary]) -> list[str]:
    sync, other = cpu.get("sync"), cpu.get("async")
    if not sync or not other:
        return ["The cpu-bound model was not measured for both architectures."]
    sync_rps, async_rps = _positive(sync.get("rps")), _positive(other.get("rps"))
    sentences = []
    if sync_rps and async_rps:
        ratio = async_rps / sync_rps
        verdict = ("async does not help when the work is CPU" if ratio <= 1 + SAME_WITHIN
                   else f"async still served {times(ratio)} the sync throughput with CPU-bound work")
        sentences.append(
            f"With a CPU-bound model (it burns CPU for its latency instead of sleeping) async served "
            f"{rps(async_rps)} against sync's {rps(sync_rps)} at {sync.get('num_models')} calls per request: "
            f"{verdict} (differences under {SAME_WITHIN:.0%} count as none: one measurement each)."
        )
    p50, ideal_max, ideal_sum = other.get("p50_ms"), other.get("ideal_p50_ms"), sync.get("ideal_p50_ms")
    if None not in (p50, ideal_max, ideal_sum, sync.get("p50_ms")):
        overlap = ("nearer the sum of the calls than their maximum: the calls did not overlap"
                   if abs(p50 - ideal_sum) < abs(p50 - ideal_max)
                   else "nearer the maximum of the calls than their sum: the calls overlapped")
        sentences.append(
            f"At one user async took {ms(p50)} (ideal maximum {ms(ideal_max)}) and sync {ms(sync['p50_ms'])} "
            f"(ideal sum {ms(ideal_sum)}). Async's latency is {overlap}."
        )
    return sentences or ["The cpu-bound measurements hold no numbers."]


def _tail_blocks(attribution: Summary) -> list[Block]:
    tail = attribution.get("tail")
    if not isinstance(tail, dict) or not tail:
        return [Paragraph("The long-tail study did not run.")]
    return [Paragraph(tail_sentence(tail))]


def tail_sentence(tail: dict[str, Summary]) -> str:
    sync, other = tail.get("sync"), tail.get("async")
    if not sync or not other or sync.get("p99_ms") is None or other.get("p99_ms") is None:
        return "The long-tail study was not measured for both architectures."
    text = (
        f"With long-tailed model latency ({sync.get('model_latency')}, {sync.get('num_models')} calls per "
        f"request) sync's p99 at one user was {ms(sync['p99_ms'])} (ideal p99 of the {_combined(sync)}: "
        f"{ms(sync.get('ideal_p99_ms'))}) and async's {ms(other['p99_ms'])} (ideal p99 of the "
        f"{_combined(other)}: {ms(other.get('ideal_p99_ms'))})"
    )
    cut = sync["p99_ms"] - other["p99_ms"]
    if cut > 0:
        text += f": concurrent calls cut the p99 by {ms(cut)} ({cut / sync['p99_ms']:.0%})"
    else:
        text += f": concurrent calls did not cut the p99 (async's was {ms(-cut)} higher)"
    ideal_cut = _difference(sync.get("ideal_p99_ms"), other.get("ideal_p99_ms"))
    if ideal_cut is not None:
        text += f"; ideally they would cut it by {ms(ideal_cut)}"
    return text + f". The p50s: sync {ms(sync.get('p50_ms'))}, async {ms(other.get('p50_ms'))}."


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


# --------------------------------------------------------------------------- the queue and the burst


def queue_blocks(summary: Summary, plot_paths: dict[str, Path]) -> list[Block]:
    """The queue's own numbers by load phase: end-to-end latency and throughput, depth, worker CPU."""
    queue = get(summary, "architectures", "queue")
    if not isinstance(queue, dict):
        return []
    blocks: list[Block] = [Heading(2, "The queue: end-to-end latency, depth and worker CPU")]
    phases = get(queue, "queue", "phases") or {}
    if not phases:
        return blocks + [Paragraph("No load phase of the queue left files: nothing to show.")]
    header = ["phase", "tasks", "end-to-end p50", "end-to-end p95", "completed/s", "depth max", "depth mean",
              "worker CPU mean", "worker CPU max", "worker CPU per task", "submit p50", "polls per task"]
    rows = [_queue_row(phase, data, queue) for phase, data in phases.items()]
    blocks += [Table(header, rows), *[Paragraph(text) for text in queue_sentences(queue)]]
    if "queue_depth" in plot_paths:
        blocks.append(Image(plot_paths["queue_depth"], PLOT_CAPTIONS["queue_depth"]))
    return blocks


def _queue_latency(queue: Summary, phase: str) -> tuple[Any, Any, Any]:
    """End-to-end p50, p95 and completed tasks/s of a phase (the ramp: its busiest step)."""
    if phase == "ramp":
        steps = get(queue, "ramp", "steps") or []
        top = max((s for s in steps if s.get("rps") is not None), key=lambda s: s["rps"], default=None)
        return get(top, "p50_ms"), get(top, "p95_ms"), get(top, "rps")
    section = get(queue, phase)
    return get(section, "p50_ms"), get(section, "p95_ms"), get(section, "rps")


def _queue_row(phase: str, data: Summary, queue: Summary) -> list[str]:
    p50, p95, rate = _queue_latency(queue, phase)
    label = "ramp (busiest step)" if phase == "ramp" else phase.replace("_", " ")
    return [label, number(data.get("tasks"), ",.0f"), ms(p50), ms(p95), number(rate, ".1f", "/s"),
            number(data.get("depth_max"), ".0f"), number(data.get("depth_mean"), ".1f"),
            number(data.get("worker_cpu_mean_percent"), ".0f", "%"),
            number(data.get("worker_cpu_max_percent"), ".0f", "%"),
            number(data.get("worker_cpu_ms_per_task"), ".2f", "ms"), ms(get(data, "submit", "p50_ms")),
            number(data.get("polls_per_task"), ".2f")]


def queue_sentences(queue: Summary) -> list[str]:
    phases = get(queue, "queue", "phases") or {}
    sentences = []
    sustained, one_user = phases.get("sustained"), get(queue, "one_user")
    if isinstance(one_user, dict) and one_user.get("p50_ms") is not None:
        sentences.append(
            f"At one user a task took {ms(one_user['p50_ms'])} from submit to result (p50), "
            f"{number(one_user.get('overhead_p50_ms'), '+.1f', 'ms')} over the ideal of its model calls; "
            f"the submit itself answered in {ms(get(phases, 'one_user', 'submit', 'p50_ms'))} (p50)."
        )
    if isinstance(sustained, dict):
        sentences.append(
            f"Under sustained load ({get(queue, 'sustained', 'users')} users) the queue completed "
            f"{number(get(queue, 'sustained', 'rps'), '.1f', 'tasks/s')}; up to "
            f"{number(sustained.get('depth_max'), '.0f')} tasks waited in the broker (mean "
            f"{number(sustained.get('depth_mean'), '.1f')}), and the worker used "
            f"{number(sustained.get('worker_cpu_mean_percent'), '.0f')}% of a core on average "
            f"({number(sustained.get('worker_cpu_ms_per_task'), '.2f', 'ms')} of CPU per task)."
        )
    deepest = max(phases.items(), key=lambda item: item[1].get("depth_max") or 0, default=None)
    if deepest and (deepest[1].get("depth_max") or 0) > 0:
        sentences.append(f"The deepest queue: {deepest[1]['depth_max']:.0f} waiting tasks, in the "
                         f"{deepest[0].replace('_', ' ')} phase.")
    elif phases:
        sentences.append("No task ever waited in the broker when it was sampled: the worker kept up.")
    return sentences


def burst_blocks(summary: Summary, plot_paths: dict[str, Path]) -> list[Block]:
    burst = summary.get("burst")
    if not isinstance(burst, dict):
        experiments = summary.get("experiments")
        if isinstance(experiments, list) and "burst" in experiments:
            note = "⚠ The burst experiment left no files (burst/runs.json)."
            return [Heading(2, BURST_TITLE), Paragraph(note)]
        return []
    runs = sorted(burst.get("runs") or [], key=_burst_order)
    blocks: list[Block] = [Heading(2, BURST_TITLE), Paragraph(_burst_intro(burst))]
    if runs:
        header = ["architecture", "worker concurrency", "completed", "failures", "all accepted after",
                  "first result", "last result", "p50", "p95", "results/s", "depth max",
                  "worker CPU per task"]
        blocks.append(Table(header, [_burst_row(run) for run in runs], text_columns=2))
        blocks += [Paragraph(text) for text in burst_sentences(burst)]
    if "burst" in plot_paths:
        blocks.append(Image(plot_paths["burst"], PLOT_CAPTIONS["burst"]))
    return blocks


BURST_TITLE = "Burst: many requests at once (seed 000)"


def _burst_order(run: Summary) -> tuple[int, int]:
    """The queue's bursts first, by worker concurrency; then the others as measured (a stable sort)."""
    queue = run.get("architecture") == "queue"
    return (0, int(run.get("concurrency") or 0)) if queue else (1, 0)


def _burst_intro(burst: Summary) -> str:
    return (f"{burst.get('tasks')} requests sent at once, one connection each. The queue takes them as tasks "
            "(a 202 each) and the client then long-polls every task until its result is there; the sync "
            "and async handlers must answer all of them on the open connections. Times are from the moment "
            "the burst started.")


def _seconds(value: Any) -> str:
    return number(value, ".2f", "s")


def _burst_row(run: Summary) -> list[str]:
    return [str(run.get("architecture")), DASH if run.get("concurrency") is None else str(run["concurrency"]),
            f"{run.get('completed')} of {run.get('tasks')}", str(run.get("failures")),
            _seconds(run.get("last_accepted_s")), _seconds(run.get("first_done_s")),
            _seconds(run.get("last_done_s")), ms(run.get("p50_ms")), ms(run.get("p95_ms")),
            number(run.get("throughput_per_s"), ".0f", "/s"), number(run.get("depth_max"), ".0f"),
            number(run.get("worker_cpu_ms_per_task"), ".2f", "ms")]


def burst_sentences(burst: Summary) -> list[str]:
    runs = burst.get("runs") or []
    queue = [run for run in runs if run.get("architecture") == "queue"]
    others = [run for run in runs if run.get("architecture") != "queue"]
    sentences = []
    drained = [run for run in queue if run.get("drain_s") is not None]
    if drained:
        parts = [f"{run['drain_s']:.2f} s with {run['concurrency']} worker slots (depth up to "
                 f"{number(run.get('depth_max'), '.0f')})" for run in drained]
        sentences.append(f"The queue drained all {burst.get('tasks')} tasks in " + "; ".join(parts) + ".")
        fastest = min(drained, key=lambda run: run["drain_s"])
        slowest = max(drained, key=lambda run: run["drain_s"])
        if fastest is not slowest:
            sentences.append(f"From {slowest['concurrency']} to {fastest['concurrency']} slots the drain got "
                             f"{times(slowest['drain_s'] / fastest['drain_s'])} faster.")
        for run in drained:
            if run.get("last_accepted_s") is not None:
                sentences.append(
                    f"With {run['concurrency']} slots every task was accepted (202) within "
                    f"{_seconds(run['last_accepted_s'])}, "
                    f"{_seconds(run['drain_s'] - run['last_accepted_s'])} "
                    "before the last result was there: until then the clients are free to do something else.")
    failed = [run for run in queue if run.get("failures")]
    if failed:
        sentences.append("Tasks that failed or were not done in time: " + "; ".join(
            f"{run['failures']} at concurrency {run['concurrency']}" for run in failed) + ".")
    for run in others:
        verdict = "all answered" if not run.get("failures") else f"{run['failures']} failed"
        sentences.append(f"{run.get('architecture')}: the same {run.get('tasks')} requests at once — "
                         f"{verdict}, the last answer after {_seconds(run.get('last_done_s'))} "
                         f"(p50 {ms(run.get('p50_ms'))}).")
    if drained and others:
        best = min(drained, key=lambda run: run["drain_s"])
        for run in others:
            if run.get("last_done_s") and not run.get("failures"):
                ratio = run["last_done_s"] / best["drain_s"]
                word = "sooner" if ratio > 1 else "later"
                sentences.append(f"The best queue ({best['concurrency']} slots) had every result "
                                 f"{times(max(ratio, 1 / ratio))} {word} than {run['architecture']} answered "
                                 f"its last request.")
    return sentences or ["The burst runs hold no results."]


def target_blocks(summary: Summary) -> list[Block]:
    """The product's performance targets (benchmark/targets.py) against this run."""
    verdict = {True: "met", False: "missed", None: "-"}
    rows = [[c.target, c.architecture, number(c.measured, ".1f", ""), f"{c.limit:g}",
             verdict[c.met] + (f" ({c.note})" if c.note else "")] for c in check_targets(summary)]
    intro = ("The targets of the default stack on a 2-core machine with everything on it, set before "
             "measuring; a missed target is a finding, not a failure of the run.")
    return [Heading(2, "Targets"), Paragraph(intro),
            Table(["target", "architecture", "measured", "limit", "verdict"], rows, text_columns=2)]
