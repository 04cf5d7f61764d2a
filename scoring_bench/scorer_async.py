"""The asynchronous I/O shell: ``redis.asyncio`` and one shared aiohttp
session, the model calls gathered concurrently. Nothing here blocks the loop.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from scoring_bench import features as fs
from scoring_bench.errors import FeatureStoreUnavailable, ModelTimeout, ModelUnavailable
from scoring_bench.schemas import ScoreRequest
from scoring_bench.scoring import parse_model_response, response_body
from scoring_bench.settings import Settings
from scoring_bench.timing import Timings

from scoring_bench.service_info import HEALTH_PATH
JSON_HEADERS = {"Content-Type": "application/json"}


class AsyncScorer:
    """Made at import, started in the app's lifespan (inside the running loop)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.model_async_endpoint
        parts = urlsplit(self.url)
        self.health_url = f"{parts.scheme}://{parts.netloc}{HEALTH_PATH}"
        self.session: aiohttp.ClientSession | None = None
        self.redis: aioredis.Redis | None = None

    async def start(self) -> None:
        s = self.settings
        connector = aiohttp.TCPConnector(limit=s.http_pool_size, keepalive_timeout=30.0)
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=s.model_timeout_s, connect=s.model_connect_timeout_s),
        )
        pool = aioredis.BlockingConnectionPool.from_url(
            s.feature_store_url,
            max_connections=s.redis_pool_size,
            timeout=s.redis_timeout_s,
            socket_timeout=s.redis_timeout_s,
            socket_connect_timeout=min(s.redis_timeout_s, 0.5),
            retry=Retry(NoBackoff(), 1),
        )
        self.redis = aioredis.Redis(connection_pool=pool)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self.redis is not None:
            await self.redis.aclose()
            await self.redis.connection_pool.disconnect()

    async def read_features(self, entity_id: str) -> list[float]:
        assert self.redis is not None, "AsyncScorer.start() was not called"
        try:
            raw = await self.redis.get(fs.entity_key(self.settings.redis_key_prefix, entity_id))
        except RedisError as exc:
            raise FeatureStoreUnavailable(f"feature store unreachable: {exc}") from None
        return fs.decode(entity_id, raw)

    async def predict(self, body: bytes, model_id: int, timings: Timings) -> float:
        assert self.session is not None, "AsyncScorer.start() was not called"
        started = time.perf_counter()
        try:
            async with self.session.post(
                self.url, params={"model_id": model_id}, data=body, headers=JSON_HEADERS
            ) as resp:
                data = await resp.read()
                status = resp.status
        except aiohttp.ConnectionTimeoutError as exc:
            raise ModelUnavailable(f"model {model_id}: cannot connect: {exc!r}") from None
        except asyncio.TimeoutError:
            raise ModelTimeout(f"model {model_id} did not answer within "
                               f"{self.settings.model_timeout_s} s") from None
        except aiohttp.ClientError as exc:
            raise ModelUnavailable(f"model {model_id} is unreachable: {exc!r}") from None
        timings.add(f"model_{model_id}", started)
        return parse_model_response(status, data, model_id)

    async def score(self, request: ScoreRequest) -> tuple[dict[str, Any], Timings]:
        timings = Timings()
        entity_id = request.entity_id or self.settings.default_entity_id
        started = time.perf_counter()
        stored = await self.read_features(entity_id)
        timings.add("feature_store", started)
        body = orjson.dumps(fs.combine(request.features, stored))
        calls = [self.predict(body, i, timings) for i in range(self.settings.num_models)]
        scores = await asyncio.gather(*calls)
        timings.steps = _ordered(timings.steps, self.settings.num_models)
        return response_body(entity_id, scores), timings

    async def health(self) -> dict[str, str]:
        assert self.redis is not None and self.session is not None
        try:
            await self.redis.ping()
            store = "OK"
        except RedisError as exc:
            store = f"DOWN: {exc}"
        try:
            async with self.session.get(self.health_url, timeout=aiohttp.ClientTimeout(total=0.5)) as r:
                model = "OK" if r.status == 200 else f"DOWN: HTTP {r.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            model = f"DOWN: {exc!r}"
        return {"feature_store": store, "model_api": model}


def _ordered(steps: dict[str, float], num_models: int) -> dict[str, float]:
    """Concurrent calls finish in any order; report them by model id."""
    order = ["feature_store"] + [f"model_{i}" for i in range(num_models)]
    return {k: steps[k] for k in order if k in steps}
