"""The "Attribution of the gap" section: the waterfall table and what it says about the sync–async gap,
the queue's own waterfall (benchmark/report/attribution_queue.py), then the fan-out, cpu-bound and
long-tail studies."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from benchmark.analysis.differs import MODEL_PROCESSES
from benchmark.report.attribution_differs import (
    fanout_differs_blocks,
    tail_differs_blocks,
    waterfall_differs_blocks,
)
from benchmark.report.attribution_queue import queue_waterfall_blocks
from benchmark.report.batching import batching_blocks
from benchmark.report.blocks import Block, Heading, Image, Paragraph, Table
from benchmark.report.differs import flag
from benchmark.report.format import difference, ms, number, positive, rps, times, whole_percent
from benchmark.report.plot_captions import PLOT_CAPTIONS
from benchmark.report.servers import servers_blocks
from benchmark.summary import (
    ArchitectureSummary,
    Attribution,
    Factor,
    Gap,
    GapAt,
    GapFactor,
    Level,
    SettingDifference,
    StudyEntry,
    Summary,
    WaterfallStep,
)

ATTRIBUTION_TITLE = "Attribution of the gap"
SAME_WITHIN = 0.10  # cpu study: throughputs within 10% of each other count as the same (single measurements)


def attribution_blocks(summary: Summary, plot_paths: dict[str, Path]) -> list[Block]:
    """The section: the waterfall table and what it says, fan-out, cpu, tail."""
    attribution = summary.attribution
    if attribution is None:
        if summary.experiments is not None and "attribution" in summary.experiments:
            note = "⚠ The attribution experiment left no measurements (attribution/measurements.csv)."
            return [Heading(2, ATTRIBUTION_TITLE), Paragraph(note)]
        return []
    blocks: list[Block] = [Heading(2, ATTRIBUTION_TITLE)]
    if attribution.missing:
        blocks.append(Paragraph("⚠ Planned but not measured: " + "; ".join(attribution.missing) + "."))
    if attribution.steps:
        blocks += [Paragraph(_waterfall_intro(attribution)), waterfall_table(attribution)]
        blocks += [Paragraph(text) for text in gap_sentences(summary)]
        blocks += waterfall_differs_blocks(attribution)
    elif attribution.architectures or attribution.queue is None:
        blocks.append(Paragraph("The waterfall study did not run: no attribution of the gap."))
    blocks += _plot_image(plot_paths, "waterfall")
    blocks += queue_waterfall_blocks(attribution.queue, attribution.load_users, plot_paths)
    blocks += batching_blocks(attribution.batching, plot_paths)
    if not attribution.architectures:  # the queue's waterfall alone
        return blocks
    blocks += [Heading(3, "Fan-out: more model calls per request"), *_fanout_blocks(attribution)]
    blocks += fanout_differs_blocks(attribution.fanout)
    blocks += _plot_image(plot_paths, "fanout")
    blocks += [Heading(3, "A CPU-bound model"), *_cpu_blocks(attribution)]
    blocks += [Heading(3, "A long tail"), *_tail_blocks(attribution)]
    blocks += tail_differs_blocks(attribution.tail)
    blocks += servers_blocks(attribution.servers)
    return blocks


def _plot_image(plot_paths: dict[str, Path], name: str) -> list[Block]:
    return [Image(plot_paths[name], PLOT_CAPTIONS[name])] if name in plot_paths else []


# --------------------------------------------------------------------------- the waterfall and the gap


def _waterfall_intro(attribution: Attribution) -> str:
    reps = max((step.reps for step in attribution.steps), default=0)
    users = attribution.load_users
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


def waterfall_table(attribution: Attribution) -> Table:
    archs = list(attribution.architectures)
    steps = {(step.step, step.architecture): step for step in attribution.steps}
    factors: Sequence[Factor] = (
        attribution.gap.factors
        if attribution.gap and attribution.gap.factors
        else _factors_of(attribution.steps)
    )
    rows = [_level_row("seed-faithful", attribution.baseline, archs)]
    for factor in factors:
        by_arch = [steps.get((factor.step, arch)) for arch in archs]
        shares = (factor.share_p50, factor.share_rps) if isinstance(factor, GapFactor) else (None, None)
        rows.append(
            [
                factor.factor,
                f"{factor.from_} → {factor.to}",
                *[_delta(step, "p50") for step in by_arch],
                *[_delta(step, "rps") for step in by_arch],
                whole_percent(shares[0]),
                whole_percent(shares[1]),
            ]
        )
    rows.append(_level_row("tuned", attribution.tuned, archs))
    header = [
        "factor",
        "from → to",
        *[f"{arch} p50 Δ" for arch in archs],
        *[f"{arch} req/s Δ" for arch in archs],
        "share of the latency gap's change",
        "share of the throughput gap's change",
    ]
    return Table(header, rows, text_columns=2)


def _factors_of(steps: Sequence[WaterfallStep]) -> list[Factor]:
    """The factors of the steps (when there is no gap: a single architecture)."""
    found: dict[int, Factor] = {}
    for step in steps:
        found.setdefault(step.step, step)
    return list(found.values())


def _level_row(label: str, levels: dict[str, Level] | None, archs: Sequence[str]) -> list[str]:
    values = [(levels or {}).get(arch) for arch in archs]
    return [
        f"{label} (level)",
        "",
        *[ms(v.p50_ms if v else None) for v in values],
        *[rps(v.max_rps if v else None) for v in values],
        "",
        "",
    ]


def _delta(step: WaterfallStep | None, metric: str) -> str:
    """A step's change of p50 (``metric`` "p50") or req/s ("rps"), † when within the noise."""
    if step is None:
        return number(None)
    if metric == "p50":
        text, noise = number(step.delta_p50_ms, "+.1f", "ms"), step.within_noise.p50_ms
    else:
        text, noise = number(step.delta_rps, "+.1f", "req/s"), step.within_noise.max_rps
    return text + " †" if noise else text


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
    attribution = summary.attribution
    gap = attribution.gap if attribution else None
    if attribution is None or gap is None:
        return ["Only one architecture was measured: there is no gap to attribute."]
    sentences = [_seed_sentence(gap.seed_faithful, attribution.load_users)]
    sentences += _change_sentences(gap, latency=True)
    sentences += _change_sentences(gap, latency=False)
    if any((f.share_p50 or 0) < 0 or (f.share_rps or 0) < 0 for f in gap.factors):
        sentences.append(
            "A negative share means the factor moved the gap against its overall change"
            + ("; the shares still add up to 100%." if _shares_add_up(gap.factors) else ".")
        )
    sentences.append(_tuned_sentence(gap.tuned, summary.architectures))
    return [text for text in sentences if text]


