"""The batching handler against the async one (doc/batching.md): computed from the two architectures'
sections of the same run, so nothing here opens a file.

What batching is for: more throughput at the breaking point from a model whose cost per call is mostly
fixed; what it costs: up to ``BATCH_MAX_WAIT_MS`` at one user, where a batch never fills. Both come from
the decisive measurements (the sustained phase at each architecture's own breaking users, the 1-user
phase), as the medians of their repetitions when there are several; the ramps' peaks give a second,
single-run view of the throughput. The repetitions interleave the architectures (sync, async, batched,
queue, then again), so repetition k of batched and of async ran minutes apart on the same machine: their
ratio (or difference) per k, as median and min–max, is the spread shown beside the headline value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from benchmark.analysis.differs import architecture_differs
from benchmark.analysis.repeats import repeated
from benchmark.summary import ArchitectureSummary, BatchedVsAsync, Differs, Repeated
from scoring_bench.core.settings import Settings

BATCHED, ASYNC, SYNC = "batched", "async", "sync"


def headline_differs(archs: Iterable[str], settings: Settings | None) -> list[Differs] | None:
    """What differs in each of the headline's comparisons, from the run's recorded settings: every
    architecture against sync, then batched against async. Not judged (each architecture runs at its own
    tuned default, a legitimate choice): the report shows the diff beside the per-core figures. None
    without recorded settings."""
    if settings is None:
        return None
    present = list(archs)
    pairs = [(SYNC, arch) for arch in present if arch != SYNC and SYNC in present]
    if BATCHED in present and ASYNC in present:
        pairs.append((BATCHED, ASYNC))
    return [architecture_differs(settings, a, b, judged=False) for a, b in pairs]


def batched_vs_async(
    archs: dict[str, ArchitectureSummary], settings: Settings | None = None
) -> BatchedVsAsync | None:
    """The comparison, or None unless the run measured both handlers (any of their sections)."""
    batched, other = archs.get(BATCHED), archs.get(ASYNC)
    if batched is None or other is None:
        return None
    result = BatchedVsAsync(
        sustained_rps_ratio=_ratio(max_sustained_rps(batched), max_sustained_rps(other)),
        sustained_rps_ratio_range=_paired(_sustained_values(batched), _sustained_values(other), _ratio),
        ramp_peak_ratio=_ratio(_peak(batched), _peak(other)),
        batched_breaking_users=batched.sustained.users if batched.sustained else None,
        async_breaking_users=other.sustained.users if other.sustained else None,
        one_user_p50_cost_ms=_minus(one_user_p50_ms(batched), one_user_p50_ms(other)),
        one_user_p50_cost_range_ms=_paired(_p50_values(batched), _p50_values(other), _minus),
        ideal_p50_cost_ms=_minus(
            batched.ideal.p50_ms if batched.ideal else None, other.ideal.p50_ms if other.ideal else None
        ),
        batch_max_wait_ms=settings.batch_max_wait_ms if settings is not None else None,
        batch_max_size=settings.batch_max_size if settings is not None else None,
        differs=architecture_differs(settings, BATCHED, ASYNC, judged=False)
        if settings is not None
        else None,
    )
    measured = (result.sustained_rps_ratio, result.ramp_peak_ratio, result.one_user_p50_cost_ms)
    return result if any(value is not None for value in measured) else None


def max_sustained_rps(data: ArchitectureSummary) -> float | None:
    """The sustained throughput at the breaking point: the repetitions' median, else the one measurement
    (as the headline and the targets take it)."""
    median = data.repeats.sustained_rps.median if data.repeats and data.repeats.sustained_rps else None
    return median if median is not None else (data.sustained.rps if data.sustained else None)


def one_user_p50_ms(data: ArchitectureSummary) -> float | None:
    """The p50 at one user: the repetitions' median, else the 1-user phase's."""
    median = data.repeats.one_user_p50_ms.median if data.repeats and data.repeats.one_user_p50_ms else None
    return median if median is not None else (data.one_user.p50_ms if data.one_user else None)


def _sustained_values(data: ArchitectureSummary) -> list[float | None]:
    return list(data.repeats.sustained_rps.values) if data.repeats and data.repeats.sustained_rps else []


def _p50_values(data: ArchitectureSummary) -> list[float | None]:
    return list(data.repeats.one_user_p50_ms.values) if data.repeats and data.repeats.one_user_p50_ms else []


def _peak(data: ArchitectureSummary) -> float | None:
    return data.ramp.peak.rps if data.ramp and data.ramp.peak else None


def _paired(
    first: Sequence[float | None],
    second: Sequence[float | None],
    combine: Callable[[float | None, float | None], float | None],
) -> Repeated | None:
    """``combine`` of repetition k of each, for every k both have; None with fewer than two pairs (one
    pair is the headline value itself: no spread to show)."""
    pairs = [combine(a, b) for a, b in zip(first, second, strict=False)]
    if sum(value is not None for value in pairs) < 2:
        return None
    return repeated(pairs)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b is not None and b > 0 else None


def _minus(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None
