"""Two runs side by side: ``comparison.md`` and ``comparison.html`` with the headline metrics of each run
and how much run B differs from run A, plus what differed in the machine and the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.analysis import load_or_build_summary
from benchmark.report import (
    Block,
    Bullets,
    Heading,
    Paragraph,
    Table,
    get,
    missing_sections,
    render_html,
    render_markdown,
)

Summary = dict[str, Any]
DASH = "—"


@dataclass(frozen=True)
class Metric:
    label: str
    path: tuple[str, ...]  # within one architecture's summary
    spec: str = ".1f"
    unit: str = "ms"
    lower_is_better: bool = True
    scale: float = 1.0
    judged: bool = True  # False: a difference is neither better nor worse (e.g. the ideal latency)


METRICS = (
    Metric("p50 at 1 user", ("one_user", "p50_ms")),
    Metric("p95 at 1 user", ("one_user", "p95_ms")),
    Metric("p99 at 1 user", ("one_user", "p99_ms")),
    Metric("ideal p50", ("ideal", "p50_ms"), judged=False),
    Metric("overhead over ideal p50", ("one_user", "overhead_p50_ms")),
    Metric("timeit mean", ("timeit", "mean_ms")),
    Metric("breaking point", ("ramp", "breaking_point", "users"), "d", "users", lower_is_better=False),
    Metric("throughput at the breaking point", ("ramp", "breaking_point", "rps"), unit="req/s",
           lower_is_better=False),
    Metric("max sustainable (last good step)", ("ramp", "last_good", "rps"), unit="req/s",
           lower_is_better=False),
    Metric("sustained phase throughput", ("sustained", "rps"), unit="req/s", lower_is_better=False),
    Metric("server CPU per request", ("sustained", "server_cpu_ms_per_request"), ".2f"),
    Metric("failures, sustained", ("sustained", "failure_ratio"), ".2f", "%", scale=100.0),
    Metric("failures under stress", ("stress", "failure_ratio"), ".2f", "%", scale=100.0),
)

GAP_METRICS = (  # within the summary's attribution.gap; a gap is neither better nor worse
    Metric("seed-faithful: latency gap (sync − async p50)", ("seed_faithful", "latency_gap_ms"),
           judged=False),
    Metric("seed-faithful: throughput ratio (async ÷ sync)", ("seed_faithful", "throughput_ratio"), ".2f",
           "×", judged=False),
    Metric("seed-faithful: throughput difference (async − sync)",
           ("seed_faithful", "throughput_difference_rps"), unit="req/s", judged=False),
    Metric("tuned: latency gap (sync − async p50)", ("tuned", "latency_gap_ms"), judged=False),
    Metric("tuned: throughput ratio (async ÷ sync)", ("tuned", "throughput_ratio"), ".2f", "×", judged=False),
    Metric("tuned: throughput difference (async − sync)", ("tuned", "throughput_difference_rps"),
           unit="req/s", judged=False),
)


def compare_runs(run_a: Path, run_b: Path, out_dir: Path) -> Path:
    """Write ``comparison.md`` and ``comparison.html`` into ``out_dir``; return the Markdown's path.

    Each run's summary.json is used when present, else a summary is built from its raw files (in memory:
    the run folders are not written to).
    """
    a, b = load_or_build_summary(Path(run_a)), load_or_build_summary(Path(run_b))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    blocks = comparison_blocks(a, b)
    title = f"scoring-bench comparison: {a.get('run_id')} vs {b.get('run_id')}"
    (out_dir / "comparison.html").write_text(render_html(blocks, title), encoding="utf-8")
    path = out_dir / "comparison.md"
    path.write_text(render_markdown(blocks, out_dir), encoding="utf-8")
    return path


def comparison_blocks(a: Summary, b: Summary) -> list[Block]:
    id_a, id_b = str(a.get("run_id")), str(b.get("run_id"))
    blocks: list[Block] = [
        Heading(1, f"scoring-bench comparison: {id_a} vs {id_b}"),
        Paragraph(
            f"Run A is {id_a} ({_state(a)}), run B is {id_b} ({_state(b)}). "
            "Δ is run B's change relative to run A; the last column says whether that is better or worse."
        ),
        Heading(2, "Headline metrics"),
        metrics_table(a, b),
    ]
    for name, summary in (("A", a), ("B", b)):
        missing, _ = missing_sections(summary)
        if missing:
            blocks.append(Paragraph(f"⚠ Missing from run {name}: " + "; ".join(missing) + "."))
    blocks += [Heading(2, "Sequential requests (timeit)"), Paragraph(_improvement_sentence(a, b))]
    blocks += gap_blocks(a, b)
    differences = environment_differences(a.get("environment"), b.get("environment"))
    blocks += [Heading(2, "What differed between the runs")]
    same = Paragraph("Same machine, commit and stack settings.")
    blocks.append(Bullets(differences) if differences else same)
    return blocks


def _state(summary: Summary) -> str:
    profile = f"profile {summary['profile']}, " if summary.get("profile") else ""
    return profile + ("complete" if summary.get("complete") else "incomplete")


def metrics_table(a: Summary, b: Summary) -> Table:
    archs_a: dict[str, Summary] = a.get("architectures") or {}
    archs_b: dict[str, Summary] = b.get("architectures") or {}
    archs = list(dict.fromkeys([*archs_a, *archs_b]))
    rows: list[list[str]] = []
    for arch in archs:
        for metric in METRICS:
            value_a, value_b = _value(archs_a.get(arch), metric), _value(archs_b.get(arch), metric)
            if value_a is None and value_b is None:
                continue
            rows.append([arch, metric.label, _format(value_a, metric), _format(value_b, metric),
                         *_change(value_a, value_b, metric)])
        recovered = [
            _yes_no(get(side.get(arch), "stress", "recovery", "recovered")) for side in (archs_a, archs_b)
        ]
        if recovered != [DASH, DASH]:
            rows.append([arch, "recovered after stress", *recovered, DASH, DASH])
    header = ["architecture", "metric", f"A: {a.get('run_id')}", f"B: {b.get('run_id')}", "Δ", "B vs A"]
    return Table(header, rows, text_columns=2)


def gap_blocks(a: Summary, b: Summary) -> list[Block]:
    """The attribution's sync–async gap at seed-faithful and tuned settings, when both runs measured it."""
    gaps = [get(summary, "attribution", "gap") for summary in (a, b)]
    if not any(isinstance(gap, dict) for gap in gaps):
        return []
    heading = Heading(2, "Attribution: the sync–async gap")
    if not all(isinstance(gap, dict) for gap in gaps):
        lacking = "A" if not isinstance(gaps[0], dict) else "B"
        return [heading, Paragraph(f"Run {lacking} has no attribution of the gap: nothing to compare.")]
    rows = []
    for metric in GAP_METRICS:
        value_a, value_b = _value(gaps[0], metric), _value(gaps[1], metric)
        if value_a is not None or value_b is not None:
            rows.append([metric.label, _format(value_a, metric), _format(value_b, metric),
                         *_change(value_a, value_b, metric)])
    header = ["gap", f"A: {a.get('run_id')}", f"B: {b.get('run_id')}", "Δ", "B vs A"]
    return [heading, Table(header, rows)]


