"""The soak's decisions, as plain functions: the windows it compares, a fitted slope, a change, and whether
a process's memory, descriptors, threads and connections hold steady under a constant load.

A soak of ``duration_s`` seconds is cut into:

- the **warm-up** ``[0, warmup_s)``: pools fill, caches warm, lazily made threads appear; left out of
  every number below;
- the **first window** ``[warmup_s, warmup_s + window_s)`` ("the first minute") and the **last window**
  ``[duration_s − window_s, duration_s]`` ("the last minute");
- the **first half** of what follows the warm-up, ``[warmup_s, (warmup_s + duration_s) / 2)``.

Per process and metric (:func:`judge`): the median in each window, the change between them in % of the
first, and a least-squares slope (per minute) over every sample after the warm-up. The verdicts:

- **RSS**: steady when it grew by less than ``RSS_GROWTH_LIMIT`` (10 %) from the first window's median to
  the last window's median;
- **counts** (open descriptors, threads, TCP connections): flat when the last window's median is at most
  the highest value of the first half plus a slack of ``max(COUNT_SLACK, COUNT_SLACK_SHARE × that
  maximum)`` — 2, or 10 % for counts above 20. A count that steps up once to a new level and stays there
  is flat: a pool, or the load generator's connections, filling to a peak of demand (a Poisson burst, a
  slow moment) in the first minutes is not a leak. A count still climbing in the second half is not flat.

A process without a sample in both windows (it started late or exited during the soak) is not judged.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

RSS_GROWTH_LIMIT = 0.10
COUNT_SLACK = 2
COUNT_SLACK_SHARE = 0.10
MINUTE_S = 60.0


@dataclass(frozen=True)
class Windows:
    """The parts of a soak that are compared (seconds since its start)."""

    duration_s: float
    warmup_s: float
    window_s: float

    @property
    def first(self) -> tuple[float, float]:
        return self.warmup_s, self.warmup_s + self.window_s

    @property
    def last(self) -> tuple[float, float]:
        return self.duration_s - self.window_s, self.duration_s

    @property
    def first_half(self) -> tuple[float, float]:
        return self.warmup_s, (self.warmup_s + self.duration_s) / 2


def soak_windows(duration_s: float, warmup_s: float, window_s: float) -> Windows:
    """The windows of a soak of ``duration_s``: the warm-up at most half of it, each window at most half
    of what remains after the warm-up (so the first and the last window never overlap)."""
    if duration_s <= 0:
        raise ValueError(f"a soak lasts a positive time (got {duration_s})")
    warmup = min(max(warmup_s, 0.0), duration_s / 2)
    window = min(max(window_s, 0.0), (duration_s - warmup) / 2)
    if window <= 0:
        raise ValueError(f"the comparison windows must be positive (got {window_s})")
    return Windows(duration_s, warmup, window)


def within(samples: Sequence[tuple[float, float]], low: float, high: float) -> list[float]:
    """The values of the ``(t, value)`` samples with ``low <= t < high``."""
    return [value for t, value in samples if low <= t < high]


def slope_per_minute(samples: Sequence[tuple[float, float]]) -> float | None:
    """The least-squares slope of ``(t seconds, value)`` samples, per minute; None with fewer than two
    distinct times."""
    if len({t for t, _ in samples}) < 2:
        return None
    times, values = zip(*samples, strict=True)
    return statistics.linear_regression(times, values).slope * MINUTE_S


def change_pct(first: float | None, last: float | None) -> float | None:
    """``last`` against ``first`` in % of ``first``; None when either is missing or ``first`` is not
    positive."""
    if first is None or last is None or first <= 0:
        return None
    return (last - first) / first * 100.0


def rss_steady(first_median: float | None, last_median: float | None) -> bool | None:
    """Whether memory grew by less than ``RSS_GROWTH_LIMIT`` between the windows (None: not judged)."""
    change = change_pct(first_median, last_median)
    return None if change is None else change < RSS_GROWTH_LIMIT * 100.0


def count_slack(reference_max: float) -> float:
    """How far above the first half's maximum a count may sit and still be flat."""
    return max(COUNT_SLACK, COUNT_SLACK_SHARE * reference_max)


def count_flat(first_half: Sequence[float], last: Sequence[float]) -> bool | None:
    """Whether a count held: the last window's median is at most the first half's maximum plus
    :func:`count_slack` (None: no sample in either)."""
    if not first_half or not last:
        return None
    ceiling = max(first_half)
    return statistics.median(last) <= ceiling + count_slack(ceiling)


@dataclass(frozen=True)
class Growth:
    """One metric of one process over a soak (see the module's docstring)."""

    first_median: float | None
    first_half_max: float | None
    last_median: float | None
    change_pct: float | None
    slope_per_min: float | None
    steady: bool | None  # None: not judged (a window without samples)


def judge(samples: Sequence[tuple[float, float]], windows: Windows, kind: str) -> Growth:
    """The growth of one metric of one process: ``samples`` are ``(t, value)``, t in seconds since the
    soak's start; ``kind`` ``"rss"`` (the 10 % rule) or ``"count"`` (the flat rule)."""
    if kind not in ("rss", "count"):
        raise ValueError(f"kind must be 'rss' or 'count' (got {kind!r})")
    clean = [(t, v) for t, v in samples if math.isfinite(t) and math.isfinite(v)]
    first, last = within(clean, *windows.first), within(clean, *windows.last)
    last += [v for t, v in clean if t == windows.duration_s]  # the last window includes the soak's end
    half = within(clean, *windows.first_half)
    first_median = statistics.median(first) if first else None
    last_median = statistics.median(last) if last else None
    steady = rss_steady(first_median, last_median) if kind == "rss" else count_flat(half, last)
    return Growth(
        first_median=first_median,
        first_half_max=max(half) if half else None,
        last_median=last_median,
        change_pct=change_pct(first_median, last_median),
        slope_per_min=slope_per_minute(
            [(t, v) for t, v in clean if windows.warmup_s <= t <= windows.duration_s]
        ),
        steady=steady if first and last else None,
    )


def verdict(*steady: bool | None) -> bool | None:
    """A process's verdict from its metrics': False when any grew, True when all were judged steady,
    else None (not judged)."""
    if any(value is False for value in steady):
        return False
    if steady and all(value is True for value in steady):
        return True
    return None
