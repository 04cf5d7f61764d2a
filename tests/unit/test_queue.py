"""The queue architecture's pure parts: settings → Celery config, backoff, the callback
allowlist, task documents, wait_ms, the issued-id registry (with a fake Redis), the health cache."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.exceptions
from celery.exceptions import SoftTimeLimitExceeded
from pydantic import ValidationError

from scoring_bench.core.callback_urls import callback_refusal, check_callback_url
from scoring_bench.core.errors import InvalidBody, ModelTimeout, UnknownEntity
from scoring_bench.core.settings import Settings
from scoring_bench.core.tasks import is_task_id, new_task_id, parse_wait_ms, task_document
from scoring_bench.service.queue import (
    CALLBACK_TASK,
    SCORE_TASK,
    CachedCheck,
    celery_config,
    retry_delay_s,
    scorer_settings,
)
from scoring_bench.service.task_store import TaskStore, document_of
from scoring_bench.stack.servers import command, service, worker_node_name
from scoring_bench.stack.supervisor import planned_ports

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _settings(**values: Any) -> Settings:
    values.setdefault("redis_url", None)
    values.setdefault("broker_url", None)
    values.setdefault("result_backend_url", None)
    return Settings(**values)


# --- settings --------------------------------------------------------------------------------


def test_defaults_are_the_documented_production_ones() -> None:
    s = _settings()
    assert s.scoring_queue_port == 8002 and s.queue_name == "scoring"
    assert s.queue_acks_late and s.queue_prefetch_multiplier == 1
    assert s.queue_soft_time_limit_s < s.queue_time_limit_s < s.queue_visibility_timeout_s
    assert s.callback_allowed_hosts == LOOPBACK
    assert s.queue_model_api == "async"


def test_broker_and_results_default_to_the_stacks_redis_never_another() -> None:
    embedded = _settings(embedded_redis_port=7001)
    assert embedded.feature_store_url.endswith(":7001/0")
    assert embedded.queue_broker_url == "redis://127.0.0.1:7001/1"
    assert embedded.queue_results_url == "redis://127.0.0.1:7001/2"
    users = _settings(redis_url="redis://cache:6379/3")  # only that db, under the key prefix
    assert users.queue_broker_url == users.queue_results_url == "redis://cache:6379/3"
    rabbit = _settings(broker_url="amqp://guest:guest@127.0.0.1:5672//")
    assert rabbit.queue_broker_url.startswith("amqp://") and rabbit.queue_results_url.endswith("/2")


def test_allowed_hosts_come_comma_separated_and_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBACK_ALLOWED_HOSTS", "LocalHost, [::1],hooks.example")
    s = Settings()
    assert s.callback_allowed_hosts == ("localhost", "::1", "hooks.example")
    monkeypatch.setenv("CALLBACK_ALLOWED_HOSTS", s.to_env()["CALLBACK_ALLOWED_HOSTS"])
    assert Settings().callback_allowed_hosts == s.callback_allowed_hosts


@pytest.mark.parametrize(
    "values",
    [
        {"queue_soft_time_limit_s": 15, "queue_time_limit_s": 15},
        {"queue_visibility_timeout_s": 16},  # not above the hard limit (15) + the longest backoff (5)
        {"broker_url": "sqs://queue"},
        {"result_backend_url": "amqp://127.0.0.1//"},
        {"queue_name": "has space"},
        {"queue_prefetch_multiplier": 0},
    ],
)
def test_inconsistent_queue_settings_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _settings(**values)


# --- Celery configuration -----------------------------------------------------------------------


def test_celery_config_follows_the_settings() -> None:
    s = _settings(
        queue_name="q1",
        queue_soft_time_limit_s=3,
        queue_time_limit_s=4,
        queue_result_expires_s=77,
        queue_visibility_timeout_s=30,
    )
    config = celery_config(s)
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["worker_prefetch_multiplier"] == 1
    assert (config["task_soft_time_limit"], config["task_time_limit"]) == (3, 4)
    assert config["result_expires"] == 77
    assert config["task_default_queue"] == config["control_exchange"] == "q1"
    assert config["accept_content"] == ["json"]
    transport = config["broker_transport_options"]
    assert transport["visibility_timeout"] == 30 and transport["unacked_restore_interval"] == 1
    assert transport["global_keyprefix"] == "scoring-bench:queue:"
    assert config["result_backend_transport_options"] == {"global_keyprefix": "scoring-bench:queue:"}
    assert not celery_config(_settings(queue_acks_late=False))["task_reject_on_worker_lost"]


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
def test_the_serializer_is_a_setting_and_the_api_reads_what_the_worker_stores(serializer: str) -> None:
    """QUEUE_SERIALIZER: messages and results in it, nothing else accepted; a result the worker's backend
    encodes is what the API's backend (the one its store and notifications decode with) reads back."""
    s = _settings(queue_serializer=serializer)
    config = celery_config(s)
    assert config["task_serializer"] == config["result_serializer"] == serializer
    assert config["accept_content"] == config["result_accept_content"] == [serializer]
    from scoring_bench.service.queue import make_celery

    worker, api = make_celery(s).backend, make_celery(s, reads_results_itself=True).backend
    meta = {"status": "SUCCESS", "result": {"detail": 0.5, "timings": {"total": 48.0}}, "task_id": "t"}
    stored = worker.encode(meta)
    assert api.decode_result(stored)["result"] == meta["result"]
    assert worker.serializer == api.serializer == serializer


