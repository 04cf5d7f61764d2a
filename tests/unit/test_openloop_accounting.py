"""The open-loop accounting (benchmark/openloop/accounting.py): one rate's records → its numbers."""

from __future__ import annotations

import pytest

from benchmark.openloop.accounting import (
    HOLD_LAG_P99_MS,
    closed_loop_stats,
    held,
    histogram,
    max_rate_under_limit,
    percentile_ms,
    rate_at_limit,
    rate_result,
)
from benchmark.openloop.records import RequestRecord, csv_row, no_answer, record_from_row
from benchmark.summary import OpenLoopRate


def req(
    scheduled: float,
    latency_s: float,
    *,
    lag_s: float = 0.0,
    wait_s: float = 0.0,
    ok: bool = True,
    status: str = "200",
) -> RequestRecord:
    """A request scheduled at ``scheduled``, issued ``lag_s`` late, sent ``wait_s`` after that, done
    ``latency_s`` after it was scheduled."""
    issued = scheduled + lag_s
    return RequestRecord(scheduled, issued, issued + wait_s, scheduled + latency_s, ok, status)


def steady(n: int = 100, rate: float = 100.0, latency_s: float = 0.010, **kw: object) -> list[RequestRecord]:
    return [req(i / rate, latency_s, **kw) for i in range(n)]  # type: ignore[arg-type]


def test_corrected_latency_is_from_the_schedule_uncorrected_from_the_send() -> None:
    # 99 fast requests, one that waited 400 ms for a connection and then took 100 ms
    records = steady(99) + [req(0.995, 0.5, wait_s=0.4)]
    rate = rate_result(records, 100, 1.0)
    assert rate.max_ms == pytest.approx(500, rel=1e-3)
    assert rate.uncorrected_max_ms == pytest.approx(100, rel=1e-3)
    assert rate.p50_ms == pytest.approx(10, rel=1e-3) and rate.uncorrected_p50_ms == pytest.approx(
        10, rel=1e-3
    )


def test_a_stall_shows_in_the_corrected_percentiles_only() -> None:
    """A 500 ms stall at 1 s of a 100 req/s stream over 2 connections: the two requests in flight take
    500 ms; the 50 scheduled during the stall wait for a connection, then are fast once sent."""
    records = [req(i / 100, 0.010) for i in range(100)]
    records += [req(1.0, 0.5), req(1.005, 0.495)]
    records += [req(1.01 + i / 100, 0.49 - i / 100 + 0.01, wait_s=0.49 - i / 100) for i in range(49)]
    records += [req(1.5 + i / 100, 0.010) for i in range(49)]
    rate = rate_result(records, 100, 2.0)
    assert rate.p99_ms is not None and rate.p99_ms > 400
    assert rate.uncorrected_p99_ms is not None and rate.uncorrected_p99_ms < 20
    assert rate.held is True  # the generator kept its schedule: the server stalled


def test_percentiles_are_within_the_histograms_precision() -> None:
    hist = histogram([i / 1000 for i in range(1, 1001)])  # 1 ms … 1000 ms
    assert percentile_ms(hist, 50) == pytest.approx(500, rel=1e-3)
    assert percentile_ms(hist, 99) == pytest.approx(990, rel=1e-3)
    assert percentile_ms(hist, 99.9) == pytest.approx(999, rel=1e-3)
    assert percentile_ms(histogram([]), 50) is None


def test_send_lag_p99_and_the_held_flag() -> None:
    on_time = rate_result(steady(lag_s=0.001), 100, 1.0)
    assert on_time.send_lag_p99_ms == pytest.approx(1.0, rel=1e-3) and on_time.held is True
    late = rate_result(steady(lag_s=(HOLD_LAG_P99_MS + 5) / 1000), 100, 1.0)
    assert late.send_lag_p99_ms == pytest.approx(HOLD_LAG_P99_MS + 5, rel=1e-3) and late.held is False


def test_a_lag_small_against_a_long_p99_still_holds() -> None:
    assert held(8.0, 100, 100, p99_ms=120.0) is True  # 8 ms ≤ a tenth of 120 ms
    assert held(8.0, 100, 100, p99_ms=40.0) is False  # 8 ms > 5 ms and > a tenth of 40 ms
    assert held(4.0, 100, 100, p99_ms=10.0) is True
    assert held(None, 0, 0) is None


def test_a_few_late_sends_below_the_p99_keep_the_rate_held() -> None:
    records = steady(1000, rate=1000)
    records[10] = req(records[10].scheduled_s, 0.2, lag_s=0.1)  # 0.1 % very late
    assert rate_result(records, 1000, 1.0).held is True


def test_scheduled_requests_never_issued_are_errors_and_the_rate_not_held() -> None:
    rate = rate_result(steady(90), 100, 1.0, scheduled=100)
    assert rate.requests == 100 and rate.completed == 90 and rate.errors == 10
    assert rate.held is False


