"""The verification gate's counting and judging, with given numbers (benchmark/verification.py)."""

from __future__ import annotations

import orjson
import pytest

from benchmark.summary import Verification, VerificationRow
from benchmark.verification import (
    REFERENCE,
    CallCounts,
    batch_sizes,
    between_markers,
    check_agreement,
    check_batch_sizes,
    check_counts,
    cmdstat_calls,
    expected_model_calls,
    feature_store_reads,
    foreign_gets,
    is_foreign_get,
    predict_calls,
    request_bodies,
)

PREFIX = "scoring-bench:features:"
QUEUE_PREFIX = "scoring-bench:queue:"

ASYNC_PREDICT = "/api/v1/ml/async/predict"


def sample(name: str, method: str, route: str, status: int, value: float, le: str | None = None) -> str:
    bucket = f'le="{le}",' if le else ""
    labels = f'{bucket}method="{method}",route="{route}",service="model-async",status="{status}"'
    return f"http_request_duration_seconds_{name}{{{labels}}} {value}"


METRICS = "\n".join(
    [
        "# HELP http_request_duration_seconds HTTP requests by matched route template and status.",
        "# TYPE http_request_duration_seconds histogram",
        sample("bucket", "POST", ASYNC_PREDICT, 200, 90.0, le="0.05"),
        sample("bucket", "POST", ASYNC_PREDICT, 200, 98.0, le="+Inf"),
        sample("count", "POST", ASYNC_PREDICT, 200, 98.0),
        sample("sum", "POST", ASYNC_PREDICT, 200, 4.4),
        sample("count", "POST", ASYNC_PREDICT, 422, 2.0),
        sample("count", "GET", "/api/v1/healthcheck", 200, 7.0),
        sample("count", "GET", ASYNC_PREDICT, 405, 1.0),
        "# HELP http_requests_in_progress HTTP requests being served.",
        "# TYPE http_requests_in_progress gauge",
        'http_requests_in_progress{service="model-async"} 0.0',
        "",
    ]
)


def window(
    requests: int, feature_gets_per_request: int, celery_gets_per_task: int, mutex_gets: int
) -> list[tuple[int, str]]:
    """MONITOR lines of a window on the embedded Redis (feature store db 0, broker db 1, results db 2)."""
    lines: list[tuple[int, str]] = []
    for i in range(requests):
        lines += [(0, f"GET {PREFIX}{i}")] * feature_gets_per_request
        lines += [(2, f"GET {QUEUE_PREFIX}celery-task-meta-{i}")] * celery_gets_per_task
        lines += [(2, f"SET {QUEUE_PREFIX}issued:{i} 1 EX 600"), (2, f"MGET {QUEUE_PREFIX}issued:{i} x")]
    lines += [(1, f"get {QUEUE_PREFIX}unacked_mutex")] * mutex_gets  # from Lua: lower case
    return lines


def counted_reads(lines: list[tuple[int, str]], before: int = 1000) -> int | None:
    gets = sum(command.split()[0].upper() == "GET" for _, command in lines)
    return feature_store_reads(before, before + gets, foreign_gets(lines, 0, PREFIX))


def test_the_bodies_start_with_the_reference_input_and_walk_the_entities() -> None:
    bodies = [orjson.loads(body) for body in request_bodies(5, 3)]
    assert bodies[0] == REFERENCE
    assert [body["entity_id"] for body in bodies] == ["1", "1", "2", "0", "1"]


def test_commandstats_calls() -> None:
    stats = {"cmdstat_get": {"calls": 12, "usec": 30}, "cmdstat_info": {"calls": 2}}
    assert cmdstat_calls(stats, "get") == 12
    assert cmdstat_calls(stats, "GET") == 12
    assert cmdstat_calls(stats, "mget") == 0


def test_predict_calls_sum_the_posts_to_the_predict_route_over_statuses() -> None:
    assert predict_calls(METRICS, "model-async", ASYNC_PREDICT) == 100
    assert predict_calls(METRICS, "model-sync", "/api/v1/ml/sync/predict") == 0
    assert predict_calls("", "model-async", ASYNC_PREDICT) == 0


def test_a_get_is_foreign_unless_it_reads_a_feature_key_on_the_feature_db() -> None:
    assert not is_foreign_get(0, f"GET {PREFIX}42", 0, PREFIX)
    assert is_foreign_get(2, f"GET {PREFIX}42", 0, PREFIX)  # same key, another db
    assert is_foreign_get(0, f"GET {QUEUE_PREFIX}celery-task-meta-1", 0, PREFIX)  # REDIS_URL: one db
    assert is_foreign_get(1, "get scoring-bench:queue:unacked_mutex", 0, PREFIX)
    assert not is_foreign_get(0, f"MGET {PREFIX}1 {PREFIX}2", 0, PREFIX)  # not a GET at all
    assert not is_foreign_get(0, "SET x 1", 0, PREFIX)


def test_the_queues_own_gets_are_not_counted_as_feature_reads() -> None:
    assert counted_reads(window(50, 1, 2, 3)) == 50
    assert counted_reads(window(50, 1, 0, 0)) == 50


def test_a_stack_that_reads_the_feature_store_twice_per_request_is_caught() -> None:
    reads = counted_reads(window(50, 2, 2, 3))
    assert reads == 100
    problems = check_counts("queue", 50, 50, reads, 100, 2)
    assert problems == ["queue: 100 feature-store reads for 50 requests (expected 50)"]