def _shares_add_up(factors: Sequence[GapFactor]) -> bool:
    """Whether every factor has both shares and each kind sums to 1 (every step was measured)."""
    for shares in ([f.share_p50 for f in factors], [f.share_rps for f in factors]):
        present = [s for s in shares if s is not None]
        if not shares or len(present) < len(shares) or abs(sum(present) - 1) > 1e-6:
            return False
    return True


def _seed_sentence(seed: GapAt | None, users: int | None) -> str:
    if seed is None or seed.latency_gap_ms is None:
        return "The seed-faithful step was not measured for both architectures."
    return (
        f"At seed-faithful settings async was {_faster(seed.latency_gap_ms)} at one user (p50 "
        f"{ms(seed.async_p50_ms)} against {ms(seed.sync_p50_ms)}) and served "
        f"{_throughput_phrase(seed.throughput_ratio)} ({rps(seed.async_rps)} against "
        f"{rps(seed.sync_rps)} at {users} users)."
    )


def _level_of(gap: GapAt | None, latency: bool) -> float | None:
    if gap is None:
        return None
    return gap.latency_gap_ms if latency else gap.throughput_difference_rps


def _change_sentences(gap: Gap, latency: bool) -> list[str]:
    """How the gap (latency or throughput) changed from seed-faithful to tuned, and which factor moved it."""
    what, unit, spec = (
        ("latency gap (sync − async p50)", "ms", "+.1f")
        if latency
        else ("throughput difference (async − sync)", "req/s", "+.0f")
    )
    before, after = _level_of(gap.seed_faithful, latency), _level_of(gap.tuned, latency)
    changes = [
        (f, change)
        for f in gap.factors
        if (change := f.gap_change_p50_ms if latency else f.gap_change_rps) is not None
    ]
    if before is None or after is None or not changes:
        return []
    top, top_change = max(changes, key=lambda pair: abs(pair[1]))
    top_share = top.share_p50 if latency else top.share_rps
    text = (
        f"The {what} went from {number(before, spec, unit)} at seed-faithful to "
        f"{number(after, spec, unit)} tuned ({number(after - before, spec, unit)}"
    )
    ratios = [
        gap.seed_faithful.throughput_ratio if gap.seed_faithful else None,
        gap.tuned.throughput_ratio if gap.tuned else None,
    ]
    if not latency and ratios[0] is not None and ratios[1] is not None:
        text += f"; async served {times(ratios[0])} then {times(ratios[1])} the sync throughput"
    text += ")."
    moved = f"{top.factor} ({top.from_} → {top.to})"
    moved = moved[:1].upper() + moved[1:]  # it starts a sentence
    if top_share is None:
        text += (
            f" That is no change, so there are no shares; the largest move was {moved}'s "
            f"{number(top_change, spec, unit)}."
        )
        return [text]
    text += (
        f" {moved} alone accounts for {whole_percent(top_share)} of that change "
        f"({number(top_change, spec, unit)})"
    )
    text += ": more than all of it, the other factors moved it back." if top_share > 1 else "."
    others = [
        f"{f.factor} {whole_percent(f.share_p50 if latency else f.share_rps)}"
        for f, _ in changes
        if f is not top
    ]
    return [text + (f" The others: {'; '.join(others)}." if others else "")]


