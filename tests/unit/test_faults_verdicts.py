"""The faults experiment's decisions on one run's requests (benchmark.faults.verdicts): how a request
ended, the per-second series, the baseline, the time to recover, and whether failures were fast."""

from __future__ import annotations

import pytest

from benchmark.faults.verdicts import (
    RECOVERY_MAX_ERROR_RATIO,
    baseline,
    error_counts,
    failure_speed,
    outcome,
    per_second,
    recovery_s,
    response_ms,
    wait_ms,
)
from benchmark.openloop.records import RequestRecord, no_answer


def ok(t: float, latency_s: float = 0.05) -> RequestRecord:
    return RequestRecord(t, t, t, t + latency_s, True, "200")


def failed(t: float, status: str = "502", latency_s: float = 0.005, task_id: str = "") -> RequestRecord:
    return RequestRecord(t, t, t, t + latency_s, False, status, task_id)


def steady(start: float, end: float, rate: float = 20, latency_s: float = 0.05) -> list[RequestRecord]:
    """Requests every 1/rate s from ``start`` to ``end`` that all succeed."""
    count = round((end - start) * rate)
    return [ok(start + i / rate, latency_s) for i in range(count)]


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (ok(0), "ok"),
        (failed(0, "502"), "502"),
        (failed(0, "504"), "504"),
        (failed(0, "200"), "invalid"),
        (failed(0, "FAILURE"), "FAILURE"),
        (failed(0, no_answer("the task was lost: HTTP 503: b'{...}'")), "503"),
        (failed(0, no_answer("not done within 36 s")), "timeout"),
        (failed(0, no_answer("ServerDisconnectedError: Server disconnected")), "no answer"),
    ],
)
def test_a_request_ends_as_its_status_or_why_no_answer_came(record: RequestRecord, expected: str) -> None:
    assert outcome(record) == expected


def test_wait_counts_from_the_schedule_and_response_time_from_the_send() -> None:
    late = RequestRecord(1.0, 1.0, 1.5, 2.0, False, "504")
    assert wait_ms(late) == pytest.approx(1000.0)
    assert response_ms(late) == pytest.approx(500.0)
    never_sent = RequestRecord(1.0, 1.2, None, 3.2, False, no_answer("not done within 2 s"))
    assert response_ms(never_sent) == pytest.approx(2000.0)


def test_per_second_aligns_on_the_fault_and_counts_the_answers_as_they_come_back() -> None:
    records = [ok(0.2), ok(1.1), failed(2.1), failed(2.6, "504", 2.0), ok(3.5, 0.1)]
    seconds = per_second(records, fault_start_s=2.0, duration_s=5.0)
    assert [s.t_s for s in seconds] == [-2, -1, 0, 1, 2]
    # only whole seconds of the load: a fault 2.5 s in leaves half a second at each end out
    assert [s.t_s for s in per_second(records, fault_start_s=2.5, duration_s=5.0)] == [-2, -1, 0, 1]
    at = {s.t_s: s for s in seconds}
    assert (at[-2].sent, at[-2].answered, at[-2].ok_done, at[-2].errors) == (1, 1, 1, 0)
    assert (at[0].sent, at[0].answered, at[0].errors, at[0].by_outcome) == (2, 1, 1, {"502": 1})
    assert at[0].error_ratio == 1.0 and at[0].p95_ms is not None and at[0].p95_ms < 10
    assert (at[1].sent, at[1].answered, at[1].errors, at[1].ok_done) == (1, 1, 0, 1)
    # the 504 sent at 2.6 s came back at 4.6 s, alone in its second
    assert (at[2].sent, at[2].answered, at[2].errors, at[2].by_outcome) == (0, 1, 1, {"504": 1})
    assert at[-1].answered == 1 and at[-1].error_ratio == 0.0
    assert at[2].p95_ms is not None and at[2].p95_ms > 1500


def test_the_baseline_is_what_was_done_before_the_fault_after_the_first_second() -> None:
    records = [ok(0.1, 0.5), *steady(1.0, 2.5, latency_s=0.05), ok(2.95, 0.2), failed(2.99, "502", 0.1)]
    found = baseline(records, fault_start_s=3.0)
    assert found.requests == 30  # not the first second's, not those still in flight at the fault
    assert found.error_ratio == 0.0
    assert found.p50_ms == pytest.approx(50.0)


