"""The queue architecture with the taskiq engine (QUEUE_ENGINE=taskiq): a real stack on the embedded Redis,
the same API as with Celery (tests/integration/test_queue.py), what the engine does itself (retries, run
counts, the notification, callbacks, the heartbeat, a dead worker's message claimed again)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from scoring_bench.core.endpoints import HEALTH_PATH, QUEUE_PREDICT_PATH, QUEUE_TASKS_PATH
from scoring_bench.core.tasks import new_task_id
from scoring_bench.service import queue_taskiq
from scoring_bench.service.queue import runs_key
from scoring_bench.stack.servers import command, service
from tests.integration.conftest import SEED_BODY, Stack, free_port, stack_settings, start_stack
from tests.integration.test_faults import _kill, _queue_ready
from tests.integration.test_queue import (
    NOT_ALLOWED_HOST,
    QUEUE_TEST_SETTINGS,
    _current_pid,
    _kill_group,
    all_posts,
    callbacks_reach_a_local_receiver_with_retries,
    finished,
    issued,
    queue_api_beside,
    receiver,
    status,
    submit,
    succeeds_with_the_sync_handlers_detail,
)
from tests.integration.test_services import BAD_BODIES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides = {**QUEUE_TEST_SETTINGS, "queue_track_started": False, "queue_count_runs": True}
    settings = stack_settings(tmp_path_factory.mktemp("queue-taskiq"), queue_engine="taskiq", **overrides)
    with start_stack(settings) as running:
        yield running


def runs(stack: Stack, task_id: str) -> dict[str, int]:
    """QUEUE_COUNT_RUNS: attempt → how many times it started."""
    client = redis.Redis.from_url(stack.settings.queue_results_url)
    try:
        return {k.decode(): int(v) for k, v in client.hgetall(runs_key(stack.settings, task_id)).items()}
    finally:
        client.close()


def test_the_stack_runs_the_taskiq_worker(tstack: Stack) -> None:
    argv = command(service("queue-worker"), tstack.settings)
    assert "api_scoring_queue.taskiq_worker" in argv
    resp = tstack.http.get(tstack.url("scoring-queue", HEALTH_PATH), timeout=5)
    assert resp.status_code == 200, resp.text
    assert resp.json()["dependencies"] == {"broker": "OK", "workers": "OK", "result_backend": "OK"}


@pytest.mark.parametrize("body", [SEED_BODY, {"entity_id": "42", "features": [0.5] * 30}])
def test_a_task_succeeds_with_the_sync_handlers_detail(tstack: Stack, body: Any) -> None:
    done = succeeds_with_the_sync_handlers_detail(tstack, body)
    assert runs(tstack, done["task_id"]) == {"0": 1}  # QUEUE_COUNT_RUNS: one run of the first attempt
    # JSON in the result store, under the queue's prefix; the message is gone from the stream once acked
    client = redis.Redis.from_url(tstack.settings.queue_results_url)
    try:
        stored = client.get(queue_taskiq.result_key(tstack.settings, done["task_id"]))
    finally:
        client.close()
    assert stored is not None and queue_taskiq.decode_meta(stored)["status"] == "SUCCESS"


def test_an_unknown_task_id_is_404(tstack: Stack) -> None:
    for task_id in (str(uuid.uuid4()), "not-a-task-id"):
        resp = status(tstack, task_id)
        assert resp.status_code == 404 and resp.json()["error"] == "unknown_task", resp.text


def test_bad_input_is_a_4xx_and_becomes_no_task(tstack: Stack) -> None:
    before = issued(tstack)
    for case, (data, code) in BAD_BODIES.items():
        resp = submit(tstack, data=data)
        assert resp.status_code == code, (case, resp.text)
    assert submit(tstack, SEED_BODY, wait_ms="-1").status_code == 422
    assert submit(tstack, SEED_BODY, callback_url="http://example.com/hook").status_code == 422
    assert issued(tstack) == before


def test_an_unknown_entity_fails_the_task_with_its_error(tstack: Stack) -> None:
    task_id = submit(tstack, {"entity_id": "no-such-entity", "features": [1.0]}).json()["task_id"]
    done = finished(tstack, task_id)
    assert done["status"] == "FAILURE" and "result" not in done
    assert done["error"]["error"] == "unknown_entity" and "no-such-entity" in done["error"]["message"]
    assert runs(tstack, task_id) == {"0": 1}  # not transient: no retry


def test_wait_ms_gives_the_result_when_fast_and_a_task_id_when_slow(tstack: Stack) -> None:
    fast = submit(tstack, SEED_BODY, wait_ms=str(tstack.settings.queue_max_wait_ms))
    assert fast.status_code == 200, fast.text
    assert fast.json()["status"] == "SUCCESS" and 0.0 < fast.json()["result"]["detail"] < 1.0
    slow = submit(tstack, SEED_BODY, wait_ms="1")  # two model calls of 250 ms
    assert slow.status_code == 202 and slow.json()["status"] == "PENDING", slow.text
    assert finished(tstack, slow.json()["task_id"])["result"]["detail"] == fast.json()["result"]["detail"]


def test_the_worker_publishes_each_result_where_the_api_listens(tstack: Stack) -> None:
    """QUEUE_WAKEUP=notify: the API holds a pattern subscription on the result store, and the worker
    PUBLISHes every result it stores on its key's channel, in the format the API decodes."""
    client = redis.Redis.from_url(tstack.settings.queue_results_url)
    pubsub = client.pubsub()
    try:
        listeners = [c for c in client.client_list(_type="pubsub") if c.get("psub") == "1"]
        assert listeners, "the queue API does not listen for results"
        pubsub.psubscribe(queue_taskiq.result_key_prefix(tstack.settings) + "*")
        doc = submit(tstack, SEED_BODY, wait_ms=str(tstack.settings.queue_max_wait_ms)).json()
        assert doc["status"] == "SUCCESS"
        deadline = time.monotonic() + 10
        channel = queue_taskiq.result_key(tstack.settings, doc["task_id"]).encode()
        while True:
            message = pubsub.get_message(timeout=1.0)
            if message and message["type"] == "pmessage" and message["channel"] == channel:
                break
            assert time.monotonic() < deadline, "no notification of the task's result"
        meta = queue_taskiq.decode_meta(message["data"])
        assert meta["status"] == "SUCCESS" and meta["result"] == doc["result"]
    finally:
        pubsub.close()
        client.close()


