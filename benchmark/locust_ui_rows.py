"""The decisions of the web UI's Comparison tab (:mod:`benchmark.locust_ui`), free of Locust and Flask.

From snapshots of Locust's statistics entries (:class:`EntrySnapshot`) and the ideal latencies of the
stack's settings (:mod:`benchmark.ideal`): which entry stands for each architecture, its overhead over the
ideal, its p50 and req/s as ratios to sync's, and how each cell is shown. Importing Locust monkey-patches
the whole process with gevent, so this module does not: it is tested, and usable, without it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol, get_args

from benchmark.entries import entry_name, statistics_kind
from benchmark.ideal import IdealLatency, batched_ideal_latency_ms, ideal_latency_ms
from scoring_bench.core.settings import Architecture, Settings

TAB_KEY = "comparison"
ARCHITECTURES: tuple[Architecture, ...] = get_args(
    Architecture
)  # sync, async, batched, queue: the table's order
BASELINE = "sync"


class StatsEntryLike(Protocol):
    """What the tab reads of a ``locust.stats.StatsEntry``."""

    num_requests: int
    num_failures: int

    @property
    def current_rps(self) -> float: ...

    def get_response_time_percentile(self, percent: float) -> int: ...


@dataclass(frozen=True)
class EntrySnapshot:
    """One Locust statistics entry at one moment (percentiles ``None`` before its first request)."""

    requests: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    rps: float


@dataclass(frozen=True)
class ComparisonRow:
    """One architecture's line of the tab; a ratio is ``None`` where it has no meaning (sync's own row,
    sync not running, a zero denominator)."""

    architecture: str
    entry: str
    requests: int
    failures: int
    fail_pct: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    rps: float
    ideal_p50_ms: float
    ideal_p95_ms: float
    ideal_p99_ms: float
    ideal: str
    overhead_p50_ms: float | None
    overhead_p50_pct: float | None
    p50_vs_sync: float | None
    rps_vs_sync: float | None


def main_entry(arch: str) -> str:
    """The entry that stands for ``arch``'s requests (:func:`benchmark.entries.statistics_kind`)."""
    return entry_name(arch, statistics_kind(arch))


def ideals_for(settings: Settings) -> dict[str, IdealLatency]:
    """Each architecture's ideal latency under ``settings``, as the report computes it
    (:func:`benchmark.analysis.phases.ideal_section`): the model calls alone, concurrent or one after
    another as ``Settings.concurrent_model_calls`` says; batched's is its one-user ideal (a batch of one,
    sent after ``BATCH_MAX_WAIT_MS``)."""
    ideals: dict[str, IdealLatency] = {}
    for arch in ARCHITECTURES:
        if arch == "batched":
            ideals[arch] = batched_ideal_latency_ms(settings)
        else:
            ideals[arch] = ideal_latency_ms(settings, concurrent=settings.concurrent_model_calls(arch))
    return ideals


def snapshot(entry: StatsEntryLike) -> EntrySnapshot:
    """What the tab needs of one Locust entry: Locust's own percentiles (the Statistics tab's, since the
    start or the last reset) and its current req/s (the Statistics tab's "Current RPS")."""
    ran = entry.num_requests > 0
    return EntrySnapshot(
        requests=entry.num_requests,
        failures=entry.num_failures,
        p50_ms=float(entry.get_response_time_percentile(0.50)) if ran else None,
        p95_ms=float(entry.get_response_time_percentile(0.95)) if ran else None,
        p99_ms=float(entry.get_response_time_percentile(0.99)) if ran else None,
        rps=float(entry.current_rps),
    )


def comparison_rows(
    snapshots: Mapping[str, EntrySnapshot], ideals: Mapping[str, IdealLatency]
) -> list[ComparisonRow]:
    """One row per architecture whose main entry has had a request, in ``ARCHITECTURES`` order."""
    baseline = _ran(snapshots.get(main_entry(BASELINE)))
    rows = []
    for arch in ARCHITECTURES:
        name = main_entry(arch)
        snap = _ran(snapshots.get(name))
        if snap is None or arch not in ideals:
            continue
        ideal = ideals[arch]
        vs_sync = baseline is not None and arch != BASELINE
        rows.append(
            ComparisonRow(
                architecture=arch,
                entry=name,
                requests=snap.requests,
                failures=snap.failures,
                fail_pct=100.0 * snap.failures / snap.requests,
                p50_ms=snap.p50_ms,
                p95_ms=snap.p95_ms,
                p99_ms=snap.p99_ms,
                rps=snap.rps,
                ideal_p50_ms=ideal.p50_ms,
                ideal_p95_ms=ideal.p95_ms,
                ideal_p99_ms=ideal.p99_ms,
                ideal=ideal.description,
                overhead_p50_ms=None if snap.p50_ms is None else snap.p50_ms - ideal.p50_ms,
                overhead_p50_pct=_pct_over(snap.p50_ms, ideal.p50_ms),
                p50_vs_sync=_ratio(snap.p50_ms, baseline.p50_ms) if vs_sync and baseline else None,
                rps_vs_sync=_ratio(snap.rps, baseline.rps) if vs_sync and baseline else None,
            )
        )
    return rows


