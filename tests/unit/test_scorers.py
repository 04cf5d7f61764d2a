"""Each attribution knob really changes the code path (fakes instead of network I/O)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, ClassVar

import pytest

from api_scoring_queue.worker import TaskScorer
from scoring_bench.core.schemas import ScoreRequest
from scoring_bench.core.settings import Settings
from scoring_bench.service import scorer_async, scorer_sync
from scoring_bench.service.queue import scorer_settings

REQUEST = ScoreRequest("1", (1.0, 2.0))


class FakeClient:
    made: ClassVar[list[FakeClient]] = []

    def __init__(self, *_: Any) -> None:
        self.closed = False
        self.threads: list[str] = []
        FakeClient.made.append(self)

    def predict(self, body: bytes, model_id: int) -> float:
        self.threads.append(threading.current_thread().name)
        return 0.1 * (model_id + 1)

    def health(self) -> str:
        return "OK"

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_sync(monkeypatch: pytest.MonkeyPatch) -> type[FakeClient]:
    FakeClient.made = []
    monkeypatch.setattr(scorer_sync, "make_model_client", FakeClient)
    monkeypatch.setattr(scorer_sync.SyncScorer, "read_features", lambda self, entity_id: [0.5])
    return FakeClient


def test_sync_pooled_client_is_made_once(fake_sync: type[FakeClient]) -> None:
    scorer = scorer_sync.SyncScorer(Settings(http_client_lifetime="process"))
    for _ in range(3):
        body, _ = scorer.score(REQUEST)
    assert len(fake_sync.made) == 1 and not fake_sync.made[0].closed
    assert body["scores"] == [0.1, 0.2]


def test_sync_client_per_request_makes_and_closes_one_per_request(fake_sync: type[FakeClient]) -> None:
    scorer = scorer_sync.SyncScorer(Settings(http_client_lifetime="request"))
    for _ in range(3):
        scorer.score(REQUEST)
    assert len(fake_sync.made) == 3 and all(c.closed for c in fake_sync.made)


def test_sync_concurrent_calls_run_on_the_thread_pool(fake_sync: type[FakeClient]) -> None:
    sequential = scorer_sync.SyncScorer(Settings(model_calls="auto", num_models=4))
    sequential.score(REQUEST)
    assert set(fake_sync.made[-1].threads) == {threading.current_thread().name}
    concurrent = scorer_sync.SyncScorer(Settings(model_calls="concurrent", num_models=4))
    body, timings = concurrent.score(REQUEST)
    threads = fake_sync.made[-1].threads  # the first call on the request's thread, the others on the pool
    assert sorted(threads) == sorted(
        [threading.current_thread().name] + [n for n in threads if n.startswith("model-call")]
    )
    assert sum(name.startswith("model-call") for name in threads) == 3
    assert body["scores"] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert list(timings.steps) == ["feature_store", "model_0", "model_1", "model_2", "model_3"]


class FakeAsyncClient:
    made: ClassVar[list[FakeAsyncClient]] = []
    in_flight = 0
    most_in_flight = 0

    def __init__(self, *_: Any) -> None:
        self.closed = False
        FakeAsyncClient.made.append(self)

    async def predict(self, body: bytes, model_id: int) -> float:
        FakeAsyncClient.in_flight += 1
        FakeAsyncClient.most_in_flight = max(FakeAsyncClient.most_in_flight, FakeAsyncClient.in_flight)
        await asyncio.sleep(0.01)
        FakeAsyncClient.in_flight -= 1
        return 0.1 * (model_id + 1)

    async def health(self) -> str:
        return "OK"

    async def aclose(self) -> None:
        self.closed = True


class FakeRedis:
    def __init__(self) -> None:
        self.calls = 0

    def get(self, key: str) -> bytes:
        self.calls += 1
        return b"[0.5]"


@pytest.fixture
def fake_async(monkeypatch: pytest.MonkeyPatch) -> type[FakeAsyncClient]:
    FakeAsyncClient.made, FakeAsyncClient.most_in_flight = [], 0
    monkeypatch.setattr(scorer_async, "make_async_model_client", FakeAsyncClient)
    return FakeAsyncClient


def _run_async(settings: Settings, times: int = 3) -> scorer_async.AsyncScorer:
    async def go() -> scorer_async.AsyncScorer:
        scorer = scorer_async.AsyncScorer(settings)
        await scorer.start()
        fake = FakeRedis()
        if scorer.blocking_redis is not None:
            scorer.blocking_redis = fake  # type: ignore[assignment]
        else:

            async def aget(key: str) -> bytes:
                return fake.get(key)

            scorer.redis.get = aget  # type: ignore[method-assign, union-attr]
        for _ in range(times):
            await scorer.score(REQUEST)
        scorer.fake_redis = fake  # type: ignore[attr-defined]
        return scorer

    return asyncio.run(go())


def test_async_client_per_request(fake_async: type[FakeAsyncClient]) -> None:
    _run_async(Settings(http_client_lifetime="process"))
    assert len(fake_async.made) == 1
    _run_async(Settings(http_client_lifetime="request"))
    assert len(fake_async.made) == 1 + 3 and all(c.closed for c in fake_async.made[1:])


def test_async_calls_are_gathered_unless_sequential(fake_async: type[FakeAsyncClient]) -> None:
    _run_async(Settings(num_models=4), times=1)
    assert fake_async.most_in_flight == 4
    fake_async.most_in_flight = 0
    _run_async(Settings(num_models=4, model_calls="sequential"), times=1)
    assert fake_async.most_in_flight == 1


def test_async_blocking_redis_uses_the_blocking_client(fake_async: type[FakeAsyncClient]) -> None:
    blocking = _run_async(Settings(async_redis_client="blocking"))
    assert blocking.redis is None and blocking.fake_redis.calls == 3  # type: ignore[attr-defined]
    native = _run_async(Settings(async_redis_client="asyncio"))
    assert native.blocking_redis is None and native.redis is not None


def test_async_client_library_follows_the_setting() -> None:
    async def make(library: str) -> type:
        client = scorer_async.make_async_model_client(Settings(async_http_client=library))
        await client.aclose()
        return type(client)

    assert asyncio.run(make("httpx")) is scorer_async.HttpxModelClient
    assert asyncio.run(make("aiohttp")) is scorer_async.AiohttpModelClient


def test_presets_resolve_under_explicit_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    seed = Settings(scoring_preset="seed-faithful")
    assert (
        seed.http_client_lifetime,
        seed.async_redis_client,
        seed.scoring_sync_worker_class,
        seed.sync_http_client,
        seed.async_http_client,
    ) == ("request", "blocking", "meinheld", "requests", "httpx")
    tuned = Settings()
    assert (tuned.http_client_lifetime, tuned.async_redis_client, tuned.scoring_sync_worker_class) == (
        "process",
        "asyncio",
        "gthread",
    )
    monkeypatch.setenv("SCORING_PRESET", "seed-faithful")
    monkeypatch.setenv("ASYNC_REDIS_CLIENT", "asyncio")
    mixed = Settings()
    assert mixed.async_redis_client == "asyncio" and mixed.http_client_lifetime == "request"
    child = Settings(**{k.lower(): v for k, v in mixed.to_env().items()})
    assert child == mixed


@pytest.mark.parametrize(
    "model_calls, expected",
    [
        ("auto", {"sync": False, "async": True, "queue": False}),
        ("sequential", {"sync": False, "async": False, "queue": False}),
        ("concurrent", {"sync": True, "async": True, "queue": True}),
    ],
)
def test_one_model_call_policy_for_every_architecture(model_calls: str, expected: dict[str, bool]) -> None:
    # QUEUE_MODEL_CALLS=auto: the queue's worker as the sync handler
    settings = Settings(model_calls=model_calls, queue_model_calls="auto")
    assert {arch: settings.concurrent_model_calls(arch) for arch in expected} == expected  # type: ignore[arg-type]
    assert scorer_sync.SyncScorer(settings).concurrent is expected["sync"]
    assert scorer_async.AsyncScorer(settings).concurrent is expected["async"]
    assert TaskScorer(scorer_settings(settings)).concurrent is expected["queue"]


@pytest.mark.parametrize("model_calls", ["auto", "sequential", "concurrent"])
@pytest.mark.parametrize("queue_model_calls", ["sequential", "concurrent"])
def test_the_queue_worker_has_a_model_call_policy_of_its_own(
    model_calls: str, queue_model_calls: str
) -> None:
    settings = Settings(model_calls=model_calls, queue_model_calls=queue_model_calls)
    concurrent = queue_model_calls == "concurrent"
    assert settings.concurrent_model_calls("queue") is concurrent
    assert TaskScorer(scorer_settings(settings)).concurrent is concurrent
    assert Settings().concurrent_model_calls("queue")  # the default: the queue at its best