def test_without_monitor_the_reads_are_not_known() -> None:
    assert feature_store_reads(10, 60, None) is None


def test_markers_bound_the_window() -> None:
    lines = [(0, "GET a"), (0, "ECHO start"), (0, "GET b"), (0, "ECHO end"), (0, "GET c")]
    assert between_markers(lines, "start", "end") == [(0, "GET b")]
    assert between_markers(lines[:3], "start", "end") is None  # the end was never seen
    assert between_markers(lines[2:], "start", "end") is None


def test_counts_that_match_pass() -> None:
    assert check_counts("sync", 50, 50, 50, 100, 2) == []


def test_counts_not_taken_are_not_judged() -> None:
    assert check_counts("async", 50, 50, None, None, 2) == []


def test_model_calls_and_answers_are_judged() -> None:
    assert check_counts("async", 50, 50, 50, 150, 2) == [
        "async: 150 model calls for 50 requests (expected 100: NUM_MODELS=2 per request)"
    ]
    assert check_counts("sync", 50, 48, 50, 100, 2, "HTTP 502: b'...'") == [
        "sync: 2 of 50 answers are not valid scores (first: HTTP 502: b'...')"
    ]


def test_answers_that_agree() -> None:
    assert check_agreement({"sync": 0.25, "async": 0.25, "queue": 0.25}) == []
    assert check_agreement({"sync": 0.25, "async": 0.25 + 1e-15}) == []  # the last bits
    assert check_agreement({"sync": 0.25}) == []
    assert check_agreement({}) == []


def test_answers_that_disagree_are_caught_and_named() -> None:
    problems = check_agreement({"sync": 0.25, "async": 0.25, "queue": 0.3})
    assert len(problems) == 1
    assert "sync 0.25, async 0.25, queue 0.3" in problems[0]


def test_an_architecture_without_an_answer_is_left_out_of_the_comparison() -> None:
    assert check_agreement({"sync": 0.25, "async": None, "queue": 0.25}) == []


@pytest.mark.parametrize(("row_problems", "gate_problems", "passed"), [([], [], True), (["x"], [], False)])
def test_a_problem_fails_the_gate(row_problems: list[str], gate_problems: list[str], passed: bool) -> None:
    row = VerificationRow(architecture="sync", requests=50, problems=row_problems)
    assert Verification(rows=[row], problems=gate_problems).passed is passed
    assert Verification(rows=[row], problems=["disagree"]).passed is False


# --------------------------------------------------------------------------- the batching handler

BATCH_METRICS = METRICS.replace(ASYNC_PREDICT, ASYNC_PREDICT + "_batch")


def test_the_model_apis_count_a_batch_call_once_on_its_own_route() -> None:
    """/metrics counts HTTP requests by route: a batch call is one request on the batch route, whatever
    it holds (there is no count of items)."""
    assert predict_calls(BATCH_METRICS, "model-async", ASYNC_PREDICT + "_batch") == 100
    assert predict_calls(BATCH_METRICS, "model-async", ASYNC_PREDICT) == 0


def test_sequential_requests_make_one_batch_call_of_one_item_per_model() -> None:
    assert expected_model_calls("batched", 20, 2) == 40 == expected_model_calls("async", 20, 2)
    assert check_counts("batched", 20, 20, 20, 40, 2, batch_calls=40) == []


def test_batched_making_single_calls_or_too_few_batches_is_caught() -> None:
    assert check_counts("batched", 20, 20, 20, 40, 2, batch_calls=30) == [
        "batched: 10 of its 40 model calls were single predict calls (expected none: it calls the batch "
        "route, predict_batch)"
    ]
    assert check_counts("batched", 20, 20, 20, 20, 2, batch_calls=20) == [  # batches of two: not sequential
        "batched: 20 model calls for 20 requests (expected 40: NUM_MODELS=2 one batch call of one item per "
        "model per request)"
    ]


def test_the_other_architectures_make_no_batch_call() -> None:
    assert check_counts("async", 20, 20, 20, 40, 2, batch_calls=0) == []
    assert check_counts("sync", 20, 20, 20, 40, 2, batch_calls=3) == [
        "sync: 3 batch calls (predict_batch) (expected none)"
    ]
    assert check_counts("sync", 20, 20, 20, 40, 2, batch_calls=None) == []  # not counted: not judged


def test_the_batch_sizes_of_the_answers() -> None:
    header = "feature_store;dur=0.4, batch_wait_0;dur=5.1, model_0;dur=46, batch_size_0;desc=1, "
    header += "batch_size_1;desc=3"
    assert batch_sizes(header) == [1, 3]
    assert batch_sizes("feature_store;dur=0.4, model_0;dur=46, total;dur=47") == []
    assert check_batch_sizes("batched", [1, 1, 1, 1]) == []
    problems = check_batch_sizes("batched", [1, 2, 1, 5])
    assert len(problems) == 1 and "2 batches of more than one item (largest 5)" in problems[0]


def test_call_counts_subtract_kind_by_kind() -> None:
    after, before = CallCounts(single=50, batch=47), CallCounts(single=10, batch=7)
    assert after - before == CallCounts(40, 40) and (after - before).total == 80