def test_a_transient_model_error_is_retried_then_fails(tstack: Stack) -> None:
    _kill_group(_current_pid(tstack, "model-async"))
    try:
        task_id = submit(tstack, SEED_BODY).json()["task_id"]
        done = finished(tstack, task_id)
        assert done["status"] == "FAILURE" and done["error"]["error"] == "model_unavailable", done
        attempts = tstack.settings.queue_max_retries + 1
        assert runs(tstack, task_id) == {str(n): 1 for n in range(attempts)}
    finally:
        tstack.supervisor.restart("model-async")
    assert finished(tstack, submit(tstack, SEED_BODY).json()["task_id"])["status"] == "SUCCESS"


def test_callbacks_reach_a_local_receiver_with_retries(tstack: Stack) -> None:
    callbacks_reach_a_local_receiver_with_retries(tstack)
    with receiver([503] * 100) as hook:
        task_id = submit(tstack, SEED_BODY, callback_url=hook.url).json()["task_id"]
        assert finished(tstack, task_id)["status"] == "SUCCESS"
        assert len(all_posts(hook)) == 1 + tstack.settings.callback_max_retries


def test_the_worker_checks_the_allowlist_again_before_posting(tstack: Stack) -> None:
    """A task published straight to the broker (the API would have refused its callback_url) runs, and
    its callback is not sent."""

    async def publish(task_id: str, url: str) -> None:
        engine = queue_taskiq.TaskiqEngine(tstack.settings)
        try:
            await engine.publish(task_id, {"features": SEED_BODY, "entity_id": None, "callback_url": url})
        finally:
            await engine.close()

    with receiver([], host=NOT_ALLOWED_HOST) as trap:
        task_id = new_task_id()
        asyncio.run(publish(task_id, trap.url))
        client = redis.Redis.from_url(tstack.settings.queue_results_url)
        try:
            deadline = time.monotonic() + 20
            key = queue_taskiq.result_key(tstack.settings, task_id)
            while (stored := client.get(key)) is None:
                assert time.monotonic() < deadline, "the task published straight to the broker never ran"
                time.sleep(0.05)
        finally:
            client.close()
        assert queue_taskiq.decode_meta(stored)["status"] == "SUCCESS"
        time.sleep(1.0)  # the callback task ran by now (it is sent when the result is stored)
        assert trap.received.empty()


