"""The asynchronous I/O shell: ``redis.asyncio`` and one shared aiohttp session, the model
calls gathered concurrently. Nothing here blocks the loop — unless a setting asks for the
seed's choices (a blocking Redis call, a new HTTP client per request, calls one after another),
which the attribution experiment measures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import httpx
import orjson
import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from scoring_bench.core import features as fs
from scoring_bench.core.errors import FeatureStoreUnavailable, ModelTimeout, ModelUnavailable
from scoring_bench.core.schemas import ScoreRequest
from scoring_bench.service.scorer_sync import make_redis
from scoring_bench.core.scoring import parse_model_response, response_body
from scoring_bench.core.service_info import HEALTH_PATH
from scoring_bench.core.settings import Settings
from scoring_bench.core.timing import Timings, ordered_steps

JSON_HEADERS = {"Content-Type": "application/json"}


class AsyncModelClient(Protocol):
    async def predict(self, body: bytes, model_id: int) -> float: ...
    async def healthy(self) -> str: ...
    async def aclose(self) -> None: ...


def _health_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{HEALTH_PATH}"


class AiohttpModelClient:
    """One aiohttp session (its connector is the pool)."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.model_async_endpoint
        self.timeout = settings.model_timeout_s
        connector = aiohttp.TCPConnector(limit=settings.http_pool_size, keepalive_timeout=30.0)
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=settings.model_timeout_s,
                                          connect=settings.model_connect_timeout_s),
        )

    async def predict(self, body: bytes, model_id: int) -> float:
        try:
            async with self.session.post(
                self.url, params={"model_id": model_id}, data=body, headers=JSON_HEADERS
            ) as resp:
                data = await resp.read()
                status = resp.status
        except aiohttp.ConnectionTimeoutError as exc:
            raise ModelUnavailable(f"model {model_id}: cannot connect: {exc!r}") from None
        except asyncio.TimeoutError:
            raise ModelTimeout(f"model {model_id} did not answer within {self.timeout} s") from None
        except aiohttp.ClientError as exc:
            raise ModelUnavailable(f"model {model_id} is unreachable: {exc!r}") from None
        return parse_model_response(status, data, model_id)

    async def healthy(self) -> str:
        try:
            async with self.session.get(_health_url(self.url), timeout=aiohttp.ClientTimeout(total=0.5)) as r:
                return "OK" if r.status == 200 else f"DOWN: HTTP {r.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return f"DOWN: {exc!r}"

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
        try:
            resp = await self.client.post(self.url, params={"model_id": model_id}, content=body,
                                          headers=JSON_HEADERS)
        except httpx.ConnectTimeout as exc:
            raise ModelUnavailable(f"model {model_id}: cannot connect: {exc!r}") from None
        except httpx.TimeoutException:
            raise ModelTimeout(f"model {model_id} did not answer within {self.timeout} s") from None
        except httpx.HTTPError as exc:
            raise ModelUnavailable(f"model {model_id} is unreachable: {exc!r}") from None
        return parse_model_response(resp.status_code, resp.content, model_id)

    async def healthy(self) -> str:
        try:
            resp = await self.client.get(_health_url(self.url), timeout=0.5)
            return "OK" if resp.status_code == 200 else f"DOWN: HTTP {resp.status_code}"
        except httpx.HTTPError as exc:
            return f"DOWN: {exc!r}"

    async def aclose(self) -> None:
        await self.client.aclose()


def make_async_model_client(settings: Settings) -> AsyncModelClient:
    """Must run inside the event loop (aiohttp binds its session to it)."""
    cls = {"aiohttp": AiohttpModelClient, "httpx": HttpxModelClient}[settings.async_http_client]
    return cls(settings)


def make_async_redis(settings: Settings) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.feature_store_url,
        max_connections=settings.redis_pool_size,
        timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=min(settings.redis_timeout_s, 0.5),
        retry=Retry(NoBackoff(), 1),
    )
    return aioredis.Redis(connection_pool=pool)


class AsyncScorer:
    """Made at import, started in the app's lifespan (inside the running loop)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pooled: AsyncModelClient | None = None
        self.redis: aioredis.Redis | None = None
        self.blocking_redis: redis.Redis | None = None

    async def start(self) -> None:
        if self.settings.http_client_lifetime == "process":
            self.pooled = make_async_model_client(self.settings)
        if self.settings.async_redis_client == "blocking":
            self.blocking_redis = make_redis(self.settings)
        else:
            self.redis = make_async_redis(self.settings)

    async def close(self) -> None:
        if self.pooled is not None:
            await self.pooled.aclose()
        if self.redis is not None:
            await self.redis.aclose()
            await self.redis.connection_pool.disconnect()
        if self.blocking_redis is not None:
            self.blocking_redis.close()

    @asynccontextmanager
    async def model_client(self) -> AsyncIterator[AsyncModelClient]:
        """The process's pooled client, or (``HTTP_CLIENT_LIFETIME=request``, the seed's way)
        a new one for this request, closed after it."""
        if self.pooled is not None:
            yield self.pooled
            return
        client = make_async_model_client(self.settings)
        try:
            yield client
        finally:
            await client.aclose()

    async def _get(self, key: str) -> bytes | None:
        if self.blocking_redis is not None:
            return self.blocking_redis.get(key)  # blocks the event loop: the seed's choice, on purpose
        assert self.redis is not None, "AsyncScorer.start() was not called"
        return await self.redis.get(key)

    async def read_features(self, entity_id: str) -> list[float]:
        try:
            raw = await self._get(fs.entity_key(self.settings.redis_key_prefix, entity_id))
        except RedisError as exc:
            raise FeatureStoreUnavailable(f"feature store unreachable: {exc}") from None
        return fs.decode(entity_id, raw)

    async def score(self, request: ScoreRequest) -> tuple[dict[str, Any], Timings]:
        timings = Timings()
        entity_id = request.entity_id or self.settings.default_entity_id
        started = time.perf_counter()
        stored = await self.read_features(entity_id)
        timings.add("feature_store", started)
        body = orjson.dumps(fs.combine(request.features, stored))
        async with self.model_client() as client:
            scores = await self._call_models(client, body, timings)
        return response_body(entity_id, scores), timings

    async def _call_models(self, client: AsyncModelClient, body: bytes, timings: Timings) -> list[float]:
        async def call(model_id: int) -> float:
            started = time.perf_counter()
            score = await client.predict(body, model_id)
            timings.add(f"model_{model_id}", started)
            return score

        ids = range(self.settings.num_models)
        if self.settings.model_calls == "sequential":
            return [await call(i) for i in ids]
        scores = list(await asyncio.gather(*(call(i) for i in ids)))
        timings.steps = ordered_steps(timings.steps, self.settings.num_models)
        return scores

    async def health(self) -> dict[str, str]:
        try:
            if self.blocking_redis is not None:
                self.blocking_redis.ping()
            else:
                assert self.redis is not None
                await self.redis.ping()
            store = "OK"
        except RedisError as exc:
            store = f"DOWN: {exc}"
        async with self.model_client() as client:
            model = await client.healthy()
        return {"feature_store": store, "model_api": model}