def test_rabbitmq_publishes_with_confirms_and_no_redis_options() -> None:
    config = celery_config(_settings(broker_url="amqp://guest:guest@127.0.0.1:5672//"))
    assert config["broker_transport_options"] == {"confirm_publish": True}


def test_the_tasks_are_late_acked_and_bounded() -> None:
    from api_scoring_queue.worker import create_worker

    app = create_worker(Settings())
    score, deliver_callback = app.tasks[SCORE_TASK], app.tasks[CALLBACK_TASK]
    assert score.acks_late and score.reject_on_worker_lost
    assert score.max_retries == Settings().queue_max_retries
    assert deliver_callback.ignore_result


def test_the_worker_scores_against_the_chosen_model_api() -> None:
    s = _settings(model_async_port=9100, model_sync_port=9200)
    assert scorer_settings(s).model_sync_endpoint == s.model_async_endpoint
    assert ":9100/" in scorer_settings(s).model_sync_endpoint
    sync = _settings(queue_model_api="sync", model_sync_port=9200)
    assert ":9200/" in scorer_settings(sync).model_sync_endpoint


def test_worker_command_and_no_port() -> None:
    s = _settings(queue_worker_pool="threads", queue_worker_concurrency=9, queue_name="q2")
    argv = command(service("queue-worker"), s)
    assert argv[1:3] == ["-m", "api_scoring_queue.worker"]
    joined = " ".join(argv)
    assert "--pool threads" in joined and "--concurrency 9" in joined and "--queues q2" in joined
    assert argv[argv.index("--hostname") + 1] == worker_node_name(s)
    ports = planned_ports(s)
    assert "queue-worker" not in ports and ports["scoring-queue"] == (8002, "SCORING_QUEUE_PORT")
    assert "--port 8002" in " ".join(command(service("scoring-queue"), s))


def test_retry_backoff_is_exponential_capped_and_jittered() -> None:
    top = [retry_delay_s(n, 0.2, 1.0, rand=lambda: 1.0) for n in range(5)]
    assert top == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0])
    assert retry_delay_s(3, 0.2, 1.0, rand=lambda: 0.0) == 0.0
    assert 0.0 <= retry_delay_s(2, 0.2, 1.0) <= 0.8


# --- callbacks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "https://localhost/hook?x=1",
        "http://[::1]:8080/",
        "http://LOCALHOST/",
    ],
)
def test_loopback_callbacks_are_allowed(url: str) -> None:
    assert callback_refusal(url, LOOPBACK) is None
    assert check_callback_url(url, LOOPBACK) == url


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://example.com/hook", "not allowed"),
        ("http://10.0.0.1/hook", "not allowed"),
        ("http://169.254.169.254/latest/meta-data", "not allowed"),
        ("http://127.1/hook", "not allowed"),  # other spellings of loopback are not guessed at
        ("http://2130706433/hook", "not allowed"),
        ("http://127.0.0.1@example.com/", "credentials"),
        ("http://user:pw@127.0.0.1/", "credentials"),
        ("ftp://127.0.0.1/x", "http"),
        ("file:///etc/passwd", "http"),
        ("gopher://localhost:6379/_FLUSHALL", "http"),
        ("http:///hook", "no host"),
        ("http://127.0.0.1:99999/", "not a valid URL"),
        ("http://localhost/" + "a" * 3000, "longer"),
    ],
)
def test_other_callbacks_are_refused(url: str, reason: str) -> None:
    refusal = callback_refusal(url, LOOPBACK)
    assert refusal is not None and reason in refusal
    with pytest.raises(InvalidBody):
        check_callback_url(url, LOOPBACK)