def test_errors_count_every_request_without_a_valid_score() -> None:
    records = steady(96)
    records += [req(0.96, 0.002, ok=False, status="503"), req(0.97, 0.003, ok=False, status="200")]
    records += [req(0.98, 30.0, ok=False, status=no_answer("not done within 30 s"))]
    records += [RequestRecord(0.99, 0.99, None, 40.99, False, no_answer("no connection within 40 s"))]
    rate = rate_result(records, 100, 1.0)
    assert rate.requests == 100 and rate.errors == 4
    assert rate.completed == 98  # two answers that were errors count as completed; no answer does not
    assert rate.max_ms == pytest.approx(40_000, rel=1e-3)  # a request given up is as slow as it was
    assert rate.uncorrected_max_ms == pytest.approx(30_000, rel=1e-3)  # the unsent one has none


def test_achieved_rate_is_valid_answers_per_second_of_the_schedule() -> None:
    records = steady(200, rate=100) + [req(1.999, 0.01, ok=False, status="500")]
    rate = rate_result(records, 100, 2.0, arrivals="constant")
    assert rate.achieved_rps == pytest.approx(100.0)
    assert rate.arrivals == "constant" and rate.duration_s == 2.0 and rate.offered_rps == 100


def test_no_records_no_numbers() -> None:
    rate = rate_result([], 100, 1.0, scheduled=0)
    assert rate.requests == 0 and rate.p99_ms is None and rate.held is None and rate.achieved_rps == 0


def summary(offered: float, p99: float, *, held: bool = True, errors: int = 0) -> OpenLoopRate:
    return OpenLoopRate(offered_rps=offered, requests=1000, errors=errors, p99_ms=p99, held=held)


def test_max_rate_under_limit_is_the_highest_rate_under_the_p99_limit() -> None:
    rates = [summary(100, 50), summary(200, 60), summary(400, 150), summary(800, 900)]
    assert max_rate_under_limit(rates, 100.0) == 200
    assert max_rate_under_limit(rates, 10.0) is None
    assert max_rate_under_limit(rates, None) is None
    assert max_rate_under_limit([], 100.0) is None


def test_the_knee_is_where_the_sweep_first_fails() -> None:
    noisy = [summary(100, 50), summary(200, 150), summary(300, 90), summary(400, 300)]
    assert max_rate_under_limit(noisy, 100.0) == 100  # 300 passing again past the knee is noise


def test_the_rate_at_the_limit_interpolates_between_the_knee_and_the_next_rate() -> None:
    rates = [summary(100, 50), summary(200, 60), summary(400, 160), summary(800, 900)]
    assert rate_at_limit(rates, 100.0) == pytest.approx(200 + 200 * (100 - 60) / (160 - 60))
    assert rate_at_limit(rates, 1000.0) == 800  # never crossed: the highest rate, a lower bound
    assert rate_at_limit(rates, 40.0) is None and rate_at_limit(rates, None) is None
    late = [summary(100, 50), summary(200, 60), summary(400, 160, held=False)]
    assert rate_at_limit(late, 100.0) == 200  # the next rate failed for the generator, not the p99
    assert rate_at_limit([summary(200, 60), summary(100, 50), summary(400, 160)], 100.0) == pytest.approx(280)


def test_a_rate_not_held_or_with_more_than_one_percent_errors_does_not_count() -> None:
    assert max_rate_under_limit([summary(100, 50), summary(200, 60, held=False)], 100.0) == 100
    assert max_rate_under_limit([summary(100, 50), summary(200, 60, errors=11)], 100.0) == 100
    assert max_rate_under_limit([summary(100, 50), summary(200, 60, errors=10)], 100.0) == 200


def test_closed_loop_window_excludes_the_warm_up() -> None:
    records = [req(i * 0.01, 0.01) for i in range(300)]  # done at 0.01 … 3.0 s
    records[150] = req(1.5, 0.01, ok=False, status="500")
    stats = closed_loop_stats(records, warmup_s=1.0, duration_s=2.0)
    assert stats.requests == 201  # done within [1, 3]
    assert stats.rps == pytest.approx(100.5)
    assert stats.p50_ms == pytest.approx(10, rel=1e-3)


def test_a_record_survives_its_csv_row() -> None:
    records = [
        req(0.5, 0.1, lag_s=0.001, wait_s=0.02),
        RequestRecord(1.0, 1.0, None, None, False, "no answer: x"),
    ]
    header = ["scheduled_s", "issued_s", "sent_s", "done_s", "ok", "status"]
    for record in records:
        back = record_from_row(dict(zip(header, csv_row(record))))
        assert back is not None
        assert back.ok == record.ok and back.status == record.status
        assert back.sent_s == (pytest.approx(record.sent_s, abs=1e-6) if record.sent_s is not None else None)
        assert back.done_s == (pytest.approx(record.done_s, abs=1e-6) if record.done_s is not None else None)
    assert record_from_row({"scheduled_s": "", "ok": "1"}) is None