def _value(arch_summary: Summary | None, metric: Metric) -> float | None:
    value = get(arch_summary, *metric.path)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value * metric.scale


def _format(value: float | None, metric: Metric) -> str:
    if value is None:
        return DASH
    text = f"{int(value):d}" if metric.spec == "d" else f"{value:{metric.spec}}"
    return f"{text}{'' if metric.unit in ('%', '×') else ' '}{metric.unit}"


def _change(a: float | None, b: float | None, metric: Metric) -> tuple[str, str]:
    """(Δ in percent of A — in points for a percentage —, "better" / "worse" / "same")."""
    if a is None or b is None:
        return DASH, DASH
    if metric.unit == "%":
        delta = f"{b - a:+.2f} pt"
    elif a != 0:
        delta = f"{100 * (b - a) / abs(a):+.1f}%"
    else:
        delta = DASH
    if _format(a, metric) == _format(b, metric):  # equal at the precision shown
        return delta, "same"
    if not metric.judged:
        return delta, DASH
    better = b < a if metric.lower_is_better else b > a
    return delta, "better" if better else "worse"


def _yes_no(value: Any) -> str:
    return DASH if value is None else "yes" if value else "no"


def _improvement_sentence(a: Summary, b: Summary) -> str:
    parts = []
    for name, summary in (("A", a), ("B", b)):
        improvement = get(summary, "comparison", "timeit_improvement_pct")
        if not isinstance(improvement, dict) or improvement.get("percent") is None:
            parts.append(f"run {name}: not measured")
            continue
        parts.append(
            f"run {name}: async {improvement['percent']:.1f}% faster than sync on average "
            f"(interval {improvement['low']:.1f}% to {improvement['high']:.1f}%)"
        )
    return "; ".join(parts) + "."


def environment_differences(env_a: Any, env_b: Any) -> list[str]:
    """The machine, commit, Python and settings values that differ between two environment.json files."""
    if not isinstance(env_a, dict) or not isinstance(env_b, dict):
        return ["environment.json is missing from at least one run: the machines cannot be compared."]
    lines = []
    for label, path in (
        ("CPU", ("machine", "cpu_model")),
        ("cores", ("machine", "cores")),
        ("memory (GB)", ("machine", "memory_gb")),
        ("OS", ("machine", "os")),
        ("kernel", ("machine", "kernel")),
        ("Python", ("python",)),
        ("git commit", ("git_commit",)),
    ):
        before, after = get(env_a, *path), get(env_b, *path)
        if before != after:
            lines.append(f"{label}: {before} → {after}")
    settings_a, settings_b = env_a.get("settings") or {}, env_b.get("settings") or {}
    for key in sorted(set(settings_a) | set(settings_b)):
        if settings_a.get(key) != settings_b.get(key):
            lines.append(f"setting {key}: {settings_a.get(key)} → {settings_b.get(key)}")
    return lines