def test_the_allowlist_is_a_setting() -> None:
    assert callback_refusal("https://hooks.example/x", ("hooks.example",)) is None
    assert callback_refusal("http://127.0.0.1/x", ("hooks.example",)) is not None


# --- task documents and wait_ms -------------------------------------------------------------------


def test_task_documents() -> None:
    assert task_document("t", "PENDING") == {"task_id": "t", "status": "PENDING"}
    assert task_document("t", "STARTED", {"pid": 1}) == {"task_id": "t", "status": "STARTED"}
    assert task_document("t", "SUCCESS", {"detail": 0.5}) == {
        "task_id": "t",
        "status": "SUCCESS",
        "result": {"detail": 0.5},
    }
    assert document_of("t", "SUCCESS", {"detail": 0.5}) == task_document("t", "SUCCESS", {"detail": 0.5})
    failed = document_of("t", "FAILURE", UnknownEntity("no features stored for entity_id 'x'"))
    assert failed["error"]["error"] == "unknown_entity" and "'x'" in failed["error"]["message"]
    assert document_of("t", "RETRY", ModelTimeout("slow"))["error"]["error"] == "model_timeout"
    timed_out = document_of("t", "FAILURE", SoftTimeLimitExceeded())
    assert timed_out["error"]["error"] == "task_time_limit"
    assert document_of("t", "FAILURE", KeyError("k"))["error"]["error"] == "task_failed"


@pytest.mark.parametrize("value, expected", [(None, 0), ("0", 0), ("250", 250), ("5000", 5000)])
def test_wait_ms_in_range(value: str | None, expected: int) -> None:
    assert parse_wait_ms(value, 5000) == expected


@pytest.mark.parametrize("value", ["-1", "5001", "1.5", "abc", "", "²", "1e3", "99999999999999999999"])
def test_wait_ms_out_of_range_is_422(value: str) -> None:
    with pytest.raises(InvalidBody) as err:
        parse_wait_ms(value, 5000)
    assert err.value.status == 422


def test_task_ids() -> None:
    assert is_task_id(new_task_id()) and new_task_id() != new_task_id()
    assert not is_task_id("../etc") and not is_task_id("x" * 36) and not is_task_id("")


# --- the issued-id registry -------------------------------------------------------------------------


