"""The taskiq engine's pure parts: its settings, keys, stored format and decoding, the worker's command, and
the API's reads of its results through the engine-agnostic TaskStore."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from taskiq import TaskiqResult

from scoring_bench.core.errors import ModelUnavailable, UnknownEntity
from scoring_bench.core.settings import Settings
from scoring_bench.service import queue_taskiq
from scoring_bench.service.queue import QueueDepth
from scoring_bench.service.task_events import TaskEvents, channel_pattern
from scoring_bench.service.task_store import TaskStore
from scoring_bench.stack.servers import command, service, worker_node_name
from tests.unit.test_queue import FakeRedis, _settings


def test_the_engine_is_a_setting_celery_by_default() -> None:
    assert _settings().queue_engine == "celery"
    assert _settings(queue_engine="taskiq").queue_engine == "taskiq"
    with pytest.raises(ValueError):
        _settings(queue_engine="dramatiq")


@pytest.mark.parametrize("url", ["amqp://guest:guest@127.0.0.1:5672//", "pyamqp://127.0.0.1//"])
def test_taskiq_with_a_rabbitmq_broker_is_refused_with_what_to_do(url: str) -> None:
    with pytest.raises(ValueError, match=r"QUEUE_ENGINE=taskiq needs a Redis broker.*unset BROKER_URL"):
        _settings(queue_engine="taskiq", broker_url=url)
    assert _settings(queue_engine="celery", broker_url=url).queue_broker_url == url  # Celery takes it
    assert _settings(queue_engine="taskiq", broker_url="redis://127.0.0.1:6390/1").queue_engine == "taskiq"


def test_every_key_is_under_the_queues_prefix() -> None:
    settings = _settings(queue_engine="taskiq", redis_key_prefix="mine:")
    keys = [
        queue_taskiq.stream_key(settings),
        queue_taskiq.result_key(settings, "t1"),
        queue_taskiq.workers_key(settings),
    ]
    assert all(key.startswith("mine:queue:taskiq:") for key in keys)
    assert queue_taskiq.result_key(settings, "t1") == queue_taskiq.result_key_prefix(settings) + "t1"
    assert QueueDepth(settings).stream == queue_taskiq.stream_key(settings)  # the depth reads the stream


def test_the_stack_starts_the_engines_worker() -> None:
    taskiq = _settings(queue_engine="taskiq")
    argv = command(service("queue-worker"), taskiq)
    assert argv[1:] == ["-m", "api_scoring_queue.taskiq_worker", "--node", worker_node_name(taskiq)]
    assert "api_scoring_queue.worker" in command(service("queue-worker"), _settings())


def test_results_are_json_and_decode_to_what_the_task_document_shows() -> None:
    ok = queue_taskiq.encode_meta("t1", "SUCCESS", {"detail": 0.5})
    assert json.loads(ok) == {"task_id": "t1", "status": "SUCCESS", "result": {"detail": 0.5}}
    assert queue_taskiq.decode_meta(ok)["result"] == {"detail": 0.5}
    failed = queue_taskiq.encode_meta("t1", "FAILURE", error=UnknownEntity("no entity 'x'"))
    assert json.loads(failed)["error"]["error"] == "unknown_entity"  # the body, not a pickled exception
    decoded = queue_taskiq.decode_meta(failed)
    assert isinstance(decoded["result"], queue_taskiq.StoredError)
    assert decoded["result"].body() == UnknownEntity("no entity 'x'").body()
    other = queue_taskiq.encode_meta("t1", "FAILURE", error=ZeroDivisionError("boom"))
    assert queue_taskiq.decode_meta(other)["result"].body()["error"] == "task_failed"
    with pytest.raises(ValueError):
        queue_taskiq.decode_meta(b'{"no": "status"}')


def test_a_taskiq_result_is_stored_as_success_or_failure() -> None:
    ok: TaskiqResult[Any] = TaskiqResult(is_err=False, return_value={"detail": 0.1}, execution_time=0.0)
    assert json.loads(queue_taskiq.meta_of_result("t", ok))["status"] == "SUCCESS"
    err: TaskiqResult[Any] = TaskiqResult(
        is_err=True, return_value=None, execution_time=0.0, error=ModelUnavailable("down")
    )
    meta = json.loads(queue_taskiq.meta_of_result("t", err))
    assert meta["status"] == "FAILURE" and meta["error"]["error"] == "model_unavailable"
    limit = queue_taskiq.TaskTimeLimit("too long")
    assert (
        json.loads(queue_taskiq.encode_meta("t", "FAILURE", error=limit))["error"]["error"]
        == "task_time_limit"
    )


def _taskiq_store(redis: FakeRedis, settings: Settings) -> TaskStore:
    return TaskStore(
        redis,
        settings.queue_key_prefix,
        600,
        lambda task_id: queue_taskiq.result_key(settings, task_id),
        queue_taskiq.decode_meta,
    )


def test_the_task_store_reads_the_taskiq_engines_results() -> None:
    """The issued-id registry and the reads are the Celery engine's, given taskiq's key and decoder."""
    settings = _settings(queue_engine="taskiq")
    redis = FakeRedis()
    store = _taskiq_store(redis, settings)

    async def reads() -> list[dict[str, Any] | None]:
        await store.issue("t1", {"features": [1.0]})
        await store.issue("t2")
        await store.issue("t3")
        pending = await store.document("t1")
        redis.data[queue_taskiq.result_key(settings, "t1")] = queue_taskiq.encode_meta(
            "t1", "SUCCESS", {"d": 1}
        )
        redis.data[queue_taskiq.result_key(settings, "t2")] = queue_taskiq.encode_meta(
            "t2", "FAILURE", error=UnknownEntity("no entity")
        )
        redis.data[queue_taskiq.result_key(settings, "t3")] = queue_taskiq.encode_meta(
            "t3", "RETRY", error=ModelUnavailable("down")
        )
        return [pending, *[await store.document(t) for t in ("t1", "t2", "t3", "never")]]

    pending, success, failure, retry, unknown = asyncio.run(reads())
    assert pending == {"task_id": "t1", "status": "PENDING"}
    assert success == {"task_id": "t1", "status": "SUCCESS", "result": {"d": 1}}
    assert failure is not None and failure["status"] == "FAILURE" and "result" not in failure
    assert failure["error"] == UnknownEntity("no entity").body()
    assert retry is not None and retry["status"] == "RETRY" and retry["error"]["error"] == "model_unavailable"
    assert unknown is None


def test_the_notification_of_a_taskiq_result_wakes_its_waiter() -> None:
    """TaskEvents decodes what the taskiq worker publishes on the result key's channel; a RETRY does not
    wake the waiter, the SUCCESS does."""
    settings = _settings(queue_engine="taskiq")
    prefix = queue_taskiq.result_key_prefix(settings)
    assert channel_pattern(prefix) == prefix + "*"  # no glob characters in the prefix

    async def wake() -> dict[str, Any]:
        events = TaskEvents(None, prefix, queue_taskiq.decode_meta)  # type: ignore[arg-type]  # never listens
        channel = queue_taskiq.result_key(settings, "t1").encode()
        with events.watch("t1") as notified:
            events.deliver(channel, queue_taskiq.encode_meta("t1", "RETRY", error=ModelUnavailable("down")))
            assert not notified.done()
            events.deliver(channel, queue_taskiq.encode_meta("t1", "SUCCESS", {"detail": 0.25}))
            return dict(await notified)

    assert asyncio.run(wake())["result"] == {"detail": 0.25}


def test_the_callback_task_stores_no_result() -> None:
    """The callback task is published with ``store_result`` false: the backend stores nothing for it."""
    stored: list[str] = []

    class Backend(queue_taskiq.JsonResultBackend):
        async def store(self, task_id: str, meta: bytes, success: bool = False) -> None:
            stored.append(task_id)

    backend = Backend(_settings(queue_engine="taskiq"))
    quiet: TaskiqResult[Any] = TaskiqResult(
        is_err=False, return_value=None, execution_time=0.0, labels={queue_taskiq.STORE_RESULT_LABEL: False}
    )
    asyncio.run(backend.set_result("callback", quiet))
    asyncio.run(backend.set_result("score", TaskiqResult(is_err=False, return_value={}, execution_time=0.0)))
    assert stored == ["score"]


class ResultRedis:
    """get, and a pipeline of set + publish, on a dict (what JsonResultBackend.store uses)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.published: list[tuple[str, bytes]] = []

    async def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def pipeline(self, transaction: bool = False) -> ResultRedis.Pipe:
        return ResultRedis.Pipe(self)

    class Pipe:
        def __init__(self, redis: ResultRedis) -> None:
            self.redis = redis
            self.ops: list[tuple[str, str, bytes]] = []

        def set(self, key: str, value: bytes, ex: int) -> None:
            self.ops.append(("set", key, value))

        def publish(self, channel: str, value: bytes) -> None:
            self.ops.append(("publish", channel, value))

        async def execute(self) -> None:
            for op, key, value in self.ops:
                if op == "set":
                    self.redis.data[key] = value
                else:
                    self.redis.published.append((key, value))


