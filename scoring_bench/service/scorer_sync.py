"""The synchronous I/O shell: a blocking Redis read, then the model calls one
after another. Used by the Flask scoring handler (and, later, by queue tasks).

Clients are made once per process (after gunicorn forks) and pooled.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson
import redis
import requests
import urllib3
from redis.backoff import NoBackoff
from redis.retry import Retry

from scoring_bench.core import features as fs
from scoring_bench.core.errors import FeatureStoreUnavailable, ModelTimeout, ModelUnavailable
from scoring_bench.core.schemas import ScoreRequest
from scoring_bench.core.scoring import parse_model_response, response_body
from scoring_bench.core.settings import Settings
from scoring_bench.core.timing import Timings, ordered_steps

from scoring_bench.core.service_info import HEALTH_PATH
JSON_HEADERS = {"Content-Type": "application/json"}


class ModelClient(Protocol):
    def predict(self, body: bytes, model_id: int) -> float: ...
    def healthy(self) -> bool: ...
    def close(self) -> None: ...


class Urllib3ModelClient:
    """One urllib3 connection pool to the model API (the lightest client)."""

    def __init__(self, url: str, settings: Settings) -> None:
        parts = urlsplit(url)
        self.path = parts.path
        self.pool = urllib3.HTTPConnectionPool(
            parts.hostname,
            parts.port or 80,
            maxsize=settings.http_pool_size,
            block=True,
            retries=False,
            timeout=urllib3.Timeout(
                connect=settings.model_connect_timeout_s, read=settings.model_timeout_s
            ),
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

    def healthy(self) -> bool:
        try:
            return self.pool.urlopen("GET", HEALTH_PATH, timeout=0.5).status == 200
        except urllib3.exceptions.HTTPError:
            return False

    def close(self) -> None:
        self.pool.close()


class RequestsModelClient:
    """A pooled ``requests.Session`` (what most Flask services use)."""

    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.health_url = url[: len(url) - len(urlsplit(url).path)] + HEALTH_PATH
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
                self.url, params={"model_id": model_id}, data=body,
                headers=JSON_HEADERS, timeout=self.timeout,
            )
        except requests.exceptions.ConnectTimeout as exc:
            raise ModelUnavailable(f"model {model_id}: cannot connect: {exc}") from None
        except requests.exceptions.Timeout as exc:
            raise ModelTimeout(f"model {model_id} did not answer in time: {exc}") from None
        except requests.exceptions.RequestException as exc:
            raise ModelUnavailable(f"model {model_id} is unreachable: {exc}") from None
        return parse_model_response(resp.status_code, resp.content, model_id)

    def healthy(self) -> bool:
        try:
            return self.session.get(self.health_url, timeout=0.5).status_code == 200
        except requests.exceptions.RequestException:
            return False

    def close(self) -> None:
        self.session.close()


def make_model_client(settings: Settings) -> ModelClient:
    cls = {"urllib3": Urllib3ModelClient, "requests": RequestsModelClient}[settings.sync_http_client]
    return cls(settings.model_sync_endpoint, settings)


def make_redis(settings: Settings) -> redis.Redis:
    pool = redis.BlockingConnectionPool.from_url(
        settings.feature_store_url,
        max_connections=settings.redis_pool_size,
        timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=min(settings.redis_timeout_s, 0.5),
        retry=Retry(NoBackoff(), 1),  # one immediate retry for a stale connection; no backoff
    )
    return redis.Redis(connection_pool=pool)


class SyncScorer:
    """Feature-store read, then ``num_models`` model calls: one after another unless
    ``MODEL_CALLS=concurrent`` (then on a thread pool made once per process)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = make_redis(settings)
        self.pooled = make_model_client(settings) if settings.http_client_lifetime == "process" else None
        self.executor = (
            ThreadPoolExecutor(settings.http_pool_size, thread_name_prefix="model-call")
            if settings.model_calls == "concurrent" else None
        )

    @contextmanager
    def model_client(self) -> Iterator[ModelClient]:
        """The process's pooled client, or (``HTTP_CLIENT_LIFETIME=request``, the seed's way)
        a new one for this request, closed after it."""
        if self.pooled is not None:
            yield self.pooled
            return
        client = make_model_client(self.settings)
        try:
            yield client
        finally:
            client.close()

    def read_features(self, entity_id: str) -> list[float]:
        try:
            raw = self.redis.get(fs.entity_key(self.settings.redis_key_prefix, entity_id))
        except redis.exceptions.RedisError as exc:
            raise FeatureStoreUnavailable(f"feature store unreachable: {exc}") from None
        return fs.decode(entity_id, raw)

    def score(self, request: ScoreRequest) -> tuple[dict[str, Any], Timings]:
        timings = Timings()
        entity_id = request.entity_id or self.settings.default_entity_id
        started = time.perf_counter()
        stored = self.read_features(entity_id)
        timings.add("feature_store", started)
        body = orjson.dumps(fs.combine(request.features, stored))
        with self.model_client() as client:
            scores = self._call_models(client, body, timings)
        return response_body(entity_id, scores), timings

    def _call_models(self, client: ModelClient, body: bytes, timings: Timings) -> list[float]:
        def call(model_id: int) -> float:
            started = time.perf_counter()
            score = client.predict(body, model_id)
            timings.add(f"model_{model_id}", started)
            return score

        ids = range(self.settings.num_models)
        if self.executor is None:
            return [call(i) for i in ids]
        scores = list(self.executor.map(call, ids))
        timings.steps = ordered_steps(timings.steps, self.settings.num_models)
        return scores

    def health(self) -> dict[str, str]:
        try:
            self.redis.ping()
            store = "OK"
        except redis.exceptions.RedisError as exc:
            store = f"DOWN: {exc}"
        with self.model_client() as client:
            model = "OK" if client.healthy() else "DOWN"
        return {"feature_store": store, "model_api": model}
