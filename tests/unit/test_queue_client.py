"""The queue's client without I/O (benchmark/queue_client.py): what it sends, when it stops, how it judges."""

from __future__ import annotations

import orjson

from benchmark.queue_client import Call, QueueClientOptions, TaskOutcome, TaskRun

OPTIONS = QueueClientOptions(submit_wait_ms=0, poll_wait_ms=1000, timeout_s=5.0)
TASK = "0b5c1f7e-7f49-4a6e-9d53-2b8d0f5f0a11"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def doc(status: str, **extra: object) -> bytes:
    return orjson.dumps({"task_id": TASK, "status": status, **extra})


def test_submit_then_long_poll_until_done() -> None:
    run = TaskRun(b"[1.0]", OPTIONS, Clock())
    first = run.first()
    assert first == Call("submit", "POST", "/api/v1/ml/queue/predict?wait_ms=0", b"[1.0]")
    poll = run.answer(202, doc("PENDING"))
    assert poll == Call("poll", "GET", f"/api/v1/ml/queue/tasks/{TASK}?wait_ms=1000")
    assert run.answer(200, doc("STARTED")) == poll
    outcome = run.answer(200, doc("SUCCESS", result={"detail": 0.4}))
    assert isinstance(outcome, TaskOutcome) and outcome.ok and outcome.doc is not None
    assert run.calls == 3 and run.last_problem is None


def test_a_hybrid_submit_that_answers_the_result_needs_no_poll() -> None:
    run = TaskRun(b"[1.0]", QueueClientOptions(5000, 1000, 5.0), Clock())
    assert run.first().path.endswith("?wait_ms=5000")
    outcome = run.answer(200, doc("SUCCESS", result={"detail": 0.4}))
    assert isinstance(outcome, TaskOutcome) and outcome.ok and run.calls == 1


def test_a_failed_task_or_a_bad_score_is_a_problem() -> None:
    failed = TaskRun(b"[]", OPTIONS, Clock()).answer(200, doc("FAILURE", error={"error": "unknown_entity"}))
    assert isinstance(failed, TaskOutcome) and not failed.ok and "FAILURE" in str(failed.problem)
    bad = TaskRun(b"[]", OPTIONS, Clock()).answer(200, doc("SUCCESS", result={"detail": 7.0}))
    assert isinstance(bad, TaskOutcome) and "not a score" in str(bad.problem)


def test_a_task_not_done_in_time_is_given_up() -> None:
    clock = Clock()
    run = TaskRun(b"[]", OPTIONS, clock)
    assert isinstance(run.answer(202, doc("PENDING")), Call)
    clock.now += 5.0
    late = run.answer(200, doc("STARTED"))
    assert isinstance(late, TaskOutcome) and late.problem == "not done within 5 s (status STARTED)"


def test_an_error_answer_or_no_answer_loses_the_task() -> None:
    run = TaskRun(b"[]", OPTIONS, Clock())
    lost = run.answer(503, b'{"error": "queue_unavailable"}')
    assert isinstance(lost, TaskOutcome) and lost.doc is None and "HTTP 503" in str(lost.problem)
    assert run.last_problem is not None and "HTTP 503" in run.last_problem
    dropped = TaskRun(b"[]", OPTIONS, Clock()).failed(ConnectionResetError("reset"))
    assert dropped.doc is None and "ConnectionResetError: reset" in str(dropped.problem)