def _ran(snap: EntrySnapshot | None) -> EntrySnapshot | None:
    return snap if snap is not None and snap.requests > 0 else None


def _ratio(value: float | None, base: float | None) -> float | None:
    if value is None or not base:
        return None
    return value / base


def _pct_over(value: float | None, ideal: float) -> float | None:
    if value is None or ideal <= 0:
        return None
    return 100.0 * (value - ideal) / ideal


# --------------------------------------------------------------------------- how the tab shows a row

# (key, title) of the tab's columns; the web UI renders each row's value under its key as it is
TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("entry", "Entry"),
    ("requests", "# Requests"),
    ("failures", "# Fails"),
    ("p50_ms", "p50 (ms)"),
    ("p95_ms", "p95 (ms)"),
    ("p99_ms", "p99 (ms)"),
    ("rps", "Current RPS"),
    ("ideal_ms", "Ideal p50 / p95 / p99 (ms)"),
    ("overhead_p50", "p50 over ideal"),
    ("p50_vs_sync", "p50 ÷ sync"),
    ("rps_vs_sync", "RPS ÷ sync"),
    ("ideal", "Ideal: the model calls alone"),
)
NBSP = "\u00a0"  # keeps a cell's number and its unit on one line


def display_row(row: ComparisonRow) -> dict[str, str]:
    """``row`` as the tab's cells, formatted here (the UI would show a missing value as 0 if it rounded):
    Locust's percentiles are whole milliseconds (it rounds what it records to 2 significant digits above
    100 ms), so they are shown whole; the ideals to a tenth."""
    ideals = (row.ideal_p50_ms, row.ideal_p95_ms, row.ideal_p99_ms)
    return {
        "entry": row.entry,
        "requests": f"{row.requests:,}",
        "failures": f"{row.failures:,}{NBSP}({row.fail_pct:.1f}{NBSP}%)" if row.failures else "0",
        "p50_ms": _whole_ms(row.p50_ms),
        "p95_ms": _whole_ms(row.p95_ms),
        "p99_ms": _whole_ms(row.p99_ms),
        "rps": f"{row.rps:.1f}",
        "ideal_ms": f"{NBSP}/ ".join(f"{value:.1f}" for value in ideals),
        "overhead_p50": _overhead(row.overhead_p50_ms, row.overhead_p50_pct),
        "p50_vs_sync": _times(row.p50_vs_sync),
        "rps_vs_sync": _times(row.rps_vs_sync),
        "ideal": ideal_formula(row.ideal, row.architecture),
    }


def ideal_formula(description: str, arch: str) -> str:
    """The formula of an ideal's description (:mod:`benchmark.ideal`) without its explanation: "E[max of 2 ×
    U(40, 50)] = 46.7 ms"; batched's marked as its one-user ideal (a batch of one, after the batch wait)."""
    formula = description.split(": ", 1)[0].split("; ", 1)[0]
    return f"{formula}, at one user" if arch == "batched" else formula


def _whole_ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def _overhead(ms: float | None, pct: float | None) -> str:
    if ms is None:
        return "–"
    text = f"{ms:+.1f}{NBSP}ms"
    return f"{text} ({pct:+.0f}{NBSP}%)" if pct is not None else text


def _times(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio:.2f}×"


def template_args(base_path: str = "") -> dict[str, Any]:
    """What the web UI's page needs to show the tab, its table and its CSV link."""
    return {
        "extended_tabs": [{"title": "Comparison", "key": TAB_KEY}],
        "extended_tables": [
            {"key": TAB_KEY, "structure": [{"key": key, "title": title} for key, title in TABLE_COLUMNS]}
        ],
        "extended_csv_files": [{"href": f"{base_path}/comparison/csv", "title": "Download comparison CSV"}],
    }


def rows_csv(rows: Iterable[ComparisonRow]) -> str:
    """The rows as CSV, one column per :class:`ComparisonRow` field, numbers unformatted."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([f.name for f in fields(ComparisonRow)])
    for row in rows:
        writer.writerow(["" if value is None else value for value in asdict(row).values()])
    return out.getvalue()


def with_extended_stats(payload: dict[str, Any], rows: Iterable[ComparisonRow]) -> dict[str, Any]:
    """``/stats/requests``'s payload with the tab's rows in ``extended_stats`` (where the UI looks for
    them); another extension's entries there are kept."""
    others = [item for item in payload.get("extended_stats") or [] if item.get("key") != TAB_KEY]
    return {**payload, "extended_stats": [*others, {"key": TAB_KEY, "data": [display_row(r) for r in rows]}]}