class FakeRedis:
    """The three commands TaskStore uses, on a dict."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.expiry: dict[str, int] = {}

    async def set(self, name: str, value: str, ex: int) -> bool:
        self.data[name], self.expiry[name] = value.encode(), ex
        return True

    async def delete(self, *names: str) -> int:
        return sum(self.data.pop(n, None) is not None for n in names)

    async def mget(self, keys: list[Any]) -> list[bytes | None]:
        return [self.data.get(k) for k in keys]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _store(redis: FakeRedis, clock: FakeClock | None = None) -> TaskStore:
    clock = clock or FakeClock()
    return TaskStore(
        redis,
        "p:queue:",
        600,
        lambda task_id: f"p:queue:meta-{task_id}",
        lambda raw: {"status": raw.decode().split(":")[0], "result": raw.decode().split(":")[1]},
        sleep=clock.sleep,
        clock=clock,
    )


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_an_issued_id_is_pending_until_its_result_is_stored() -> None:
    redis = FakeRedis()
    store = _store(redis)
    _run(store.issue("a"))
    assert redis.expiry["p:queue:issued:a"] == 600  # the same expiry as the results
    assert _run(store.document("a")) == {"task_id": "a", "status": "PENDING"}
    redis.data["p:queue:meta-a"] = b"SUCCESS:0.5"
    assert _run(store.document("a")) == {"task_id": "a", "status": "SUCCESS", "result": "0.5"}


def test_an_id_never_issued_or_forgotten_is_unknown() -> None:
    redis = FakeRedis()
    store = _store(redis)
    assert _run(store.document("never")) is None
    _run(store.issue("b"))
    _run(store.forget("b"))
    assert _run(store.document("b")) is None


def test_a_stored_result_counts_even_after_the_registry_key_expired() -> None:
    redis = FakeRedis()
    redis.data["p:queue:meta-c"] = b"FAILURE:boom"
    assert _run(_store(redis).document("c"))["status"] == "FAILURE"  # type: ignore[index]


def test_wait_returns_as_soon_as_the_task_is_done() -> None:
    class FinishesOnFourthRead(FakeRedis):
        reads = 0

        async def mget(self, keys: list[Any]) -> list[bytes | None]:
            self.reads += 1
            if self.reads == 4:
                self.data["p:queue:meta-d"] = b"SUCCESS:1"
            return await super().mget(keys)

    redis, clock = FinishesOnFourthRead(), FakeClock()
    store = _store(redis, clock)
    _run(store.issue("d"))
    doc = _run(store.wait("d", 5_000))
    assert doc["status"] == "SUCCESS"
    assert clock.sleeps == pytest.approx([0.005, 0.01, 0.02])  # polled soon at first, then less often


def test_wait_gives_up_at_the_deadline_with_the_latest_state() -> None:
    redis, clock = FakeRedis(), FakeClock()
    store = _store(redis, clock)
    _run(store.issue("e"))
    doc = _run(store.wait("e", 120))
    assert doc == {"task_id": "e", "status": "PENDING"}
    assert clock.now == pytest.approx(0.12) and max(clock.sleeps) <= 0.05
    assert _run(store.wait("unknown", 120)) is None and clock.now == pytest.approx(0.12)


# --- the health cache ---------------------------------------------------------------------------


def test_the_ping_runs_once_per_ttl_however_many_ask() -> None:
    calls: list[int] = []
    now = [0.0]

    async def check() -> dict[str, str]:
        calls.append(1)
        await asyncio.sleep(0)
        return {"workers": "OK"}

    cached = CachedCheck(check, ttl_s=1.0, clock=lambda: now[0])

    async def scenario() -> None:  # one event loop, as in the API
        answers = await asyncio.gather(*(cached.get() for _ in range(20)))
        assert answers == [{"workers": "OK"}] * 20 and len(calls) == 1
        now[0] = 0.5
        await cached.get()
        assert len(calls) == 1
        now[0] = 1.5
        await asyncio.gather(cached.get(), cached.get())
        assert len(calls) == 2

    _run(scenario())


# --- the task's retries (run eagerly, with a fake scorer) ---------------------------------------------


class FakeScorer:
    """Raises the planned errors, then scores."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def score(self, request: Any) -> tuple[dict[str, Any], Any]:
        from scoring_bench.core.timing import Timings

        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"detail": 0.5, "entity_id": request.entity_id or "0", "scores": [0.5]}, Timings()


def _run_task(monkeypatch: pytest.MonkeyPatch, scorer: FakeScorer) -> Any:
    from api_scoring_queue.worker import ProcessClients, create_worker

    clients = ProcessClients(Settings())
    monkeypatch.setattr(clients, "scorer", lambda: scorer)
    app = create_worker(Settings(), clients)
    return app.tasks[SCORE_TASK].apply(kwargs={"features": [1.0], "entity_id": "7"})


def test_transient_errors_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    scorer = FakeScorer(ModelTimeout("slow"), ModelTimeout("slow"))
    result = _run_task(monkeypatch, scorer)
    assert result.successful() and scorer.calls == 3
    assert result.result["detail"] == 0.5 and set(result.result["timings"]) == {"total"}


def test_retries_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    retries = Settings().queue_max_retries
    scorer = FakeScorer(*[ModelTimeout("slow")] * (retries + 5))
    result = _run_task(monkeypatch, scorer)
    assert result.failed() and isinstance(result.result, ModelTimeout) and scorer.calls == retries + 1


def test_permanent_errors_fail_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    scorer = FakeScorer(UnknownEntity("no features stored for entity_id '7'"))
    result = _run_task(monkeypatch, scorer)
    assert result.failed() and isinstance(result.result, UnknownEntity) and scorer.calls == 1


class RedisThatDiesAfterTheIssue(FakeRedis):
    """One Redis for the broker and the results that goes down between the id's record and the publish
    (the faults experiment's Redis restart under load)."""

    async def delete(self, *names: str) -> int:
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")


