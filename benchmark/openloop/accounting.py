"""What one rate's records say: the latencies (corrected and not), how late the generator was, the errors,
the achieved rate, whether the generator held the rate; and the highest rate that stays under a p99 limit.

Latencies go into an HdrHistogram (µs, 3 significant digits: every percentile within 0.1 %). Which
requests count:

- **latency**: every request that ended — with a valid score, an error answer, or given up at the
  timeout — because a user waits that long whatever the request ended with. The **corrected** latency is
  from the scheduled send time (coordinated-omission-free: a stall delays every request scheduled during
  it, and a wait for a free connection counts, as it would for a real user); the **uncorrected** one from
  the actual send (what a closed-loop tool reports). Errors are counted beside: a rate with more than
  ``MAX_ERROR_RATIO`` of them does not count in :func:`max_rate_under_limit`.
- **achieved rate**: valid answers per second of the schedule.
- **held**: the generator kept the schedule — it issued every scheduled request and its send lag
  (issued − scheduled) stayed, at p99, at most ``HOLD_LAG_P99_MS`` or ``HOLD_LAG_SHARE`` of the rate's
  corrected p99, whichever is larger. The send lag is the generator's own lateness (a busy event loop),
  not the wait for a connection; it adds to every corrected latency, so a rate the generator could not
  hold measures the generator, and is flagged instead of reported as the server's. A generator that keeps
  up shows 0.8–1.4 ms (uvloop's timers tick in ms; 2,000 to 12,000 req/s against a trivial server, the
  generator on one core of the 2-core development machine). On two cores shared with the stack it is
  later when the stack saturates the machine: a few ms of lag on a 100 ms p99 is a small part of what
  is measured, 5 ms on a 10 ms p99 is not — hence the share.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

from benchmark.openloop.records import RequestRecord
from benchmark.summary import OpenLoopRate

HOLD_LAG_P99_MS = 5.0
HOLD_LAG_SHARE = 0.1
MAX_ERROR_RATIO = 0.01
HIGHEST_US = 3_600_000_000  # one hour: anything slower is recorded as one hour
SIGNIFICANT_DIGITS = 3


def histogram(latencies_s: Iterable[float]) -> HdrHistogram:
    """An HdrHistogram of latencies in seconds, recorded in µs (clamped to [1 µs, one hour])."""
    hist = HdrHistogram(1, HIGHEST_US, SIGNIFICANT_DIGITS)
    for seconds in latencies_s:
        hist.record_value(min(max(round(seconds * 1e6), 1), HIGHEST_US))
    return hist


def percentile_ms(hist: HdrHistogram, percentile: float) -> float | None:
    """The percentile (0–100) in ms, or None for an empty histogram."""
    if hist.get_total_count() == 0:
        return None
    return float(hist.get_value_at_percentile(percentile)) / 1000.0


def max_ms(hist: HdrHistogram) -> float | None:
    return float(hist.get_max_value()) / 1000.0 if hist.get_total_count() else None


def corrected_s(records: Iterable[RequestRecord]) -> list[float]:
    """done − scheduled of every request that ended."""
    return [r.done_s - r.scheduled_s for r in records if r.done_s is not None]


def uncorrected_s(records: Iterable[RequestRecord]) -> list[float]:
    """done − sent of every request that ended after it was sent."""
    return [r.done_s - r.sent_s for r in records if r.done_s is not None and r.sent_s is not None]


def send_lags_s(records: Iterable[RequestRecord]) -> list[float]:
    """issued − scheduled of every issued request."""
    return [r.issued_s - r.scheduled_s for r in records if r.issued_s is not None]


def held(
    send_lag_p99_ms: float | None, issued: int, scheduled: int, p99_ms: float | None = None
) -> bool | None:
    """Whether the generator kept the schedule (see the module's docstring); None without a request."""
    if scheduled == 0 or send_lag_p99_ms is None:
        return None
    allowed = max(HOLD_LAG_P99_MS, HOLD_LAG_SHARE * (p99_ms or 0.0))
    return issued >= scheduled and send_lag_p99_ms <= allowed


def rate_result(
    records: Sequence[RequestRecord],
    offered_rps: float,
    duration_s: float,
    arrivals: str = "poisson",
    scheduled: int | None = None,
) -> OpenLoopRate:
    """One rate's records as its summary. ``scheduled``: the requests the schedule held (default: the
    records); a scheduled request without a record counts as an error without an answer."""
    requests = max(scheduled or 0, len(records))
    valid = sum(1 for r in records if r.ok)
    corrected, uncorrected = histogram(corrected_s(records)), histogram(uncorrected_s(records))
    lags = send_lags_s(records)
    lag_p99 = percentile_ms(histogram(lags), 99.0) if lags else None
    p99 = percentile_ms(corrected, 99.0)
    return OpenLoopRate(
        offered_rps=offered_rps,
        arrivals=arrivals,
        duration_s=duration_s,
        requests=requests,
        completed=sum(1 for r in records if r.answered),
        errors=requests - valid,
        achieved_rps=valid / duration_s if duration_s > 0 else None,
        p50_ms=percentile_ms(corrected, 50.0),
        p90_ms=percentile_ms(corrected, 90.0),
        p99_ms=p99,
        p999_ms=percentile_ms(corrected, 99.9),
        max_ms=max_ms(corrected),
        uncorrected_p50_ms=percentile_ms(uncorrected, 50.0),
        uncorrected_p99_ms=percentile_ms(uncorrected, 99.0),
        uncorrected_max_ms=max_ms(uncorrected),
        send_lag_p99_ms=lag_p99,
        held=held(lag_p99, len(lags), requests, p99),
    )


def counts(rate: OpenLoopRate, p99_limit_ms: float) -> bool:
    """Whether a rate counts as served under the limit: held, at most 1 % errors, p99 under the limit."""
    return (
        rate.held is True
        and rate.requests > 0
        and rate.errors <= MAX_ERROR_RATIO * rate.requests
        and rate.p99_ms is not None
        and rate.p99_ms < p99_limit_ms
    )


def max_rate_under_limit(rates: Iterable[OpenLoopRate], p99_limit_ms: float | None) -> float | None:
    """The highest offered rate of the sweep's lower part that counts (:func:`counts`): from the lowest
    rate up, until the first that does not (the knee; a higher rate that happens to pass again past it is
    noise, not capacity). None when the lowest does not count (or there is no limit)."""
    if p99_limit_ms is None:
        return None
    best = None
    for rate in sorted(rates, key=lambda r: r.offered_rps):
        if not counts(rate, p99_limit_ms):
            break
        best = rate.offered_rps
    return best


def rate_at_limit(rates: Iterable[OpenLoopRate], p99_limit_ms: float | None) -> float | None:
    """The offered rate at which the p99 reaches the limit: between the knee (:func:`max_rate_under_limit`)
    and the next rate, where the p99 crossed it, by linear interpolation of the p99 against the rate.

    A continuous number, so repetitions and runs whose sweeps offered other rates (fractions of another
    measured capacity) compare. The knee itself when the next rate failed for another reason (errors, the
    generator late) or the sweep never crossed the limit (then a lower bound); None when the lowest rate
    already failed."""
    ordered = sorted(rates, key=lambda r: r.offered_rps)
    knee = max_rate_under_limit(ordered, p99_limit_ms)
    if knee is None or p99_limit_ms is None:
        return None
    index = next(i for i, rate in enumerate(ordered) if rate.offered_rps == knee)
    if index + 1 == len(ordered):
        return knee
    below, above = ordered[index], ordered[index + 1]
    crossed = above.held is True and above.errors <= MAX_ERROR_RATIO * above.requests
    if not crossed or below.p99_ms is None or above.p99_ms is None or above.p99_ms <= below.p99_ms:
        return knee
    share = (p99_limit_ms - below.p99_ms) / (above.p99_ms - below.p99_ms)
    return below.offered_rps + min(max(share, 0.0), 1.0) * (above.offered_rps - below.offered_rps)


@dataclass(frozen=True)
class ClosedLoopStats:
    """The closed loop's measured window: requests done in it, their rate, the p50 of the valid ones."""

    requests: int
    rps: float | None
    p50_ms: float | None


def closed_loop_stats(
    records: Iterable[RequestRecord], warmup_s: float, duration_s: float
) -> ClosedLoopStats:
    """Requests done within ``[warmup_s, warmup_s + duration_s]`` (as Locust's windows count them: every
    request, valid or not, for the rate; the valid ones for the latency, from their send)."""
    window = [r for r in records if r.done_s is not None and warmup_s <= r.done_s <= warmup_s + duration_s]
    valid = histogram(r.done_s - r.scheduled_s for r in window if r.ok and r.done_s is not None)
    return ClosedLoopStats(
        requests=len(window),
        rps=len(window) / duration_s if duration_s > 0 else None,
        p50_ms=percentile_ms(valid, 50.0),
    )