def _tuned_sentence(tuned: GapAt | None, archs: dict[str, ArchitectureSummary]) -> str:
    if tuned is None or tuned.latency_gap_ms is None:
        return "The tuned step was not measured for both architectures."
    gap, ratio = tuned.latency_gap_ms, tuned.throughput_ratio
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
    ideal_sync, ideal_async = _ideal_p50(archs.get("sync")), _ideal_p50(archs.get("async"))
    if ideal_sync is not None and ideal_async is not None:
        text += (
            f" Waiting for the model calls concurrently instead of one after another saves "
            f"{ms(ideal_sync - ideal_async)} in the ideal case (ideal p50 {ms(ideal_sync)} against "
            f"{ms(ideal_async)})."
        )
    return text


def _ideal_p50(data: ArchitectureSummary | None) -> float | None:
    return data.ideal.p50_ms if data and data.ideal else None


# --------------------------------------------------------------------------- fan-out, cpu, tail


def _fanout_blocks(attribution: Attribution) -> list[Block]:
    by_models: dict[int, dict[str, StudyEntry]] = {}
    for entry in attribution.fanout:
        if entry.num_models is not None:
            by_models.setdefault(entry.num_models, {})[entry.architecture] = entry
    if not by_models:
        return [Paragraph("The fan-out study did not run.")]
    archs = list(dict.fromkeys(entry.architecture for entry in attribution.fanout))
    header = ["model calls", *[f"{arch} {what}" for arch in archs for what in ("p50", "ideal p50", "req/s")]]
    rows = []
    for n, by_arch in sorted(by_models.items()):
        entries = [by_arch.get(arch) for arch in archs]
        rows.append(
            [
                str(n),
                *[
                    cell
                    for e in entries
                    for cell in (
                        ms(e.p50_ms if e else None),
                        ms(e.ideal_p50_ms if e else None),
                        rps(e.rps if e else None),
                    )
                ],
            ]
        )
    return [Table(header, rows), *[Paragraph(text) for text in fanout_sentences(by_models, archs)]]


def _combined(entry: StudyEntry) -> str:
    return "maximum" if entry.concurrent else "sum"


