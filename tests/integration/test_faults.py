"""Dependencies whose process dies give fast, explicit 5xx answers from the real servers (a slow
or unreachable dependency, in process: tests/apps/)."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest
import redis

from scoring_bench.core.endpoints import QUEUE_TASKS_PATH
from scoring_bench.service.queue import queue_keys
from scoring_bench.stack.probes import check_worker
from tests.integration.conftest import SCORING_SERVICES, SEED_BODY, Stack, stack_settings, start_stack

pytestmark = pytest.mark.integration


def _kill(stack: Stack, name: str) -> None:
    proc = psutil.Process(stack.pid(name))
    procs = [proc, *proc.children(recursive=True)]
    for p in procs:
        p.kill()
    psutil.wait_procs(procs, timeout=5)


def test_a_model_that_is_down_gives_502(tmp_path: Path) -> None:
    with start_stack(stack_settings(tmp_path)) as stack:
        _kill(stack, "model-sync")
        _kill(stack, "model-async")
        for name in SCORING_SERVICES:
            resp = stack.post(name, SEED_BODY)
            assert resp.status_code == 502, resp.text
            assert resp.json()["error"] == "model_unavailable"
            health = stack.http.get(stack.url(name, "/api/v1/healthcheck"), timeout=5)
            assert health.status_code == 503
            assert health.json()["dependencies"]["model_api"].startswith("DOWN")


def test_redis_down_gives_503(tmp_path: Path) -> None:
    with start_stack(stack_settings(tmp_path)) as stack:
        _kill(stack, "redis")
        for name in SCORING_SERVICES:
            resp = stack.post(name, SEED_BODY)
            assert resp.status_code == 503, resp.text
            assert resp.json()["error"] == "feature_store_unavailable"
            health = stack.http.get(stack.url(name, "/api/v1/healthcheck"), timeout=5).json()
            assert health["status"] == "DEGRADED"
            assert health["dependencies"]["feature_store"].startswith("DOWN")


def _queue_ready(stack: Stack) -> None:
    """Wait until the queue's worker consumes again (its broker connection back)."""
    deadline = time.monotonic() + 30
    while not check_worker(stack.settings)[0]:
        assert time.monotonic() < deadline, "the worker did not reconnect to the restarted Redis"
        time.sleep(0.2)


def test_a_restarted_redis_reloads_its_data_and_the_queue_goes_on(tmp_path: Path) -> None:
    """REDIS_AOF (the default, everysec): a Redis killed with SIGKILL comes back with its features, the
    queue's results and issued ids; the worker reconnects by itself and takes new tasks."""
    with start_stack(stack_settings(tmp_path)) as stack:
        tasks = stack.url("scoring-queue", QUEUE_TASKS_PATH)
        task_id = stack.post("scoring-queue", SEED_BODY, params={"wait_ms": "5000"}).json()["task_id"]
        assert stack.http.get(f"{tasks}/{task_id}", timeout=5).json()["status"] == "SUCCESS"
        _kill(stack, "redis")
        assert stack.post("scoring-sync", SEED_BODY).status_code == 503
        stack.supervisor.restart("redis")
        assert stack.post("scoring-sync", {"entity_id": "199", "features": [1.0]}).status_code == 200
        assert stack.http.get(f"{tasks}/{task_id}", timeout=5).json()["status"] == "SUCCESS"
        _queue_ready(stack)
        again = stack.post("scoring-queue", SEED_BODY, params={"wait_ms": "5000"}).json()
        assert again["status"] == "SUCCESS", again


def test_without_its_append_only_file_a_restarted_redis_is_seeded_again(tmp_path: Path) -> None:
    """REDIS_AOF=off: what Redis held is gone (a task's result: its id is unknown), but the supervisor
    seeds the features again, so scoring goes on."""
    with start_stack(stack_settings(tmp_path, redis_aof="off")) as stack:
        task_id = stack.post("scoring-queue", SEED_BODY, params={"wait_ms": "5000"}).json()["task_id"]
        _kill(stack, "redis")
        stack.supervisor.restart("redis")
        assert stack.post("scoring-async", {"entity_id": "199", "features": [1.0]}).status_code == 200
        tasks = stack.url("scoring-queue", QUEUE_TASKS_PATH)
        assert stack.http.get(f"{tasks}/{task_id}", timeout=5).status_code == 404


def test_a_task_whose_message_the_broker_lost_is_published_again(tmp_path: Path) -> None:
    """A worker killed between kombu's BRPOP and its record of the message takes the message with it. Here
    the message is deleted from the broker outright: a status read after QUEUE_REPUBLISH_AFTER_S publishes
    the task again, and it ends."""
    with start_stack(stack_settings(tmp_path, queue_republish_after_s=1.0)) as stack:
        _kill(stack, "queue-worker")
        task_id = stack.post("scoring-queue", SEED_BODY).json()["task_id"]
        broker = redis.Redis.from_url(stack.settings.queue_broker_url)
        try:
            assert broker.delete(*queue_keys(stack.settings)) == 1  # the message is gone
        finally:
            broker.close()
        stack.supervisor.restart("queue-worker")
        tasks = stack.url("scoring-queue", QUEUE_TASKS_PATH)
        deadline = time.monotonic() + 20
        while (doc := stack.http.get(f"{tasks}/{task_id}", timeout=5).json())["status"] != "SUCCESS":
            assert time.monotonic() < deadline, f"the lost task was not published again: {doc}"
            time.sleep(0.3)
