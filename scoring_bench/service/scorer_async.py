"""The asynchronous I/O shell: ``redis.asyncio`` and one shared aiohttp session, the model
calls gathered concurrently. Nothing here blocks the loop — unless a setting asks for the
seed's choices (a blocking Redis call, a new HTTP client per request, calls one after another),
which the attribution experiment measures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, aclosing, nullcontext
from typing import Any, ClassVar, Protocol

import aiohttp
import httpx
import redis
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from yarl import URL

from scoring_bench.core import features as fs
from scoring_bench.core import health
from scoring_bench.core.endpoints import batch_url, health_url
from scoring_bench.core.errors import ModelTimeout, ModelUnavailable
from scoring_bench.core.schemas import ScoreRequest
from scoring_bench.core.scoring import parse_model_batch_response, parse_model_response
from scoring_bench.core.settings import Architecture, Settings
from scoring_bench.core.timing import FEATURE_STORE_STEP, Timings, model_step
from scoring_bench.service.redis_clients import async_redis, sync_redis
from scoring_bench.service.scorer_base import HEALTH_TIMEOUT_S, JSON_HEADERS, BaseScorer


class AsyncModelClient(Protocol):
    async def predict(self, body: bytes, model_id: int) -> float: ...
    async def predict_batch(self, body: bytes, model_id: int, size: int) -> list[float]: ...
    async def health(self) -> str: ...
    async def aclose(self) -> None: ...


class AiohttpModelClient:
    """One aiohttp session (its connector is the pool)."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.model_async_endpoint
        self.timeout = settings.model_timeout_s
        # each model's URL built once: a query string from params= costs yarl a parse and an encode per call
        base = URL(self.url)
        self.urls = [base.update_query(model_id=i) for i in range(settings.num_models)]
        self.batch_url = URL(batch_url(self.url))
        self.batch_urls = [self.batch_url.update_query(model_id=i) for i in range(settings.num_models)]
        connector = aiohttp.TCPConnector(limit=settings.http_pool_size, keepalive_timeout=30.0)
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=settings.model_timeout_s, connect=settings.model_connect_timeout_s
            ),
        )

    async def predict(self, body: bytes, model_id: int) -> float:
        # inline, not through _post: the async handler's hot path, one coroutine frame less per call
        try:
            url = self.urls[model_id] if model_id < len(self.urls) else URL(self.url) % {"model_id": model_id}
            async with self.session.post(url, data=body, headers=JSON_HEADERS) as resp:
                data = await resp.read()
                status = resp.status
        except aiohttp.ConnectionTimeoutError as exc:
            raise ModelUnavailable(f"model {model_id}: cannot connect: {exc!r}") from None
        except TimeoutError:
            raise ModelTimeout(f"model {model_id} did not answer within {self.timeout} s") from None
        except aiohttp.ClientError as exc:
            raise ModelUnavailable(f"model {model_id} is unreachable: {exc!r}") from None
        return parse_model_response(status, data, model_id)

    async def predict_batch(self, body: bytes, model_id: int, size: int) -> list[float]:
        """One call of the model API's batch route (``body``: a JSON array of ``size`` feature vectors)."""
        ids = self.batch_urls
        url = ids[model_id] if model_id < len(ids) else self.batch_url % {"model_id": model_id}
        return parse_model_batch_response(*await self._post(url, body, model_id), model_id, size)

    async def _post(self, url: URL, body: bytes, model_id: int) -> tuple[int, bytes]:
        """The batch route's POST, with predict's errors."""
        try:
            async with self.session.post(url, data=body, headers=JSON_HEADERS) as resp:
                return resp.status, await resp.read()
        except aiohttp.ConnectionTimeoutError as exc:
            raise ModelUnavailable(f"model {model_id}: cannot connect: {exc!r}") from None
        except TimeoutError:
            raise ModelTimeout(f"model {model_id} did not answer within {self.timeout} s") from None
        except aiohttp.ClientError as exc:
            raise ModelUnavailable(f"model {model_id} is unreachable: {exc!r}") from None

    async def health(self) -> str:
        try:
            async with self.session.get(
                health_url(self.url), timeout=aiohttp.ClientTimeout(total=HEALTH_TIMEOUT_S)
            ) as resp:
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            return health.down(repr(exc))
        return health.OK if status == 200 else health.down(f"HTTP {status}")

    async def aclose(self) -> None:
        await self.session.close()