def test_a_stored_success_is_never_overwritten_by_a_duplicate_runs_failure() -> None:
    settings = _settings(queue_engine="taskiq")
    backend = queue_taskiq.JsonResultBackend(settings)
    redis = ResultRedis()
    backend.client = redis  # type: ignore[assignment]
    key = queue_taskiq.result_key(settings, "t1")
    ok: TaskiqResult[Any] = TaskiqResult(is_err=False, return_value={"d": 1}, execution_time=0.0)
    failed: TaskiqResult[Any] = TaskiqResult(
        is_err=True, return_value=None, execution_time=0.0, error=ModelUnavailable("down")
    )

    async def runs() -> None:
        await backend.set_result("t1", failed)  # a first run failed: stored (nothing there yet)
        assert json.loads(redis.data[key])["status"] == "FAILURE"
        await backend.set_result("t1", ok)  # a SUCCESS is stored over anything
        await backend.set_result("t1", failed)  # a duplicate run's failure is not stored over it
        await backend.store("t1", queue_taskiq.encode_meta("t1", "RETRY", error=ModelUnavailable("down")))

    asyncio.run(runs())
    assert json.loads(redis.data[key])["status"] == "SUCCESS"
    assert [json.loads(v)["status"] for _, v in redis.published] == ["FAILURE", "SUCCESS"]
    assert all(channel == key for channel, _ in redis.published)  # published on the key's own name


def test_a_message_whose_ack_failed_is_no_longer_kept_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """The broker down at the ack: tried again, then given up, and the message leaves the worker's in-flight
    set (which it XCLAIMs to itself every second), so a live worker claims it after the visibility timeout."""
    monkeypatch.setattr(queue_taskiq, "ACK_RETRY_S", 0.0)
    settings = _settings(queue_engine="taskiq", broker_url="redis://127.0.0.1:9/1", redis_timeout_s=0.2)
    broker = queue_taskiq.ScoringStreamBroker(settings, consumer_name="w", worker=True)
    message = broker._message(b"1-0", {b"data": b"{}"})
    assert broker.in_flight == {b"1-0"}

    async def ack() -> None:
        await message.ack()  # type: ignore[misc]
        await broker.connection_pool.disconnect()

    asyncio.run(ack())
    assert broker.in_flight == set()
