"""The minimal async control handler (issue 13 §5): the async handler's API and client set-up, nothing else.

A plain ASGI app on the same server (uvicorn, ASYNC_LOOP, httptools, unguarded), one aiohttp session per
process, ``redis.asyncio`` with the product's pool options, the model calls gathered: the same I/O as
api_scoring_async, without FastAPI, pydantic validation, request metrics, Server-Timing, profiler hook or
slow-client guard. The benchmark runs it beside the product's handler (BENCH_CONTROL) and reports the
product's throughput and latency against it: what the product's features cost per request. Not a product
service.

``GET /metrics`` gives only the whole service's CPU and memory (``process_*``, as every service does:
``scoring_bench.service.metrics``), which the benchmark's resource sampler reads when it samples from
metrics; nothing is recorded per request. ``METRICS_ENABLED=false``: no ``/metrics``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from scoring_bench.core import features as fs
from scoring_bench.core import health
from scoring_bench.core.endpoints import ASYNC_PREDICT_PATH, HEALTH_PATH, health_url
from scoring_bench.core.errors import (
    FeatureStoreUnavailable,
    InvalidBody,
    InvalidJSON,
    ModelTimeout,
    ModelUnavailable,
    ScoringError,
    error_body,
)
from scoring_bench.core.scoring import parse_model_response, response_body
from scoring_bench.core.settings import Settings
from scoring_bench.service import metrics
from scoring_bench.service.redis_clients import async_redis

SERVICE = "scoring-minimal"
JSON = [(b"content-type", b"application/json")]
TEXT = [(b"content-type", metrics.CONTENT_TYPE.encode())]
HEALTH_TIMEOUT_S = 0.5


class MinimalApp:
    """POST the scoring body, GET the health; every other request 404; errors as the product's JSON."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        url = settings.model_async_endpoint
        self.urls = [f"{url}?model_id={i}" for i in range(settings.num_models)]
        self.session: aiohttp.ClientSession | None = None
        self.redis: aioredis.Redis | None = None
        self.metrics = settings.metrics_enabled
        if self.metrics:
            metrics.install_process_collector(SERVICE)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await self.lifespan(receive, send)
        path, method = scope["path"], scope["method"]
        try:
            if path == ASYNC_PREDICT_PATH and method == "POST":
                status, body = 200, await self.predict(await read_body(receive))
            elif path == HEALTH_PATH and method == "GET":
                body, status = health.health_response(await self.dependencies())
            elif path == metrics.METRICS_PATH and method == "GET" and self.metrics:
                await send({"type": "http.response.start", "status": 200, "headers": TEXT})
                await send({"type": "http.response.body", "body": metrics.render(metrics.PROCESS_NAMES)})
                return None
            else:
                status, body = 404, error_body("not_found", f"no {method} {path} here")
        except ScoringError as exc:
            status, body = exc.status, exc.body()
        await send({"type": "http.response.start", "status": status, "headers": JSON})
        await send({"type": "http.response.body", "body": orjson.dumps(body)})

    async def lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                s = self.settings
                connector = aiohttp.TCPConnector(limit=s.http_pool_size, keepalive_timeout=30.0)
                timeout = aiohttp.ClientTimeout(total=s.model_timeout_s, connect=s.model_connect_timeout_s)
                self.session = aiohttp.ClientSession(connector=connector, timeout=timeout)
                self.redis = async_redis(s)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.session is not None:
                    await self.session.close()
                if self.redis is not None:
                    await self.redis.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def predict(self, raw: bytes) -> dict[str, Any]:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidJSON(f"the body is not valid JSON: {exc}") from None
        if isinstance(doc, dict):
            entity_id, features = doc.get("entity_id") or self.settings.default_entity_id, doc.get("features")
        else:
            entity_id, features = self.settings.default_entity_id, doc
        if not isinstance(features, list) or not features:
            raise InvalidBody("expected a non-empty JSON array of numbers")
        assert self.redis is not None and self.session is not None, "the lifespan did not start"
        try:
            raw_stored = await self.redis.get(fs.entity_key(self.settings.redis_key_prefix, str(entity_id)))
        except RedisError as exc:
            raise FeatureStoreUnavailable(f"feature store unreachable: {exc}") from None
        try:
            model_input = orjson.dumps(fs.combine(features, fs.decode(str(entity_id), raw_stored)))
        except TypeError:
            raise InvalidBody("expected a JSON array of numbers") from None
        scores = await asyncio.gather(*(self.model(url, i, model_input) for i, url in enumerate(self.urls)))
        return response_body(str(entity_id), scores)

    async def model(self, url: str, model_id: int, body: bytes) -> float:
        assert self.session is not None
        try:
            async with self.session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                return parse_model_response(r.status, await r.read(), model_id)
        except TimeoutError:
            raise ModelTimeout(
                f"model {model_id} did not answer within {self.settings.model_timeout_s} s"
            ) from None
        except aiohttp.ClientError as exc:
            raise ModelUnavailable(f"model {model_id} is unreachable: {exc!r}") from None

    async def dependencies(self) -> dict[str, str]:
        assert self.redis is not None and self.session is not None
        try:
            await self.redis.ping()
            store = health.OK
        except RedisError as exc:
            store = health.down(exc)
        try:
            limit = aiohttp.ClientTimeout(total=HEALTH_TIMEOUT_S)
            async with self.session.get(health_url(self.settings.model_async_endpoint), timeout=limit) as r:
                model = health.OK if r.status == 200 else health.down(f"HTTP {r.status}")
        except (TimeoutError, aiohttp.ClientError) as exc:
            model = health.down(repr(exc))
        return {"feature_store": store, "model_api": model}


async def read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def create_app(settings: Settings) -> MinimalApp:
    return MinimalApp(settings)


def from_environment() -> MinimalApp:
    """The server's entry point (``uvicorn --factory``): the settings from the environment."""
    return create_app(Settings())
