"""What one fault run's requests say, decided in plain functions (no I/O): how each request ended, the
per-second series, the baseline, the time to recover, and whether failures were fast.

Times are the generator's (:mod:`benchmark.openloop.records`): seconds since the start of the run's one
rate. A request's *wait* is done − scheduled (what a user arriving then waited, whatever the answer); a
failed answer's *response time* is done − sent (how long the stack took to say no; done − issued when it
never got a connection).

The series and the recovery look at the answers as they come back, as a dashboard of the service would:
each second's answers (valid ones: the throughput; failed ones by outcome, their share) and the p95 wait of
the answers completed in it. Recovery: from the end of the fault window to the start of the first window of
``RECOVERY_WINDOW_S`` whose answers hold fewer than ``RECOVERY_MAX_ERROR_RATIO`` errors and a p50 wait
within ``RECOVERY_P50_FACTOR`` × the p50 before the fault; windows are tried every ``RECOVERY_STEP_S``. A
window without answers (a stall) has not recovered, nor has one whose answers are the backlog of a stall.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchmark.openloop.records import NO_ANSWER, RequestRecord
from benchmark.stats import quantile_sorted

OK = "ok"
FAST_MARGIN_MS = 200.0  # a failed answer may take the timeout that bounds its failure plus this
RECOVERY_WINDOW_S = 2.0
RECOVERY_STEP_S = 0.25
RECOVERY_MAX_ERROR_RATIO = 0.01
RECOVERY_P50_FACTOR = 1.5
BASELINE_SKIP_S = 1.0  # the rate's first second (connections opening) is not the baseline
_HTTP = re.compile(r"HTTP (\d{3})")


def outcome(record: RequestRecord) -> str:
    """How a request ended: ``ok`` (a valid score), its HTTP status (``502``, ``503``, ``504``...),
    ``FAILURE`` (a queue task that failed), ``timeout`` (no answer in the client's time), ``no answer``
    (the connection failed or was reset), or ``invalid`` (an answer that is not a valid score)."""
    if record.ok:
        return OK
    status = record.status
    if status.isdigit():
        return "invalid" if status in ("200", "202") else status
    if status == "FAILURE":
        return status
    if status.startswith(NO_ANSWER):
        if found := _HTTP.search(status):
            return found.group(1)
        return "timeout" if "not done within" in status else "no answer"
    return "invalid"


def wait_ms(record: RequestRecord) -> float | None:
    return None if record.done_s is None else (record.done_s - record.scheduled_s) * 1000.0


def response_ms(record: RequestRecord) -> float | None:
    start = record.sent_s if record.sent_s is not None else record.issued_s
    return None if record.done_s is None or start is None else (record.done_s - start) * 1000.0


def quantile(values: Sequence[float], q: float) -> float | None:
    return quantile_sorted(sorted(values), q) if values else None


@dataclass(frozen=True)
class Second:
    """One second of a fault run, ``t_s`` seconds after the fault began (negative: before it): how many
    requests were scheduled in it, and the answers that came back in it."""

    t_s: int
    sent: int = 0  # requests scheduled in this second (the offered load)
    answered: int = 0  # answers completed in this second, valid or not
    ok_done: int = 0  # valid answers: the throughput
    errors: int = 0  # failed ones
    by_outcome: dict[str, int] = field(default_factory=dict)  # the failed ones' outcomes
    p95_ms: float | None = None  # the wait of the answers completed in this second

    @property
    def error_ratio(self) -> float | None:
        return self.errors / self.answered if self.answered else None


def per_second(records: Sequence[RequestRecord], fault_start_s: float, duration_s: float) -> list[Second]:
    """The load second by second, aligned on the fault's start (``fault_start_s``, in the rate's time):
    every whole second within the load (``duration_s`` long), empty ones as zeros."""
    first = math.ceil(-fault_start_s - 1e-9)
    last = math.floor(duration_s - fault_start_s + 1e-9)
    sent: Counter[int] = Counter()
    done: dict[int, list[RequestRecord]] = {t: [] for t in range(first, last)}
    for record in records:
        sent[math.floor(record.scheduled_s - fault_start_s)] += 1
        if record.done_s is not None and (t := math.floor(record.done_s - fault_start_s)) in done:
            done[t].append(record)
    seconds = []
    for t, group in done.items():
        failed = Counter(o for r in group if (o := outcome(r)) != OK)
        waits = [w for r in group if (w := wait_ms(r)) is not None]
        seconds.append(
            Second(
                t_s=t,
                sent=sent.get(t, 0),
                answered=len(group),
                ok_done=len(group) - sum(failed.values()),
                errors=sum(failed.values()),
                by_outcome=dict(sorted(failed.items())),
                p95_ms=quantile(waits, 95),
            )
        )
    return seconds


@dataclass(frozen=True)
class Baseline:
    """The steady load before the fault: its requests, error share and p50 wait."""

    requests: int
    error_ratio: float | None
    p50_ms: float | None


def baseline(records: Sequence[RequestRecord], fault_start_s: float) -> Baseline:
    """The requests done before the fault began (those in flight then are the fault's), from the rate's
    second second on (``BASELINE_SKIP_S``: connections opening)."""
    done_before = [r for r in records if r.done_s is not None and r.done_s < fault_start_s]
    before = [r for r in done_before if r.scheduled_s >= BASELINE_SKIP_S] or done_before
    waits = [w for r in before if r.ok and (w := wait_ms(r)) is not None]
    errors = sum(1 for r in before if not r.ok)
    return Baseline(len(before), errors / len(before) if before else None, quantile(waits, 50))


def window_recovered(answers: Sequence[RequestRecord], reference_p50_ms: float) -> bool:
    """Whether the answers of one window show a recovered stack: some came, fewer than
    ``RECOVERY_MAX_ERROR_RATIO`` failed, and their p50 wait is within ``RECOVERY_P50_FACTOR`` × the
    reference."""
    if not answers:
        return False
    errors = sum(1 for r in answers if not r.ok)
    if errors / len(answers) >= RECOVERY_MAX_ERROR_RATIO:
        return False
    p50 = quantile([w for r in answers if r.ok and (w := wait_ms(r)) is not None], 50)
    return p50 is not None and p50 <= RECOVERY_P50_FACTOR * reference_p50_ms


def recovery_s(
    records: Sequence[RequestRecord],
    fault_end_s: float,
    duration_s: float,
    reference_p50_ms: float | None,
    window_s: float = RECOVERY_WINDOW_S,
    step_s: float = RECOVERY_STEP_S,
) -> float | None:
    """Seconds from the fault's end (``fault_end_s``) to the start of the first recovered window of
    answers (see :func:`window_recovered`); None when no window within the load (``duration_s``)
    recovered, or there is no reference p50."""
    if reference_p50_ms is None:
        return None
    answered = sorted((r for r in records if r.done_s is not None), key=lambda r: r.done_s or 0.0)
    times = [r.done_s or 0.0 for r in answered]
    steps = 0
    while (start := fault_end_s + steps * step_s) + window_s <= duration_s + 1e-9:
        low, high = bisect_left(times, start), bisect_left(times, start + window_s)
        if window_recovered(answered[low:high], reference_p50_ms):
            return start - fault_end_s
        steps += 1
    return None


@dataclass(frozen=True)
class FailureSpeed:
    """How fast the failed answers came: how many were timed, their p99 response time, the limit, and
    whether they beat it (None: nothing failed)."""

    timed: int
    p99_ms: float | None
    limit_ms: float
    fast: bool | None


def failure_speed(
    records: Sequence[RequestRecord], limit_ms: float, refused_only: bool = False
) -> FailureSpeed:
    """The p99 response time of the failed answers against ``limit_ms``. ``refused_only`` (the queue):
    only the submits that were refused (no task id) are answers that failed; a task accepted and failed
    later is the ledger's."""
    failed = [r for r in records if not r.ok and not (refused_only and r.task_id)]
    times = [t for r in failed if (t := response_ms(r)) is not None]
    p99 = quantile(times, 99)
    return FailureSpeed(len(times), p99, limit_ms, None if p99 is None else p99 <= limit_ms)


def error_counts(records: Sequence[RequestRecord]) -> dict[str, int]:
    """The failed requests by outcome (see :func:`outcome`)."""
    return dict(sorted(Counter(o for r in records if (o := outcome(r)) != OK).items()))
