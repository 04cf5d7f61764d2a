"""The queue's cost-per-task settings (doc/queue.md "Cost per task"): the broker's Redis client per channel,
the worker's SUCCESS stored without a read first, STARTED not stored by default."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from celery.backends.redis import RedisBackend

from scoring_bench.core.settings import Settings
from scoring_bench.service import kombu_redis
from scoring_bench.service.queue import (
    ResultStoreBackend,
    SuccessStoringBackend,
    celery_config,
    make_celery,
)


def _settings(**values: Any) -> Settings:
    values.setdefault("redis_url", None)
    values.setdefault("broker_url", None)
    values.setdefault("result_backend_url", None)
    return Settings(**values)


def test_the_cheaper_choices_are_the_defaults() -> None:
    s = _settings()
    assert not s.queue_track_started and not s.queue_result_read_before_success
    assert s.queue_broker_client == "channel"
    assert celery_config(s)["task_track_started"] is False


def test_one_redis_client_per_channel_on_a_redis_broker_only() -> None:
    assert celery_config(_settings())["broker_transport"] == kombu_redis.TRANSPORT
    assert celery_config(_settings(queue_broker_client="operation"))["broker_transport"] is None
    rabbitmq = _settings(broker_url="amqp://guest:guest@127.0.0.1:5672//")
    assert celery_config(rabbitmq)["broker_transport"] is None  # kombu picks py-amqp from the URL


def test_the_broker_connection_uses_the_transport_of_the_setting() -> None:
    with make_celery(_settings()).connection_for_write() as conn:
        assert isinstance(conn.transport, kombu_redis.Transport)
    with make_celery(_settings(queue_broker_client="operation")).connection_for_write() as conn:
        assert not isinstance(conn.transport, kombu_redis.Transport)


def test_a_channel_makes_its_client_once_per_pool() -> None:
    channel = object.__new__(kombu_redis.Channel)  # no broker: only conn_or_acquire is exercised
    made: list[object] = []

    def create_client() -> object:
        made.append(object())
        return made[-1]

    channel._create_client = create_client
    channel._pool = "pool-1"
    with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
        assert first is second is made[0]
    own = object()
    with channel.conn_or_acquire(own) as given:
        assert given is own  # a client brought along is used as it is
    channel._pool = "pool-2"  # a new pool (after a fork, a reconnect): a new client
    with channel.conn_or_acquire() as third:
        assert third is made[1]
    assert len(made) == 2


def test_the_backend_of_each_process() -> None:
    assert type(make_celery(_settings()).backend) is SuccessStoringBackend
    guarded = make_celery(_settings(queue_result_read_before_success=True)).backend
    assert type(guarded) is RedisBackend
    assert type(make_celery(_settings(), reads_results_itself=True).backend) is ResultStoreBackend


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> tuple[SuccessStoringBackend, list[str], list[str]]:
    """The worker's backend with its Redis calls recorded: (backend, reads, writes)."""
    store = make_celery(_settings()).backend
    assert isinstance(store, SuccessStoringBackend)
    reads: list[str] = []
    writes: list[str] = []

    def read(task_id: str) -> dict[str, Any]:
        reads.append(task_id)
        return {"status": "SUCCESS"}

    monkeypatch.setattr(store, "_get_task_meta_for", read)
    monkeypatch.setattr(store, "_set_with_state", lambda key, value, state: writes.append(state))
    return store, reads, writes


def test_a_success_is_stored_without_reading_first(
    backend: tuple[SuccessStoringBackend, list[str], list[str]],
) -> None:
    store, reads, writes = backend
    assert store._store_result("t1", {"score": 0.5}, "SUCCESS") == {"score": 0.5}
    assert reads == [] and writes == ["SUCCESS"]


def test_other_states_still_never_overwrite_a_success(
    backend: tuple[SuccessStoringBackend, list[str], list[str]],
) -> None:
    store, reads, writes = backend
    store._store_result("t1", None, "STARTED")
    store._store_result("t1", ValueError("x"), "FAILURE")
    assert reads == ["t1", "t1"] and writes == []  # the stored SUCCESS is kept


@pytest.mark.parametrize(("publish", "on_the_loop"), [("thread", False), ("inline", True)])
def test_the_api_publishes_on_a_thread_or_inline(publish: str, on_the_loop: bool) -> None:
    from scoring_bench.service.queue import CeleryEngine

    queue = object.__new__(CeleryEngine)  # no broker: only where the publish runs is exercised
    queue.settings = _settings(queue_publish=publish)
    published: list[tuple[str, int]] = []
    queue._publish = lambda task_id, kwargs: published.append((task_id, threading.get_ident()))  # type: ignore[method-assign]

    async def publish_once() -> int:
        await queue.publish("t1", {})
        return threading.get_ident()

    loop_thread = asyncio.run(publish_once())
    assert [task_id for task_id, _ in published] == ["t1"]
    assert (published[0][1] == loop_thread) is on_the_loop


@pytest.mark.parametrize("message_repr", ["celery", "short"])
def test_the_message_repr_of_a_task(message_repr: str) -> None:
    from scoring_bench.service.queue import CeleryEngine

    sent: list[dict[str, Any]] = []

    class Celery:
        def send_task(self, name: str, **options: Any) -> None:
            sent.append(options)

    queue = object.__new__(CeleryEngine)
    queue.settings = _settings(queue_message_repr=message_repr)
    queue.celery = Celery()  # type: ignore[assignment]
    kwargs = {"features": [0.5] * 30, "entity_id": "7", "callback_url": None, "submitted_at": 1.0}
    queue._publish("t1", kwargs)
    assert sent[0]["kwargs"] == kwargs and sent[0]["task_id"] == "t1"
    if message_repr == "short":
        assert sent[0]["kwargsrepr"] == "{30 features, entity '7'}" and sent[0]["argsrepr"] == "()"
    else:
        assert "kwargsrepr" not in sent[0]  # Celery's own saferepr
