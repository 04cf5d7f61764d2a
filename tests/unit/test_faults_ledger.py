"""The queue's task ledger (benchmark.faults.ledger): lost = accepted − ended, and the tasks that ran
twice, counted from the worker's own count of runs per attempt."""

from __future__ import annotations

from benchmark.faults.ledger import (
    OVERTIME_S,
    STALL_S,
    UNKNOWN,
    UNREACHABLE,
    accepted_ids,
    keep_waiting,
    parse_runs,
    tally,
)


def test_accepted_ids_are_the_distinct_ids_in_order() -> None:
    assert accepted_ids(["a", "", "b", "a", "c", ""]) == ["a", "b", "c"]


def test_every_task_ended_nothing_lost() -> None:
    final = {"a": "SUCCESS", "b": "FAILURE", "c": "SUCCESS"}
    runs = {"a": {"0": 1}, "b": {"0": 1, "1": 1, "2": 1, "3": 1}, "c": {"0": 1}}
    counts = tally(["a", "b", "c"], final, runs)
    assert (counts.accepted, counts.succeeded, counts.failed, counts.lost) == (3, 2, 1, 0)
    assert counts.ran_twice == 0 and counts.extra_runs == 0 and counts.runs_unknown == 0


def test_a_task_that_did_not_end_is_lost_whatever_the_reason() -> None:
    final = {"a": "SUCCESS", "b": "PENDING", "c": "STARTED", "d": UNKNOWN, "e": UNREACHABLE}
    counts = tally(["a", "b", "c", "d", "e", "f"], final, None)  # f: never polled
    assert counts.lost == 5
    assert (counts.unfinished, counts.unknown, counts.unreachable) == (2, 1, 2)
    assert counts.ran_twice is None and counts.runs_unknown is None


def test_an_attempt_started_twice_ran_twice_and_retries_do_not() -> None:
    final = {"a": "SUCCESS", "b": "SUCCESS", "c": "SUCCESS"}
    runs = {"a": {"0": 2}, "b": {"0": 1, "1": 1}, "c": {"0": 1, "1": 3}}
    counts = tally(["a", "b", "c"], final, runs)
    assert counts.ran_twice == 2  # a and c; b retried once
    assert counts.extra_runs == 3


def test_an_ended_task_without_a_counted_run_is_said() -> None:
    counts = tally(["a", "b"], {"a": "SUCCESS", "b": "PENDING"}, {"a": {}, "b": {}})
    assert counts.runs_unknown == 1


def test_runs_as_redis_returns_them() -> None:
    assert parse_runs({b"0": b"2", b"1": b"1"}) == {"0": 2, "1": 1}
    assert parse_runs({"0": "1", "x": "not a count"}) == {"0": 1}


def test_the_ledger_waits_past_its_deadline_only_while_tasks_still_end() -> None:
    assert keep_waiting(now=10.0, deadline=30.0, last_progress=0.0)  # before the deadline: always
    assert keep_waiting(now=40.0, deadline=30.0, last_progress=40.0 - STALL_S / 2)  # tasks still ending
    assert not keep_waiting(now=40.0, deadline=30.0, last_progress=40.0 - STALL_S)  # nothing moved
    assert not keep_waiting(now=30.0 + OVERTIME_S, deadline=30.0, last_progress=30.0 + OVERTIME_S)
