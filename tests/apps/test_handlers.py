"""Every service's app, in process: answers, agreement, bad input, dependencies that are down."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from scoring_bench.core.endpoints import HEALTH_PATH, QUEUE_TASKS_PATH
from scoring_bench.core.timing import parse_server_timing
from tests.apps.conftest import APPS, CLOSED_PORT_URL, SEED_BODY, serve_model

SCORING = ["scoring-sync", "scoring-async"]
BAD_BODIES = {
    "malformed": (b"[5.1, 3.5", 400),
    "empty_body": (b"", 422),
    "empty_array": (b"[]", 422),
    "string_feature": (b'["5.1"]', 422),
    "bool_feature": (b"[true, 1]", 422),
    "infinite": (b"[1e999]", 422),
    "nan_literal": (b"[NaN]", 400),
    "null": (b"null", 422),
    "nested": (b"[[1, 2]]", 422),
    "too_many": (("[" + ",".join(["1"] * 1001) + "]").encode(), 422),
    "over_1_mib": (b"[" + b"1," * 600_000 + b"1]", 413),
}


@pytest.mark.parametrize("name", list(APPS))
@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_input_gets_a_4xx_json_error(client: Any, name: str, case: str) -> None:
    data, status = BAD_BODIES[case]
    answer = client(name).post(data=data)
    assert answer.status == status, answer.body
    assert answer.body["error"] and answer.body["message"]


@pytest.mark.parametrize("name", list(APPS))
def test_wrong_method_and_unknown_path_get_json(client: Any, name: str) -> None:
    app = client(name)
    wrong = app.get(app.predict_path)
    assert wrong.status == 405 and wrong.body["error"] == "method_not_allowed"
    unknown = app.get("/no/such/path")
    assert unknown.status == 404 and unknown.body["error"] == "not_found"


@pytest.mark.parametrize("name", SCORING)
@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"entity_id": "no-such-entity", "features": [1.0]}, 404, "unknown_entity"),
        ({"entity_id": "1", "features": [1.0], "extra": 1}, 422, "invalid_body"),
        ({"entity_id": "1"}, 422, "invalid_body"),
        ({"entity_id": "bad id!", "features": [1.0]}, 422, "invalid_body"),
        ({"entity_id": 7, "features": [1.0]}, 422, "invalid_body"),
        ("just a string", 422, "invalid_body"),
    ],
)
def test_scoring_rejects_bad_requests(client: Any, name: str, body: object, status: int, code: str) -> None:
    answer = client(name).post(body)
    assert answer.status == status and answer.body["error"] == code, answer.body


@pytest.mark.parametrize("kind", ["io", "cpu"])
@pytest.mark.parametrize("name", ["model-sync", "model-async"])
def test_a_model_scores_and_rejects_a_bad_model_id(client: Any, name: str, kind: str) -> None:
    app = client(name, model_kind=kind)
    ok = app.post(SEED_BODY, model_id=1)
    assert ok.status == 200 and 0.0 < ok.body["detail"] < 1.0
    assert app.post(SEED_BODY, model_id=0).body["detail"] != ok.body["detail"]
    bad = app.post(SEED_BODY, model_id="x")
    assert bad.status == 422 and bad.body["error"] == "invalid_body"


@pytest.mark.parametrize("name", SCORING)
def test_a_score_with_its_server_timing(client: Any, name: str) -> None:
    answer = client(name).post(SEED_BODY)
    assert answer.status == 200, answer.body
    assert 0.0 < answer.body["detail"] < 1.0 and answer.body["entity_id"] == "0"
    assert list(parse_server_timing(answer.headers["Server-Timing"])) == [
        "feature_store",
        "model_0",
        "model_1",
        "total",
    ]


@pytest.mark.parametrize(
    "body", [SEED_BODY, {"entity_id": "42", "features": [0.5] * 30}, {"entity_id": "49", "features": [-3, 2]}]
)
def test_sync_and_async_agree(client: Any, body: Any) -> None:
    sync, async_ = client("scoring-sync").post(body).body, client("scoring-async").post(body).body
    assert sync["detail"] == async_["detail"] and sync["scores"] == async_["scores"]


def test_entities_change_the_score(client: Any) -> None:
    app = client("scoring-async")
    one, two = (app.post({"entity_id": e, "features": SEED_BODY}).body["detail"] for e in ("1", "2"))
    assert one != two


@pytest.mark.parametrize("model_calls", ["sequential", "concurrent"])
def test_the_model_call_policy_does_not_change_the_answer(client: Any, model_calls: str) -> None:
    reference = client("scoring-sync").post(SEED_BODY).body["detail"]
    for name in SCORING:
        answer = client(name, model_calls=model_calls, num_models=4).post(SEED_BODY)
        assert len(answer.body["scores"]) == 4
        assert "model_3;dur=" in answer.headers["Server-Timing"]
    assert client("scoring-sync", model_calls=model_calls).post(SEED_BODY).body["detail"] == reference
    assert client("scoring-async", model_calls=model_calls).post(SEED_BODY).body["detail"] == reference


@pytest.mark.parametrize("name", SCORING)
def test_health_names_each_dependency(client: Any, name: str) -> None:
    answer = client(name).get(HEALTH_PATH)
    assert answer.status == 200
    assert answer.body == {"status": "OK", "dependencies": {"feature_store": "OK", "model_api": "OK"}}


@pytest.mark.parametrize("name", SCORING)
def test_a_model_api_that_is_down_gives_502_and_a_degraded_health(client: Any, name: str) -> None:
    dead = f"{CLOSED_PORT_URL}/api/v1/ml/sync/predict"
    app = client(name, model_sync_url=dead, model_async_url=dead)
    started = time.monotonic()
    answer = app.post(SEED_BODY)
    assert answer.status == 502 and answer.body["error"] == "model_unavailable"
    health = app.get(HEALTH_PATH)
    assert health.status == 503 and health.body["status"] == "DEGRADED"
    assert health.body["dependencies"]["model_api"].startswith("DOWN")
    assert time.monotonic() - started < 2.0


def test_a_slow_model_gives_a_fast_504(client: Any) -> None:
    with serve_model(2_000.0) as slow:
        for name in SCORING:
            app = client(name, model_sync_url=slow, model_async_url=slow, model_timeout_s=0.2)
            started = time.monotonic()
            answer = app.post(SEED_BODY)
            assert answer.status == 504 and answer.body["error"] == "model_timeout", answer.body
            assert time.monotonic() - started < 1.9, "the handler waited for the model instead of timing out"


@pytest.mark.parametrize("name", SCORING)
def test_a_feature_store_that_is_down_gives_503(client: Any, name: str) -> None:
    app = client(name, redis_url="redis://127.0.0.1:9/0")
    answer = app.post(SEED_BODY)
    assert answer.status == 503 and answer.body["error"] == "feature_store_unavailable"
    health = app.get(HEALTH_PATH).body
    assert health["status"] == "DEGRADED" and health["dependencies"]["feature_store"].startswith("DOWN")


def test_the_seed_faithful_choices_score_the_same(client: Any) -> None:
    reference = client("scoring-async").post(SEED_BODY).body["detail"]
    seed = {
        "http_client_lifetime": "request",
        "sync_http_client": "requests",
        "async_http_client": "httpx",
        "async_redis_client": "blocking",
    }
    for name in SCORING:
        assert client(name, **seed).post(SEED_BODY).body["detail"] == reference
        assert client(name, **seed).get(HEALTH_PATH).status == 200


# --- the queue API (the worker and the round trip: tests/integration/test_queue.py) ----------------


@pytest.mark.parametrize(
    "path", [f"{QUEUE_TASKS_PATH}/not-a-task-id", f"{QUEUE_TASKS_PATH}/00000000-0000-4000-8000-000000000000"]
)
def test_an_unknown_task_is_404(client: Any, redis_url: str, path: str) -> None:
    queue = client("scoring-queue", result_backend_url=redis_url)
    answer = queue.get(path)
    assert answer.status == 404 and answer.body["error"] == "unknown_task"


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"wait_ms": "abc"}, "wait_ms"),
        ({"wait_ms": "999999"}, "wait_ms"),
        ({"callback_url": "http://203.0.113.7/hook"}, "not allowed"),
        ({"callback_url": "ftp://127.0.0.1/hook"}, "http://"),
    ],
)
def test_bad_queue_parameters_are_422(client: Any, params: dict[str, str], fragment: str) -> None:
    answer = client("scoring-queue").post(SEED_BODY, **params)
    assert answer.status == 422 and fragment in answer.body["message"]


def test_submitting_tasks_subscribes_to_no_result_channel(client: Any, redis_url: str) -> None:
    """The API reads results itself (one MGET per status): it must not subscribe to each task's result
    channel as Celery's Redis backend does by default. Those subscriptions, never read, grew the API's
    memory by ~300 B per task and Redis's output buffers (the soak: +2.9 MB/min, doc/soak.md)."""
    prefix = "subscribe-test:"  # the tasks, never run, and their ids: deleted below
    queue = client(
        "scoring-queue", result_backend_url=redis_url, broker_url=redis_url, redis_key_prefix=prefix
    )
    results = redis.Redis.from_url(redis_url)

    def subscribes() -> int:
        stats = results.info("commandstats")
        return sum(
            int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("subscribe", "unsubscribe")
        )

    before = subscribes()
    try:
        assert all(queue.post(SEED_BODY).status == 202 for _ in range(20))
        assert subscribes() == before
    finally:
        for key in results.scan_iter(match=f"{prefix}*"):
            results.delete(key)


def test_a_broker_that_is_down_is_a_fast_503_and_leaves_no_task(client: Any, redis_url: str) -> None:
    queue = client("scoring-queue", result_backend_url=redis_url, broker_url="redis://127.0.0.1:9/1")
    results = redis.Redis.from_url(redis_url)
    before = len(list(results.scan_iter(match="*issued:*")))
    started = time.monotonic()
    answer = queue.post(SEED_BODY)
    assert answer.status == 503 and answer.body["error"] == "queue_unavailable"
    assert "broker" in answer.body["message"]
    assert time.monotonic() - started < 5.0
    assert len(list(results.scan_iter(match="*issued:*"))) == before  # the id was forgotten
    health = queue.get(HEALTH_PATH)
    assert health.status == 503 and health.body["dependencies"]["broker"].startswith("DOWN")


def test_a_result_store_that_is_down_is_a_503(client: Any) -> None:
    queue = client("scoring-queue")  # broker and results on a closed port
    answer = queue.post(SEED_BODY)
    assert answer.status == 503 and "result store" in answer.body["message"]
    health = queue.get(HEALTH_PATH).body
    assert health["dependencies"]["result_backend"].startswith("DOWN")