def fanout_sentences(by_models: dict[int, dict[str, StudyEntry]], archs: Sequence[str]) -> list[str]:
    low, high = min(by_models), max(by_models)
    parts = [
        f"{arch} takes {ms(entry.p50_ms)} against an ideal {_combined(entry)} of {ms(entry.ideal_p50_ms)}"
        for arch in archs
        if (entry := by_models[high].get(arch))
    ]
    sentences = [f"With {high} model calls per request, " + "; ".join(parts) + " (p50 at one user)."]
    if low == high:
        return sentences
    growth = []
    for arch in archs:
        first, last = by_models[low].get(arch), by_models[high].get(arch)
        if first is None or last is None:
            continue
        grew = difference(last.p50_ms, first.p50_ms)
        ideal = difference(last.ideal_p50_ms, first.ideal_p50_ms)
        if grew is not None:
            growth.append(
                f"{arch}'s p50 grew by {number(grew, '.1f', 'ms')} (ideal: "
                f"{number(ideal, '.1f', 'ms')}) and its throughput went from "
                f"{rps(first.rps)} to {rps(last.rps)}"
            )
    if growth:
        sentences.append(f"From {low} to {high} calls, " + "; ".join(growth) + ".")
    return sentences


def _cpu_blocks(attribution: Attribution) -> list[Block]:
    rows = cpu_rows(attribution)
    if not rows:
        return [Paragraph("The cpu-bound study did not run.")]
    blocks: list[Block] = [Paragraph(cpu_measured(rows, attribution.load_users))]
    if any(sync and other for _, sync, other in rows):
        blocks.append(_cpu_table(rows))
    return blocks + [Paragraph(text) for text in cpu_sentences(rows)]


CpuRow = tuple[str, StudyEntry | None, StudyEntry | None]  # label, sync's entry, async's


def cpu_rows(attribution: Attribution) -> list[CpuRow]:
    """The study's configurations in order, sync's and async's entry of each (a summary without
    ``cpu_configs``: its one configuration)."""
    entries = attribution.cpu_configs or list((attribution.cpu or {}).values())
    steps: dict[int, dict[str, StudyEntry]] = {}
    for entry in entries:
        steps.setdefault(entry.step, {})[entry.architecture] = entry
    return [
        (next(iter(by_arch.values())).label, by_arch.get("sync"), by_arch.get("async"))
        for _, by_arch in sorted(steps.items())
    ]


def cpu_measured(rows: Sequence[CpuRow], users: int | None) -> str:
    """What the study measured: the sentence above its table."""
    models = next((e.num_models for _, *pair in rows for e in pair if e and e.num_models), None)
    calls = f" ({models} calls per request)" if models else ""
    load = f"{users} closed-loop users" if users else "closed-loop users"
    return (
        f"Sync against async with a model that burns CPU for its latency instead of sleeping{calls}, where "
        "the model API's CPU, not the handler's waiting, should bound the throughput. Row 1 runs both model "
        "APIs on the same number of processes (the larger of MODEL_SYNC_WORKERS and MODEL_ASYNC_WORKERS "
        "unless the run set one: sync's 2 by default, one per core on a 2-core machine) and leaves each "
        "architecture its own scoring processes; row 2 gives async's scoring handler as many processes as "
        f"sync's too. Throughput: {load}; p50: sequential requests at one user; one measurement each. "
        '"Settings that differ" are computed from the settings each row recorded.'
    )


def _cpu_table(rows: Sequence[CpuRow]) -> Table:
    header = [
        "row",
        "configuration",
        "settings that differ",
        "sync req/s",
        "async req/s",
        "async ÷ sync",
        "sync p50",
        "async p50",
    ]
    body = []
    for i, (label, sync, other) in enumerate(rows, start=1):
        differs = other.differs if other else None
        line = differs.line.removeprefix("differs: ") if differs else "–"
        flagged = flag(differs)
        body.append(
            [
                str(i),
                label,
                line + (f" ({flagged})" if flagged else ""),
                rps(sync.rps if sync else None),
                rps(other.rps if other else None),
                _cpu_ratio(sync, other),
                ms(sync.p50_ms if sync else None),
                ms(other.p50_ms if other else None),
            ]
        )
    return Table(header, body, text_columns=3)