class HttpxModelClient:
    """An ``httpx.AsyncClient`` (what the seed's async handler used)."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.model_async_endpoint
        self.timeout = settings.model_timeout_s
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.model_timeout_s, connect=settings.model_connect_timeout_s),
            limits=httpx.Limits(max_connections=settings.http_pool_size),
            trust_env=False,
        )

    async def predict(self, body: bytes, model_id: int) -> float:
        resp = await self._post(self.url, body, model_id)
        return parse_model_response(resp.status_code, resp.content, model_id)

    async def predict_batch(self, body: bytes, model_id: int, size: int) -> list[float]:
        resp = await self._post(batch_url(self.url), body, model_id)
        return parse_model_batch_response(resp.status_code, resp.content, model_id, size)

    async def _post(self, url: str, body: bytes, model_id: int) -> httpx.Response:
        try:
            return await self.client.post(
                url, params={"model_id": model_id}, content=body, headers=JSON_HEADERS
            )
        except httpx.ConnectTimeout as exc:
            raise ModelUnavailable(f"model {model_id}: cannot connect: {exc!r}") from None
        except httpx.TimeoutException:
            raise ModelTimeout(f"model {model_id} did not answer within {self.timeout} s") from None
        except httpx.HTTPError as exc:
            raise ModelUnavailable(f"model {model_id} is unreachable: {exc!r}") from None

    async def health(self) -> str:
        try:
            status = (await self.client.get(health_url(self.url), timeout=HEALTH_TIMEOUT_S)).status_code
        except httpx.HTTPError as exc:
            return health.down(repr(exc))
        return health.OK if status == 200 else health.down(f"HTTP {status}")

    async def aclose(self) -> None:
        await self.client.aclose()


def make_async_model_client(settings: Settings) -> AsyncModelClient:
    """Must run inside the event loop (aiohttp binds its session to it)."""
    clients: dict[str, Callable[[Settings], AsyncModelClient]] = {
        "aiohttp": AiohttpModelClient,
        "httpx": HttpxModelClient,
    }
    return clients[settings.async_http_client](settings)


class AsyncScorer(BaseScorer):
    """Made with the app, started in its lifespan (inside the running loop)."""

    architecture: ClassVar[Architecture] = "async"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.pooled: AsyncModelClient | None = None
        self.redis: aioredis.Redis | None = None
        self.blocking_redis: redis.Redis | None = None

    async def start(self) -> None:
        if self.settings.http_client_lifetime == "process":
            self.pooled = make_async_model_client(self.settings)
        if self.settings.async_redis_client == "blocking":
            self.blocking_redis = sync_redis(self.settings)
        else:
            self.redis = async_redis(self.settings)

    async def close(self) -> None:
        if self.pooled is not None:
            await self.pooled.aclose()
        if self.redis is not None:
            await self.redis.aclose()
            await self.redis.connection_pool.disconnect()
        if self.blocking_redis is not None:
            self.blocking_redis.close()

    def model_client(self) -> AbstractAsyncContextManager[AsyncModelClient]:
        """The process's pooled client, or (``HTTP_CLIENT_LIFETIME=request``, the seed's way)
        a new one for this request, closed after it. Made inside the running loop."""
        if self.pooled is not None:
            return nullcontext(self.pooled)
        return aclosing(make_async_model_client(self.settings))

    async def _redis(self, command: str, *args: Any) -> Any:
        if self.blocking_redis is not None:  # blocks the event loop: the seed's choice, on purpose
            return getattr(self.blocking_redis, command)(*args)
        assert self.redis is not None, "AsyncScorer.start() was not called"
        return await getattr(self.redis, command)(*args)

    async def read_features(self, entity_id: str) -> list[float]:
        try:
            raw = await self._redis("get", self.feature_key(entity_id))
        except RedisError as exc:
            raise self.store_unavailable(exc) from None
        return fs.decode(entity_id, raw)

    async def score(self, request: ScoreRequest) -> tuple[dict[str, Any], Timings]:
        timings = Timings()
        entity_id = self.entity_id(request)
        started = time.perf_counter()
        stored = await self.read_features(entity_id)
        timings.add(FEATURE_STORE_STEP, started)
        body = self.model_input(request, stored)
        async with self.model_client() as client:
            scores = await self._call_models(client, body, timings)
        return self.answer(entity_id, scores, timings)

    async def _call_models(self, client: AsyncModelClient, body: bytes, timings: Timings) -> list[float]:
        async def call(model_id: int) -> float:
            started = time.perf_counter()
            score = await client.predict(body, model_id)
            timings.add(model_step(model_id), started)
            return score

        if not self.concurrent:
            return [await call(i) for i in self.model_ids]
        return list(await asyncio.gather(*(call(i) for i in self.model_ids)))

    async def health(self) -> dict[str, str]:
        try:
            await self._redis("ping")
            store = health.OK
        except RedisError as exc:
            store = health.down(exc)
        async with self.model_client() as client:
            return self.dependencies(store, await client.health())