def test_recovery_is_the_first_clean_window_of_answers_after_the_fault() -> None:
    before = steady(0.0, 5.0)
    during = [failed(5.0 + i / 20) for i in range(60)]  # 3 s of 502s
    slow = steady(8.0, 10.0, latency_s=0.2)  # back, but 4× slower than before
    after = steady(10.0, 15.0)
    records = before + during + slow + after
    # a window's p50 is back once most of its answers are the fast ones (from 10.05 s): from 9.25 s on
    assert recovery_s(records, fault_end_s=8.0, duration_s=15.0, reference_p50_ms=50.0) == pytest.approx(1.25)


def test_the_backlog_of_a_stall_is_not_a_recovery() -> None:
    """Requests held during a stall come back at once when it ends, with long waits: the windows that hold
    them have not recovered, nor has a window without answers."""
    before = steady(0.0, 5.0)
    stalled = [ok(5.0 + i / 20, 8.0 - (5.0 + i / 20) + 0.05) for i in range(60)]  # all answered at ~8.05 s
    after = steady(8.0, 15.0)
    records = before + stalled + after
    found = recovery_s(records, fault_end_s=8.0, duration_s=15.0, reference_p50_ms=50.0)
    assert found is not None and found > 0.0
    assert recovery_s(before, fault_end_s=8.0, duration_s=15.0, reference_p50_ms=50.0) is None


def test_a_window_with_one_percent_errors_has_not_recovered() -> None:
    records = steady(0.0, 10.0, rate=100)
    records[600] = failed(records[600].scheduled_s)
    records[605] = failed(records[605].scheduled_s)  # 2 of 200 in any window that holds both: 1 %
    assert RECOVERY_MAX_ERROR_RATIO <= 2 / 200
    found = recovery_s(records, fault_end_s=5.0, duration_s=10.0, reference_p50_ms=50.0)
    assert found == pytest.approx(1.25)  # the first window whose answers start after 6.1 s


def test_no_recovery_when_no_window_recovers_or_nothing_to_compare_with() -> None:
    records = steady(0.0, 3.0) + [failed(3.0 + i / 20) for i in range(140)]
    assert recovery_s(records, fault_end_s=4.0, duration_s=10.0, reference_p50_ms=50.0) is None
    assert recovery_s(steady(0.0, 10.0), fault_end_s=4.0, duration_s=10.0, reference_p50_ms=None) is None
    # a window must lie within the load: one that would run past its end does not count
    assert recovery_s(steady(0.0, 10.0), fault_end_s=8.5, duration_s=10.0, reference_p50_ms=50.0) is None


def test_failures_are_fast_when_their_p99_beats_the_limit() -> None:
    records = [ok(0.0), *[failed(1 + i * 0.01, "504", 2.0) for i in range(99)], failed(2.0, "504", 2.1)]
    fast = failure_speed(records, limit_ms=2200.0)
    assert fast.timed == 100 and fast.fast is True and fast.p99_ms is not None and fast.p99_ms > 2000
    slow = failure_speed(records + [failed(3.0, "504", 4.0)] * 5, limit_ms=2200.0)
    assert slow.fast is False
    assert failure_speed([ok(0.0)], limit_ms=2200.0) == failure_speed([], limit_ms=2200.0)
    assert failure_speed([ok(0.0)], limit_ms=2200.0).fast is None


def test_the_queues_failed_answers_are_its_refused_submits() -> None:
    refused = failed(1.0, no_answer("the task was lost: HTTP 503: b''"), 0.003)
    accepted_then_failed = failed(1.0, "FAILURE", 9.0, task_id="a")
    speed = failure_speed([refused, accepted_then_failed], limit_ms=3200.0, refused_only=True)
    assert speed.timed == 1 and speed.fast is True
    assert failure_speed([refused, accepted_then_failed], limit_ms=3200.0).fast is False


def test_error_counts_by_outcome() -> None:
    records = [ok(0), failed(0, "502"), failed(0, "502"), failed(0, no_answer("not done within 3 s"))]
    assert error_counts(records) == {"502": 2, "timeout": 1}