def test_a_broker_out_of_reach_is_a_fast_503_and_stores_no_task(tstack: Stack) -> None:
    before = issued(tstack)
    with queue_api_beside(tstack, broker_url=f"redis://127.0.0.1:{free_port()}/1") as base:
        started = time.monotonic()
        resp = tstack.http.post(base + QUEUE_PREDICT_PATH, json=SEED_BODY, timeout=30)
        assert time.monotonic() - started < 5.0  # no hang
        assert resp.status_code == 503 and resp.json()["error"] == "queue_unavailable", resp.text
        assert "broker" in resp.json()["message"]
        assert issued(tstack) == before
        health = tstack.http.get(base + HEALTH_PATH, timeout=10)
        assert health.status_code == 503 and health.json()["dependencies"]["broker"].startswith("DOWN")


def test_a_worker_killed_mid_task_loses_nothing(tstack: Stack) -> None:
    """SIGKILL while the task runs: its message stays unacknowledged in the stream's group; the restarted
    worker claims it once it has been idle for QUEUE_VISIBILITY_TIMEOUT_S and runs it again."""
    task_id = submit(tstack, SEED_BODY).json()["task_id"]
    deadline = time.monotonic() + 10
    while not runs(tstack, task_id):  # counted when it starts (QUEUE_COUNT_RUNS)
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.01)
    _kill_group(_current_pid(tstack, "queue-worker"))
    assert status(tstack, task_id).json()["status"] == "PENDING"
    health_url = tstack.url("scoring-queue", HEALTH_PATH)
    while (health := tstack.http.get(health_url, timeout=5)).status_code != 503:
        assert time.monotonic() < deadline + 10, "the health check never noticed the worker is gone"
        time.sleep(0.2)
    assert health.json()["dependencies"]["workers"].startswith("DOWN")
    tstack.supervisor.restart("queue-worker")
    done = finished(tstack, task_id)
    assert done["status"] == "SUCCESS", done
    assert runs(tstack, task_id) == {"0": 2}  # delivered again: at least once


def test_a_restarted_redis_and_the_taskiq_worker_goes_on(tmp_path: Path) -> None:
    """REDIS_AOF (the default): a Redis killed with SIGKILL comes back with the results; the taskiq worker
    reads the stream again by itself (its heartbeat fresh again) and takes new tasks."""
    with start_stack(stack_settings(tmp_path, queue_engine="taskiq")) as stack:
        tasks = stack.url("scoring-queue", QUEUE_TASKS_PATH)
        task_id = submit(stack, SEED_BODY, wait_ms="5000").json()["task_id"]
        assert stack.http.get(f"{tasks}/{task_id}", timeout=5).json()["status"] == "SUCCESS"
        _kill(stack, "redis")
        stack.supervisor.restart("redis")
        assert stack.http.get(f"{tasks}/{task_id}", timeout=5).json()["status"] == "SUCCESS"
        _queue_ready(stack)
        again = submit(stack, SEED_BODY, wait_ms="5000").json()
        if again["status"] != "SUCCESS":  # the API's listener may still be reconnecting: the task ends anyway
            again = finished(stack, again["task_id"])
        assert again["status"] == "SUCCESS", again


def test_a_task_whose_message_was_lost_is_published_again(tmp_path: Path) -> None:
    """The engine-agnostic republish-if-lost (TaskStore): the task's message deleted from the stream while
    no worker runs; a status read after QUEUE_REPUBLISH_AFTER_S publishes it again, and it ends."""
    settings = stack_settings(tmp_path, queue_engine="taskiq", queue_republish_after_s=1.0)
    with start_stack(settings) as stack:
        _kill(stack, "queue-worker")
        task_id = submit(stack, SEED_BODY).json()["task_id"]
        broker = redis.Redis.from_url(stack.settings.queue_broker_url)
        try:
            stream = queue_taskiq.stream_key(stack.settings)
            ids = [msg_id for msg_id, _ in broker.xrange(stream)]
            assert len(ids) == 1 and broker.xdel(stream, *ids) == 1  # the message is gone
        finally:
            broker.close()
        stack.supervisor.restart("queue-worker")
        deadline = time.monotonic() + 20
        while (doc := status(stack, task_id).json())["status"] != "SUCCESS":
            assert time.monotonic() < deadline, f"the lost task was not published again: {doc}"
            time.sleep(0.3)