def _cpu_ratio(sync: StudyEntry | None, other: StudyEntry | None) -> str:
    sync_rps, async_rps = positive(sync.rps if sync else None), positive(other.rps if other else None)
    return f"{async_rps / sync_rps:.2f}×" if sync_rps and async_rps else "–"  # near 1: two decimals


def _model_processes(entry: StudyEntry) -> SettingDifference | None:
    """The sides' model API process counts when they differ (what the study holds equal)."""
    settings = entry.differs.settings if entry.differs else []
    return next((diff for diff in settings if diff.name == MODEL_PROCESSES), None)


def cpu_sentences(rows: Sequence[CpuRow]) -> list[str]:
    measured = [(i, sync, other) for i, (_, sync, other) in enumerate(rows, start=1) if sync and other]
    if not measured:
        return ["The cpu-bound model was not measured for both architectures."]
    sentences = []
    for i, sync, other in measured:
        sync_rps, async_rps = positive(sync.rps), positive(other.rps)
        if not sync_rps or not async_rps:
            continue
        ratio = async_rps / sync_rps
        verdict = (
            "async does not help when the work is CPU"
            if abs(ratio - 1) <= SAME_WITHIN
            else f"async served {times(ratio)} the sync throughput"
        )
        unequal = _model_processes(other)
        where = f", with {unequal.a} sync and {unequal.b} async model API processes" if unequal else ""
        sentence = (
            f"Row {i}{where}: async {rps(async_rps)} against sync's {rps(sync_rps)} — {verdict} "
            f"(differences under {SAME_WITHIN:.0%} count as none: one measurement each)."
        )
        if unequal:
            sentence += (
                " ⚠ The model APIs ran on different numbers of processes: the ratio measures that as much "
                "as sync against async."
            )
        sentences.append(sentence)
    last, sync, other = measured[-1]
    p50, ideal_max, ideal_sum, sync_p50 = other.p50_ms, other.ideal_p50_ms, sync.ideal_p50_ms, sync.p50_ms
    if p50 is not None and ideal_max is not None and ideal_sum is not None and sync_p50 is not None:
        overlap = (
            "nearer the sum of the calls than their maximum: the calls did not overlap"
            if abs(p50 - ideal_sum) < abs(p50 - ideal_max)
            else "nearer the maximum of the calls than their sum: the calls overlapped"
        )
        sentences.append(
            f"At one user (row {last}) async took {ms(p50)} (ideal maximum {ms(ideal_max)}) and sync "
            f"{ms(sync_p50)} (ideal sum {ms(ideal_sum)}). Async's latency is {overlap} (calls that burn "
            "CPU overlap only on different model API processes: an event loop runs one at a time)."
        )
    return sentences or ["The cpu-bound measurements hold no numbers."]


def _tail_blocks(attribution: Attribution) -> list[Block]:
    if not attribution.tail:
        return [Paragraph("The long-tail study did not run.")]
    return [Paragraph(tail_sentence(attribution.tail))]


def tail_sentence(tail: dict[str, StudyEntry]) -> str:
    sync, other = tail.get("sync"), tail.get("async")
    if not sync or not other or sync.p99_ms is None or other.p99_ms is None:
        return "The long-tail study was not measured for both architectures."
    text = (
        f"With long-tailed model latency ({sync.model_latency}, {sync.num_models} calls per "
        f"request) sync's p99 at one user was {ms(sync.p99_ms)} (ideal p99 of the {_combined(sync)}: "
        f"{ms(sync.ideal_p99_ms)}) and async's {ms(other.p99_ms)} (ideal p99 of the "
        f"{_combined(other)}: {ms(other.ideal_p99_ms)})"
    )
    cut = sync.p99_ms - other.p99_ms
    if cut > 0:
        text += f": concurrent calls cut the p99 by {ms(cut)} ({cut / sync.p99_ms:.0%})"
    else:
        text += f": concurrent calls did not cut the p99 (async's was {ms(-cut)} higher)"
    ideal_cut = difference(sync.ideal_p99_ms, other.ideal_p99_ms)
    if ideal_cut is not None:
        text += f"; ideally they would cut it by {ms(ideal_cut)}"
    return text + f". The p50s: sync {ms(sync.p50_ms)}, async {ms(other.p50_ms)}."