def test_a_broker_and_result_store_down_together_are_a_503_not_a_500() -> None:
    from api_scoring_queue.app import Queue, make_engine
    from scoring_bench.core.errors import QueueUnavailable
    from scoring_bench.core.schemas import ScoreRequest

    async def submit() -> None:
        settings = _settings(broker_url="redis://127.0.0.1:9/1", result_backend_url="redis://127.0.0.1:9/2")
        queue = Queue(settings, make_engine(settings))  # as the API makes it
        queue.store = _store(RedisThatDiesAfterTheIssue())
        try:
            with pytest.raises(QueueUnavailable, match="broker"):
                await queue.submit(ScoreRequest(None, (1.0, 2.0)), None)
        finally:
            await queue.close()

    _run(submit())


def test_a_pool_with_no_free_connection_is_a_busy_queue_not_an_unreachable_one() -> None:
    """A burst larger than REDIS_POOL_SIZE waits QUEUE_POOL_WAIT_S for a connection; if none came, the 503
    says the queue is busy (retry), not that Redis is down."""
    import redis as redis_sync

    from api_scoring_queue.app import Queue, make_engine
    from scoring_bench.core.errors import QueueUnavailable
    from scoring_bench.core.schemas import ScoreRequest
    from scoring_bench.service.redis_clients import NO_CONNECTION, pool_exhausted

    class BusyRedis(FakeRedis):
        async def set(self, name: str, value: str, ex: int) -> bool:
            raise redis_sync.exceptions.ConnectionError(NO_CONNECTION)

    async def submit() -> None:
        settings = _settings(redis_pool_size=4, queue_pool_wait_s=2.5)
        queue = Queue(settings, make_engine(settings))
        assert queue.results.connection_pool.timeout == 2.5  # the pool's wait, not REDIS_TIMEOUT_S
        queue.store = _store(BusyRedis())
        try:
            with pytest.raises(QueueUnavailable, match=r"busy: all 4 connections .* for 2\.5 s"):
                await queue.submit(ScoreRequest(None, (1.0, 2.0)), None)
        finally:
            await queue.close()

    _run(submit())
    assert pool_exhausted(redis_sync.exceptions.ConnectionError(NO_CONNECTION))
    assert not pool_exhausted(redis_sync.exceptions.ConnectionError("Connection refused"))
    assert not pool_exhausted(redis_sync.exceptions.TimeoutError(NO_CONNECTION))


def test_a_task_pending_too_long_is_published_again_once_per_wait() -> None:
    """A message the broker lost (kombu's Redis transport drops one a worker popped and died with): its
    task stays PENDING for ever, unless a status read publishes it again."""
    redis, clock, now = FakeRedis(), FakeClock(), [1000.0]
    published: list[tuple[str, dict[str, Any]]] = []

    async def republish(task_id: str, task: dict[str, Any]) -> None:
        published.append((task_id, task))

    store = TaskStore(
        redis,
        "p:queue:",
        600,
        lambda task_id: f"p:queue:meta-{task_id}",
        lambda raw: {"status": raw.decode().split(":")[0], "result": raw.decode().split(":")[1]},
        sleep=clock.sleep,
        clock=clock,
        republish=republish,
        republish_after_s=80.0,
        wall=lambda: now[0],
    )
    _run(store.issue("a", {"features": [1.0], "entity_id": None}))
    now[0] += 79
    assert _run(store.document("a")) == {"task_id": "a", "status": "PENDING"} and published == []
    now[0] += 2
    assert _run(store.document("a"))["status"] == "PENDING"
    assert published == [("a", {"features": [1.0], "entity_id": None})]
    assert _run(store.document("a"))["status"] == "PENDING" and len(published) == 1  # not again at once
    now[0] += 81
    _run(store.document("a"))
    assert len(published) == 2  # as long again: once more
    redis.data["p:queue:meta-a"] = b"STARTED:x"
    now[0] += 1000
    _run(store.document("a"))
    assert (
        len(published) == 2
    )  # a task with a state is the broker's (a dead worker's: its visibility timeout)
    _run(store.issue("b"))  # recorded without its task: nothing to publish
    now[0] += 1000
    _run(store.document("b"))
    assert len(published) == 2


def test_a_task_is_published_again_after_the_broker_could_give_it_back() -> None:
    settings = _settings(queue_visibility_timeout_s=60, queue_time_limit_s=15, queue_retry_backoff_max_s=5)
    assert settings.queue_republish_after == 80
    assert _settings(queue_republish_after_s=30).queue_republish_after == 30
