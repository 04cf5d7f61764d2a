"""The soak's section: per architecture the load it held, the p99 of its first and last minute, and a
verdict per process of its path (RSS, open descriptors, threads, TCP connections), with the rules said in
the report itself (:mod:`benchmark.soak.growth`)."""

from __future__ import annotations

from pathlib import Path

from benchmark.analysis.phases import OTHERS_PERCENT
from benchmark.report.blocks import Block, Heading, Image, Paragraph, Table
from benchmark.report.format import DASH, ms, number, rps
from benchmark.report.plot_captions import PLOT_CAPTIONS
from benchmark.soak.growth import COUNT_SLACK, COUNT_SLACK_SHARE, RSS_GROWTH_LIMIT
from benchmark.summary import Soak, SoakArchitecture, SoakGrowth, SoakProcess

SOAK_TITLE = "Soak: does anything grow under a constant load?"
SOAK_PLOTS = ("soak", "soak_p99")  # shown in this section, not under "Plots"
TABLE_NOTE = (
    "Every process of each architecture's path: RSS as the first and the last minute's medians, their change "
    "and the fitted slope; a count as the first and the last minute's medians (⚠: not flat)."
)
METRIC_NAMES = {"rss_mb": "RSS", "fds": "descriptors", "threads": "threads", "connections": "connections"}


def rules(data: SoakArchitecture) -> str:
    """What the soak did and how it judges, in the report's words."""
    warmup, window = number(data.warmup_s, ".0f", "s"), number(data.window_s, ".0f", "s")
    return (
        f"Each architecture got a constant open-loop load (Poisson arrivals at one rate) for "
        f"{number(data.duration_s, '.0f', 's')}, while every process of its path — its server's main process "
        f"and workers, the model API it calls, Redis (and the queue's Celery worker) — was sampled every "
        f"{number(data.sample_interval_s, 'g', 's')}: resident memory (RSS), open file descriptors, threads "
        f"and TCP connections (sockets held, listening ones left out). The first {warmup} are a warm-up, "
        f"left out of every number; the first minute is the {window} after it, the last minute the soak's "
        f"last {window}. Slope: least squares over every sample after the warm-up. Verdicts: RSS holds when "
        f"it grew by less than {RSS_GROWTH_LIMIT * 100:.0f} % from the first minute's median to the last "
        f"minute's; a count is flat when the last minute's median is at most the highest value of the first "
        f"half (after the warm-up) plus {COUNT_SLACK} or {COUNT_SLACK_SHARE * 100:.0f} % of it, whichever is "
        f"larger — a count that steps up once to a new level (a pool filling to a peak of demand) and stays "
        f"there is flat, one still climbing in the second half is not. Latencies are from each request's "
        f"scheduled send time (free of coordinated omission)."
    )


def soak_blocks(soak: Soak | None, plot_paths: dict[str, Path]) -> list[Block]:
    if soak is None or not soak.architectures:
        return []
    first = next(iter(soak.architectures.values()))
    blocks: list[Block] = [Heading(2, SOAK_TITLE), Paragraph(rules(first))]
    for arch, data in soak.architectures.items():
        blocks += [Paragraph(load_sentence(arch, data)), Paragraph(verdict_sentence(arch, data))]
    blocks += [Paragraph(TABLE_NOTE), process_table(soak)]
    blocks += [Image(plot_paths[name], PLOT_CAPTIONS[name]) for name in SOAK_PLOTS if name in plot_paths]
    return blocks


