"""Per-core and per-process figures beside the absolute throughput (doc/methodology.md, "Per-core and
per-process figures"): whether "async serves 1.4× sync" is on the same CPU or not.

cores used = the stack services' CPU-seconds per second of the sustained window (CPU per request × req/s);
req/s per core used = req/s ÷ cores used = 1000 ÷ the CPU per request in ms; req/s per scoring process =
req/s ÷ the side's scoring processes. With repetitions each is taken per repetition (its own req/s and CPU)
and shown as the median and the min–max, as the headline shows the CPU per request.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmark.analysis.phases import scoring_processes
from benchmark.analysis.repeats import repeated
from benchmark.report.format import DASH, number, spread
from benchmark.summary import ArchitectureSummary, Sustained
from scoring_bench.core.settings import Settings

Pair = tuple[float | None, float | None]  # (req/s, CPU ms per request) of one measurement


def _pairs(data: ArchitectureSummary) -> list[Pair]:
    """(req/s, CPU ms per request) per repetition when repeated, else the sustained phase's one."""
    reps = data.repeats
    if reps and reps.sustained_rps and reps.server_cpu_ms_per_request and reps.sustained_rps.n > 1:
        return list(zip(reps.sustained_rps.values, reps.server_cpu_ms_per_request.values, strict=False))
    if data.sustained is None:
        return []
    return [(data.sustained.rps, data.sustained.server_cpu_ms_per_request)]


def processes(data: ArchitectureSummary, arch: str, settings: Settings | None) -> int | None:
    """The side's scoring processes: as the summary recorded them, else from the recorded settings."""
    if data.sustained is not None and data.sustained.scoring_processes is not None:
        return data.sustained.scoring_processes
    return scoring_processes(settings, arch)


def _figure(data: ArchitectureSummary, value: Callable[[Pair], float | None], spec: str, unit: str) -> str:
    values = [value(pair) for pair in _pairs(data)]
    summary = repeated(values)
    if summary is None or summary.median is None:
        return DASH
    return spread(summary.median, summary.min, summary.max, summary.n, spec, unit)


def cores_used(data: ArchitectureSummary) -> str:
    return _figure(
        data, lambda p: p[0] * p[1] / 1000 if p[0] is not None and p[1] is not None else None, ".2f", ""
    )


def per_core(data: ArchitectureSummary) -> str:
    return _figure(data, lambda p: 1000 / p[1] if p[1] else None, ".0f", "req/s")


def per_process(data: ArchitectureSummary, count: int | None) -> str:
    if not count:
        return DASH
    return _figure(data, lambda p: p[0] / count if p[0] is not None else None, ".1f", "req/s")


def _median(data: ArchitectureSummary, value: Callable[[Pair], float | None]) -> float | None:
    summary = repeated([value(pair) for pair in _pairs(data)])
    return summary.median if summary else None


def rps_value(data: ArchitectureSummary) -> float | None:
    return _median(data, lambda p: p[0])


def sustained_per_core(sustained: Sustained | None) -> float | None:
    """req/s per core used of the one sustained phase (a summary without the field: 1000 ÷ its CPU ms)."""
    if sustained is None:
        return None
    if sustained.rps_per_core is not None:
        return sustained.rps_per_core
    cpu = sustained.server_cpu_ms_per_request
    return 1000 / cpu if cpu else None


def per_core_value(data: ArchitectureSummary) -> float | None:
    """req/s per core used, the median over the repetitions."""
    return _median(data, lambda p: 1000 / p[1] if p[1] else None)


def cores_value(data: ArchitectureSummary) -> float | None:
    return _median(data, lambda p: p[0] * p[1] / 1000 if p[0] is not None and p[1] is not None else None)


def per_core_sentence(arch: str, data: ArchitectureSummary, count: int | None) -> str | None:
    """ "sync: 41 req/s per core used (its services used 0.95 cores for 39.2 req/s); 19.6 req/s per scoring
    process (2)." (medians over the repetitions)"""
    throughput, core = rps_value(data), per_core_value(data)
    if throughput is None or (core is None and not count):
        return None
    parts = []
    if core is not None:
        parts.append(
            f"{number(core, '.0f', 'req/s')} per core used (its services used "
            f"{number(cores_value(data), '.2f')} cores for {number(throughput, '.1f', 'req/s')})"
        )
    if count:
        parts.append(f"{number(throughput / count, '.1f', 'req/s')} per scoring process ({count})")
    return f"{arch}: " + "; ".join(parts) + "."


def ratio_sentence(
    arch: str,
    data: ArchitectureSummary,
    reference: ArchitectureSummary,
    counts: tuple[int | None, int | None],
) -> str | None:
    """ "async against sync: 3.9× the sustained throughput, 5.7× per core used, 7.7× per scoring process." """
    mine, theirs = rps_value(data), rps_value(reference)
    if mine is None or not theirs:
        return None
    parts = [f"{mine / theirs:.2f}× the sustained throughput"]
    core, other_core = per_core_value(data), per_core_value(reference)
    if core is not None and other_core:
        parts.append(f"{core / other_core:.2f}× per core used")
    if counts[0] and counts[1]:
        parts.append(f"{(mine / counts[0]) / (theirs / counts[1]):.2f}× per scoring process")
    return f"{arch} against sync: " + ", ".join(parts) + "."


def per_core_sentences(archs: dict[str, ArchitectureSummary], settings: Settings | None) -> list[str]:
    """One sentence per architecture, each one's ratios to sync, then how to read them."""
    counts = {arch: processes(data, arch, settings) for arch, data in archs.items()}
    sentences = [per_core_sentence(arch, data, counts[arch]) for arch, data in archs.items()]
    sync = archs.get("sync")
    if sync is not None:
        sentences += [
            ratio_sentence(arch, data, sync, (counts[arch], counts["sync"]))
            for arch, data in archs.items()
            if arch != "sync"
        ]
    present = [text for text in sentences if text]
    if present:
        present.append(PER_CORE_NOTE)
    return present


PER_CORE_NOTE = (
    "Cores used: the stack services' CPU-seconds per second of the sustained window (the handler, its model "
    "API, Redis; the queue's worker too); req/s per core used = req/s ÷ cores used. A ratio of absolute "
    "throughputs that the per-core figures do not repeat came from using more CPU, not from using it better."
)
