"""The synchronous I/O shell: a blocking Redis read, then the model calls one after another (or on
a thread pool with ``MODEL_CALLS=concurrent``). Used by the Flask scoring handler and by the
queue's tasks. Clients are made once per process (after gunicorn forks) and pooled."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, closing, nullcontext
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

import redis
import requests
import urllib3

from scoring_bench.core import features as fs
from scoring_bench.core import health
from scoring_bench.core.endpoints import health_url
from scoring_bench.core.errors import ModelTimeout, ModelUnavailable
from scoring_bench.core.schemas import ScoreRequest
from scoring_bench.core.scoring import parse_model_response
from scoring_bench.core.settings import Architecture, Settings
from scoring_bench.core.timing import FEATURE_STORE_STEP, Timings, model_step
from scoring_bench.service.redis_clients import sync_redis
from scoring_bench.service.scorer_base import HEALTH_TIMEOUT_S, JSON_HEADERS, BaseScorer


class ModelClient(Protocol):
    def predict(self, body: bytes, model_id: int) -> float: ...
    def health(self) -> str: ...
    def close(self) -> None: ...


class Urllib3ModelClient:
    """One urllib3 connection pool to the model API (the lightest client)."""

    def __init__(self, url: str, settings: Settings) -> None:
        parts = urlsplit(url)
        if not parts.hostname:
            raise ValueError(f"the model API's URL has no host: {url!r}")
        self.path = parts.path
        self.health_path = urlsplit(health_url(url)).path
        self.pool = urllib3.HTTPConnectionPool(
            parts.hostname,
            parts.port or 80,
            maxsize=settings.http_pool_size,
            block=True,
            retries=False,
            timeout=urllib3.Timeout(connect=settings.model_connect_timeout_s, read=settings.model_timeout_s),
        )

    def predict(self, body: bytes, model_id: int) -> float:
        try:
            resp = self.pool.urlopen(
                "POST", f"{self.path}?model_id={model_id}", body=body, headers=JSON_HEADERS
            )
        except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.TimeoutError) as exc:
            if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
                raise ModelUnavailable(f"model {model_id}: cannot connect: {exc}") from None
            raise ModelTimeout(f"model {model_id} did not answer in time: {exc}") from None
        except urllib3.exceptions.HTTPError as exc:
            raise ModelUnavailable(f"model {model_id} is unreachable: {exc}") from None
        return parse_model_response(resp.status, resp.data, model_id)

    def health(self) -> str:
        try:
            status = self.pool.urlopen("GET", self.health_path, timeout=HEALTH_TIMEOUT_S).status
        except urllib3.exceptions.HTTPError as exc:
            return health.down(repr(exc))
        return health.OK if status == 200 else health.down(f"HTTP {status}")

    def close(self) -> None:
        self.pool.close()


class RequestsModelClient:
    """A pooled ``requests.Session`` (what most Flask services use)."""

    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.health_url = health_url(url)
        self.timeout = (settings.model_connect_timeout_s, settings.model_timeout_s)
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy / netrc look-up per call
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=1, pool_maxsize=settings.http_pool_size, pool_block=True
        )
        self.session.mount("http://", adapter)

    def predict(self, body: bytes, model_id: int) -> float:
        try:
            resp = self.session.post(
                self.url,
                params={"model_id": model_id},
                data=body,
                headers=JSON_HEADERS,
                timeout=self.timeout,
            )
        except requests.exceptions.ConnectTimeout as exc:
            raise ModelUnavailable(f"model {model_id}: cannot connect: {exc}") from None
        except requests.exceptions.Timeout as exc:
            raise ModelTimeout(f"model {model_id} did not answer in time: {exc}") from None
        except requests.exceptions.RequestException as exc:
            raise ModelUnavailable(f"model {model_id} is unreachable: {exc}") from None
        return parse_model_response(resp.status_code, resp.content, model_id)

    def health(self) -> str:
        try:
            status = self.session.get(self.health_url, timeout=HEALTH_TIMEOUT_S).status_code
        except requests.exceptions.RequestException as exc:
            return health.down(repr(exc))
        return health.OK if status == 200 else health.down(f"HTTP {status}")

    def close(self) -> None:
        self.session.close()


def make_model_client(settings: Settings) -> ModelClient:
    clients: dict[str, Callable[[str, Settings], ModelClient]] = {
        "urllib3": Urllib3ModelClient,
        "requests": RequestsModelClient,
    }
    return clients[settings.sync_http_client](settings.model_sync_endpoint, settings)


class SyncScorer(BaseScorer):
    """The calls one after another, unless ``MODEL_CALLS=concurrent`` (then on a thread pool made
    once per process)."""

    architecture: ClassVar[Architecture] = "sync"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.redis = sync_redis(settings)
        self.pooled = make_model_client(settings) if settings.http_client_lifetime == "process" else None
        self.executor = (
            ThreadPoolExecutor(settings.http_pool_size, thread_name_prefix="model-call")
            if self.concurrent
            else None
        )

    def model_client(self) -> AbstractContextManager[ModelClient]:
        """The process's pooled client, or (``HTTP_CLIENT_LIFETIME=request``, the seed's way)
        a new one for this request, closed after it."""
        if self.pooled is not None:
            return nullcontext(self.pooled)
        return closing(make_model_client(self.settings))

    def read_features(self, entity_id: str) -> list[float]:
        try:
            raw = self.redis.get(self.feature_key(entity_id))
        except redis.exceptions.RedisError as exc:
            raise self.store_unavailable(exc) from None
        return fs.decode(entity_id, raw)

    def score(self, request: ScoreRequest) -> tuple[dict[str, Any], Timings]:
        timings = Timings()
        entity_id = self.entity_id(request)
        started = time.perf_counter()
        stored = self.read_features(entity_id)
        timings.add(FEATURE_STORE_STEP, started)
        body = self.model_input(request, stored)
        with self.model_client() as client:
            scores = self._call_models(client, body, timings)
        return self.answer(entity_id, scores, timings)

    def _call_models(self, client: ModelClient, body: bytes, timings: Timings) -> list[float]:
        def call(model_id: int) -> float:
            started = time.perf_counter()
            score = client.predict(body, model_id)
            timings.add(model_step(model_id), started)
            return score

        if self.executor is None:
            return [call(i) for i in self.model_ids]
        # The first call on this thread, the others on the pool: one hand-off less per request.
        others = [self.executor.submit(call, i) for i in self.model_ids[1:]]
        return [call(self.model_ids[0]), *(future.result() for future in others)]

    def health(self) -> dict[str, str]:
        try:
            self.redis.ping()
            store = health.OK
        except redis.exceptions.RedisError as exc:
            store = health.down(exc)
        with self.model_client() as client:
            return self.dependencies(store, client.health())