def load_sentence(arch: str, data: SoakArchitecture) -> str:
    """The rate, where it came from, what the load did, and the first and last minute's p99."""
    if data.capacity_source == "set" and data.fraction is None:
        origin = "set by SOAK_RATE"
    else:
        how = {"ramp": "this run's ramp peak", "probe": "a closed-loop probe"}.get(
            data.capacity_source or "", ""
        )
        origin = f"{number(data.fraction, '.0%')} of {rps(data.capacity_rps)}" + (f", {how}" if how else "")
    text = f"{arch}: {rps(data.rate_rps)} for {number(data.duration_s, '.0f', 's')} ({origin})"
    load = data.load
    if load is None:
        return text + ": the load generator left no index, so no latency."
    text += f"; {load.requests:,} requests, {load.errors:,} errors"
    if load.held is False:
        text += f" — the generator could not keep the schedule (send lag p99 {ms(load.send_lag_p99_ms)})"
    first, last = data.first_window, data.last_window
    if first and last:
        text += (
            f". p99 {ms(first.p99_ms)} in the first minute, {ms(last.p99_ms)} in the last"
            f"{_change(data.p99_change_pct)}; p50 {ms(first.p50_ms)} and {ms(last.p50_ms)}"
        )
    text += "."
    busy = [
        f"{number(window.others_cpu_percent, '.0f')} % of a core in the {name} minute"
        for name, window in (("first", first), ("last", last))
        if window and window.others_cpu_percent is not None and window.others_cpu_percent > OTHERS_PERCENT
    ]
    if busy:
        text += f" ⚠ Processes outside the run took {' and '.join(busy)}: the stack had less CPU then."
    return text


def verdict_sentence(arch: str, data: SoakArchitecture) -> str:
    grew = [p for p in data.processes if p.steady is False]
    unjudged = [p for p in data.processes if p.steady is None]
    if not data.processes:
        return f"{arch}: no process of its path was sampled."
    if grew:
        names = "; ".join(f"{label(p)}: {', '.join(grown(p))}" for p in grew)
        text = f"⚠ {arch}: {len(grew)} of {len(data.processes)} processes grew — {names}."
    else:
        text = f"{arch}: every one of its {len(data.processes) - len(unjudged)} judged processes held steady."
    if unjudged:
        text += (
            " Not judged: "
            + "; ".join(f"{label(p)} ({p.note or 'a window without samples'})" for p in unjudged)
            + "."
        )
    return text


def grown(process: SoakProcess) -> list[str]:
    """What grew, with by how much: "RSS +14 % (1.2 MB/min)", "descriptors 40 → 95"."""
    parts = []
    for metric, name in METRIC_NAMES.items():
        growth: SoakGrowth = getattr(process, metric)
        if growth.steady is not False:
            continue
        if metric == "rss_mb":
            parts.append(
                f"{name} {_signed(growth.change_pct, '%')} ({_signed(growth.slope_per_min, 'MB/min', '.2f')})"
            )
        else:
            parts.append(
                f"{name} {_count(growth.first_median)} → {_count(growth.last_median)} "
                f"(the first half's highest: {_count(growth.first_half_max)})"
            )
    return parts


def label(process: SoakProcess) -> str:
    return f"{process.service} {process.role} (pid {process.pid})"


def process_table(soak: Soak) -> Table:
    header = [
        "architecture",
        "process",
        "RSS, first → last minute",
        "RSS change",
        "RSS slope",
        "descriptors",
        "threads",
        "TCP connections",
        "verdict",
    ]
    rows = [
        [
            arch,
            label(process),
            _rss(process.rss_mb),
            _signed(process.rss_mb.change_pct, "%"),
            _signed(process.rss_mb.slope_per_min, "MB/min", ".2f"),
            _counts(process.fds),
            _counts(process.threads),
            _counts(process.connections),
            _verdict(process),
        ]
        for arch, data in soak.architectures.items()
        for process in data.processes
    ]
    return Table(header, rows, text_columns=2)


def _rss(growth: SoakGrowth) -> str:
    return f"{number(growth.first_median, '.1f')} → {number(growth.last_median, '.1f', 'MB')}"


def _counts(growth: SoakGrowth) -> str:
    """First minute's median → last minute's median, with a mark when not flat."""
    text = f"{_count(growth.first_median)} → {_count(growth.last_median)}"
    return text + (" ⚠" if growth.steady is False else "")


def _count(value: float | None) -> str:
    return number(value, ".0f") if value is None or float(value).is_integer() else number(value, ".1f")


def _verdict(process: SoakProcess) -> str:
    if process.steady is None:
        return f"not judged ({process.note})" if process.note else "not judged"
    return (
        "steady"
        if process.steady
        else "GREW: "
        + ", ".join(name for metric, name in METRIC_NAMES.items() if getattr(process, metric).steady is False)
    )


def _signed(value: float | None, unit: str, spec: str = ".1f") -> str:
    return DASH if value is None else f"{value:+{spec}} {unit}"


def _change(pct: float | None) -> str:
    return "" if pct is None else f" ({pct:+.0f} %)"
