"""Two runs side by side: ``comparison.md`` and ``comparison.html`` with the headline metrics of each run
and how much run B differs from run A, plus what differed in the machine and the settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.analysis import load_summary
from benchmark.analysis.differs import compare_sides, describe
from benchmark.analysis.raw import recorded_settings
from benchmark.report.blocks import Block, Bullets, Heading, Paragraph, Table, render_html, render_markdown
from benchmark.report.format import DASH, spread, yes_no
from benchmark.report.headline import missing_sections
from benchmark.report.per_core import per_core_value
from benchmark.summary import ArchitectureSummary, Environment, Gap, GapAt, Repeated, Summary


@dataclass(frozen=True)
class Metric:
    label: str
    value: Callable[[Any], float | int | None]  # of one architecture's summary, or of the attribution's gap
    spec: str = ".1f"
    unit: str = "ms"
    lower_is_better: bool = True
    scale: float = 1.0
    judged: bool = True  # False: a difference is neither better nor worse (e.g. the ideal latency)
    # the metric's repetitions (BENCH_REPEATS): then the median is compared, and a difference within
    # the runs' spread is "within noise"
    repeated: Callable[[ArchitectureSummary], Repeated | None] | None = None


def _arch_metric(label: str, value: Callable[[ArchitectureSummary], float | None], **options: Any) -> Metric:
    return Metric(label, value, **options)


METRICS = (
    _arch_metric(
        "p50 at 1 user",
        lambda a: a.one_user.p50_ms if a.one_user else None,
        repeated=lambda a: a.repeats.one_user_p50_ms if a.repeats else None,
    ),
    _arch_metric("p95 at 1 user", lambda a: a.one_user.p95_ms if a.one_user else None),
    _arch_metric("p99 at 1 user", lambda a: a.one_user.p99_ms if a.one_user else None),
    _arch_metric("ideal p50", lambda a: a.ideal.p50_ms if a.ideal else None, judged=False),
    _arch_metric("overhead over ideal p50", lambda a: a.one_user.overhead_p50_ms if a.one_user else None),
    _arch_metric("timeit mean", lambda a: a.timeit.mean_ms if a.timeit else None),
    _arch_metric(
        "breaking point",
        lambda a: a.ramp.breaking_point.users if a.ramp and a.ramp.breaking_point else None,
        spec="d",
        unit="users",
        lower_is_better=False,
    ),
    _arch_metric(
        "throughput at the breaking point",
        lambda a: a.ramp.breaking_point.rps if a.ramp and a.ramp.breaking_point else None,
        unit="req/s",
        lower_is_better=False,
    ),
    _arch_metric(
        "max sustainable (last good step)",
        lambda a: a.ramp.last_good.rps if a.ramp and a.ramp.last_good else None,
        unit="req/s",
        lower_is_better=False,
    ),
    _arch_metric(
        "sustained phase throughput",
        lambda a: a.sustained.rps if a.sustained else None,
        unit="req/s",
        lower_is_better=False,
        repeated=lambda a: a.repeats.sustained_rps if a.repeats else None,
    ),
    _arch_metric(
        "server CPU per request",
        lambda a: a.sustained.server_cpu_ms_per_request if a.sustained else None,
        spec=".2f",
        repeated=lambda a: a.repeats.server_cpu_ms_per_request if a.repeats else None,
    ),
    _arch_metric(
        "req/s per core used (sustained)",
        lambda a: per_core_value(a),
        spec=".0f",
        unit="req/s",
        lower_is_better=False,
    ),
    _arch_metric(
        "req/s per scoring process (sustained)",
        lambda a: a.sustained.rps_per_scoring_process if a.sustained else None,
        unit="req/s",
        lower_is_better=False,
    ),
    _arch_metric(
        "server CPU per request, × the CPU micro-benchmark",
        lambda a: a.sustained.server_cpu_per_request_calibrated if a.sustained else None,
        unit="×",
    ),
    _arch_metric(
        "open loop: rate at the p99 limit",
        lambda a: a.openloop.rate_at_limit_rps if a.openloop else None,
        spec=".0f",
        unit="req/s",
        lower_is_better=False,
        repeated=lambda a: a.repeats.openloop_rate_at_limit_rps if a.repeats else None,
    ),
    _arch_metric(
        "failures, sustained",
        lambda a: a.sustained.failure_ratio if a.sustained else None,
        spec=".2f",
        unit="%",
        scale=100.0,
    ),
    _arch_metric(
        "failures under stress",
        lambda a: a.stress.failure_ratio if a.stress else None,
        spec=".2f",
        unit="%",
        scale=100.0,
    ),
)


def _gap_metric(label: str, side: str, value: Callable[[GapAt], float | None], **options: Any) -> Metric:
    """A metric of the gap at seed-faithful (``side`` "seed_faithful") or tuned ("tuned")."""

    def of_gap(gap: Gap) -> float | None:
        at = gap.seed_faithful if side == "seed_faithful" else gap.tuned
        return value(at) if at else None

    return Metric(label, of_gap, judged=False, **options)


GAP_METRICS = tuple(  # within the summary's attribution.gap; a gap is neither better nor worse
    metric
    for side, name in (("seed_faithful", "seed-faithful"), ("tuned", "tuned"))
    for metric in (
        _gap_metric(f"{name}: latency gap (sync − async p50)", side, lambda g: g.latency_gap_ms),
        _gap_metric(
            f"{name}: throughput ratio (async ÷ sync)",
            side,
            lambda g: g.throughput_ratio,
            spec=".2f",
            unit="×",
        ),
        _gap_metric(
            f"{name}: throughput difference (async − sync)",
            side,
            lambda g: g.throughput_difference_rps,
            unit="req/s",
        ),
    )
)


def compare_runs(run_a: Path, run_b: Path, out_dir: Path) -> Path:
    """Write ``comparison.md`` and ``comparison.html`` into ``out_dir``; return the Markdown's path.

    Each run's summary.json is used when it reads, else a summary is built from its raw files (in memory:
    the run folders are not written to).
    """
    a, b = load_summary(Path(run_a)), load_summary(Path(run_b))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    blocks = comparison_blocks(a, b)
    title = f"scoring-bench comparison: {a.run_id} vs {b.run_id}"
    (out_dir / "comparison.html").write_text(render_html(blocks, title), encoding="utf-8")
    path = out_dir / "comparison.md"
    path.write_text(render_markdown(blocks, out_dir), encoding="utf-8")
    return path


def comparison_blocks(a: Summary, b: Summary) -> list[Block]:
    blocks: list[Block] = [
        Heading(1, f"scoring-bench comparison: {a.run_id} vs {b.run_id}"),
        Paragraph(
            f"Run A is {a.run_id} ({_state(a)}), run B is {b.run_id} ({_state(b)}). "
            "Δ is run B's change relative to run A; the last column says whether that is better or worse. "
            "A metric measured several times shows its median and (min–max, n); when the two runs' ranges "
            "overlap, the difference is no larger than their spread: within noise."
        ),
        Heading(2, "Headline metrics"),
        metrics_table(a, b),
    ]
    for name, summary in (("A", a), ("B", b)):
        missing, _ = missing_sections(summary)
        if missing:
            blocks.append(Paragraph(f"⚠ Missing from run {name}: " + "; ".join(missing) + "."))
    blocks += [Heading(2, "Sequential requests (timeit)"), Paragraph(_improvement_sentence(a, b))]
    blocks += gap_blocks(a, b) + queue_blocks(a, b) + control_blocks(a, b) + batched_blocks(a, b)
    differences = environment_differences(a.environment, b.environment)
    blocks += [Heading(2, "What differed between the runs")]
    same = Paragraph("Same machine, commit and stack settings.")
    blocks.append(Bullets(differences) if differences else same)
    sides = side_differences(a, b)
    if sides:
        blocks += [
            Paragraph("Each architecture's side, run A vs run B (from the recorded settings):"),
            Bullets(sides),
        ]
    return blocks


def side_differences(a: Summary, b: Summary) -> list[str]:
    """Per architecture both runs measured: what its side ran with differently ("sync — differs: scoring
    processes 2 vs 4"), from each run's recorded settings; nothing without them."""
    settings_a, settings_b = recorded_settings(a.environment), recorded_settings(b.environment)
    if settings_a is None or settings_b is None:
        return []
    return [
        f"{arch} — {describe(compare_sides(settings_a, arch, settings_b, arch))}"
        for arch in a.architectures
        if arch in b.architectures
    ]


def _state(summary: Summary) -> str:
    profile = f"profile {summary.profile}, " if summary.profile else ""
    return profile + ("complete" if summary.complete else "incomplete")


def metrics_table(a: Summary, b: Summary) -> Table:
    archs = list(dict.fromkeys([*a.architectures, *b.architectures]))
    rows: list[list[str]] = []
    for arch in archs:
        side_a, side_b = a.architectures.get(arch), b.architectures.get(arch)
        for metric in METRICS:
            spread_a, spread_b = _spread(side_a, metric), _spread(side_b, metric)
            if spread_a is not None and spread_b is not None:
                rows.append([arch, metric.label, *_repeated_row(spread_a, spread_b, metric)])
                continue
            value_a, value_b = _value(side_a, metric), _value(side_b, metric)
            if value_a is None and value_b is None:
                continue
            rows.append(
                [
                    arch,
                    metric.label,
                    _format(value_a, metric),
                    _format(value_b, metric),
                    *_change(value_a, value_b, metric),
                ]
            )
        recovered = [yes_no(_recovered(side)) for side in (side_a, side_b)]
        if recovered != [DASH, DASH]:
            rows.append([arch, "recovered after stress", *recovered, DASH, DASH])
    header = ["architecture", "metric", f"A: {a.run_id}", f"B: {b.run_id}", "Δ", "B vs A"]
    return Table(header, rows, text_columns=2)


def within_noise(a: Repeated, b: Repeated) -> bool:
    """Whether two repeated measurements' min–max ranges overlap: then their difference is not larger
    than their spread, and the runs cannot be told apart on it."""
    if a.min is None or a.max is None or b.min is None or b.max is None:
        return False
    return a.min <= b.max and b.min <= a.max


def _spread(data: ArchitectureSummary | None, metric: Metric) -> Repeated | None:
    """The metric's repetitions in a run, when it has more than one."""
    found = metric.repeated(data) if data is not None and metric.repeated is not None else None
    return found if found is not None and found.n > 1 and found.median is not None else None


def _repeated_row(a: Repeated, b: Repeated, metric: Metric) -> list[str]:
    """Medians with their range, Δ of the medians, and "within noise" unless the ranges are apart."""
    delta, verdict = _change(a.median, b.median, metric)
    if within_noise(a, b):
        verdict = "within noise"
    return [_format_spread(a, metric), _format_spread(b, metric), delta, verdict]


def _format_spread(value: Repeated, metric: Metric) -> str:
    return spread(value.median, value.min, value.max, value.n, metric.spec, metric.unit)


def _recovered(data: ArchitectureSummary | None) -> bool | None:
    return data.stress.recovery.recovered if data and data.stress and data.stress.recovery else None


QUEUE_METRICS = (  # within the summary's attribution.queue: the queue's waterfall, its two ends
    Metric("seed-faithful: p50 at 1 user", lambda q: q.baseline.p50_ms if q.baseline else None),
    Metric("tuned: p50 at 1 user", lambda q: q.tuned.p50_ms if q.tuned else None),
    Metric("ideal p50 (tuned model calls)", lambda q: q.ideal_p50_ms, judged=False),
    Metric("tuned: over the ideal p50 (no factor explains it)", lambda q: q.ideal_gap_tuned_ms),
    Metric(
        "seed-faithful: tasks/s",
        lambda q: q.baseline.max_rps if q.baseline else None,
        unit="tasks/s",
        lower_is_better=False,
    ),
    Metric(
        "tuned: tasks/s",
        lambda q: q.tuned.max_rps if q.tuned else None,
        unit="tasks/s",
        lower_is_better=False,
    ),
    Metric(
        "seed-faithful: server CPU per task",
        lambda q: q.baseline.cpu_ms_per_request if q.baseline else None,
        spec=".2f",
    ),
    Metric(
        "tuned: server CPU per task", lambda q: q.tuned.cpu_ms_per_request if q.tuned else None, spec=".2f"
    ),
)

CONTROL_METRICS = (  # within the summary's control: the async handler against the minimal control
    Metric(
        "throughput ÷ the control's (median of the repetitions)",
        lambda c: c.ratio_median,
        spec=".2f",
        unit="×",
        lower_is_better=False,
    ),
    Metric("p50 at 1 user − the control's", lambda c: c.p50_diff_ms, spec=".2f"),
    Metric("the handler's CPU per request", lambda c: c.product_cpu_ms, spec=".3f"),
    Metric("the control's CPU per request", lambda c: c.control_cpu_ms, spec=".3f", judged=False),
)


BATCHED_METRICS = (  # within the summary's comparison: the batching handler against the async one
    Metric(
        "max sustained throughput ÷ async's",
        lambda c: c.sustained_rps_ratio,
        spec=".2f",
        unit="×",
        lower_is_better=False,
    ),
    Metric(
        "ramp's highest throughput ÷ async's",
        lambda c: c.ramp_peak_ratio,
        spec=".2f",
        unit="×",
        lower_is_better=False,
    ),
    Metric("p50 at 1 user − async's", lambda c: c.one_user_p50_cost_ms, spec=".1f"),
    Metric("the ideals' difference", lambda c: c.ideal_p50_cost_ms, spec=".1f", judged=False),
)


def batched_blocks(a: Summary, b: Summary) -> list[Block]:
    """The batching handler against the async one, when both runs measured it."""
    comparisons = [summary.comparison.batched_vs_async for summary in (a, b)]
    return section_blocks(
        "Batching against async",
        "batched vs async",
        "no batched–async comparison",
        comparisons,
        BATCHED_METRICS,
        a,
        b,
    )


def gap_blocks(a: Summary, b: Summary) -> list[Block]:
    """The attribution's sync–async gap at seed-faithful and tuned settings, when both runs measured it."""
    gaps = [summary.attribution.gap if summary.attribution else None for summary in (a, b)]
    return section_blocks(
        "Attribution: the sync–async gap", "gap", "no attribution of the gap", gaps, GAP_METRICS, a, b
    )


def queue_blocks(a: Summary, b: Summary) -> list[Block]:
    """The queue's waterfall, its seed-faithful and tuned ends, when both runs measured it."""
    queues = [summary.attribution.queue if summary.attribution else None for summary in (a, b)]
    return section_blocks(
        "Attribution: the queue's waterfall", "queue", "no queue waterfall", queues, QUEUE_METRICS, a, b
    )


def control_blocks(a: Summary, b: Summary) -> list[Block]:
    """The async handler against the minimal control, when both runs measured it."""
    controls = [summary.control for summary in (a, b)]
    return section_blocks(
        "The async handler against the minimal control",
        "control",
        "no control comparison",
        controls,
        CONTROL_METRICS,
        a,
        b,
    )


def section_blocks(
    title: str, what: str, absent: str, values: list[Any], metrics: tuple[Metric, ...], a: Summary, b: Summary
) -> list[Block]:
    """A heading and a table of ``metrics`` over the two runs' ``values`` (one part of each summary); nothing
    when neither run has it, one sentence when only one has."""
    if all(value is None for value in values):
        return []
    heading = Heading(2, title)
    if values[0] is None or values[1] is None:
        lacking = "A" if values[0] is None else "B"
        return [heading, Paragraph(f"Run {lacking} has {absent}: nothing to compare.")]
    rows = []
    for metric in metrics:
        value_a, value_b = _value(values[0], metric), _value(values[1], metric)
        if value_a is not None or value_b is not None:
            rows.append(
                [
                    metric.label,
                    _format(value_a, metric),
                    _format(value_b, metric),
                    *_change(value_a, value_b, metric),
                ]
            )
    header = [what, f"A: {a.run_id}", f"B: {b.run_id}", "Δ", "B vs A"]
    return [heading, Table(header, rows)]


def _value(data: Any, metric: Metric) -> float | None:
    value = metric.value(data) if data is not None else None
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


def _improvement_sentence(a: Summary, b: Summary) -> str:
    parts = []
    for name, summary in (("A", a), ("B", b)):
        improvement = summary.comparison.timeit_improvement_pct
        if (
            improvement is None
            or improvement.percent is None
            or improvement.low is None
            or improvement.high is None
        ):
            parts.append(f"run {name}: not measured")
            continue
        parts.append(
            f"run {name}: async {improvement.percent:.1f}% faster than sync on average "
            f"(interval {improvement.low:.1f}% to {improvement.high:.1f}%)"
        )
    return "; ".join(parts) + "."


def environment_differences(env_a: Environment | None, env_b: Environment | None) -> list[str]:
    """The machine, commit, Python and settings values that differ between two runs' environments."""
    if env_a is None or env_b is None:
        return ["environment.json is missing from at least one run: the machines cannot be compared."]
    lines = []
    for label, value in (
        ("CPU", lambda e: e.machine.cpu_model if e.machine else None),
        ("cores", lambda e: e.machine.cores if e.machine else None),
        ("memory (GB)", lambda e: e.machine.memory_gb if e.machine else None),
        ("OS", lambda e: e.machine.os if e.machine else None),
        ("kernel", lambda e: e.machine.kernel if e.machine else None),
        ("Python", lambda e: e.python),
        ("git commit", lambda e: e.git_commit),
    ):
        before, after = value(env_a), value(env_b)
        if before != after:
            lines.append(f"{label}: {before} → {after}")
    settings_a, settings_b = env_a.settings or {}, env_b.settings or {}
    for key in sorted(set(settings_a) | set(settings_b)):
        if settings_a.get(key) != settings_b.get(key):
            lines.append(f"setting {key}: {settings_a.get(key)} → {settings_b.get(key)}")
    return lines
