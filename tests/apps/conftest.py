"""The services' apps built in this process by their factories (``create_app(settings)``) and
called through their frameworks' test clients: no server process, so a test costs milliseconds.

What the apps depend on is real: an embedded redis-server (seeded, on a free port) and a model API
served from a thread of this process. Everything a subprocess adds (gunicorn and uvicorn workers,
killing processes, the Celery worker) is tested in tests/integration/.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from werkzeug.serving import make_server

import api_model_async.app
import api_model_sync.app
import api_scoring_async.app
import api_scoring_batched.app
import api_scoring_queue.app
import api_scoring_sync.app
from feature_store import embedded
from feature_store.seed import seed
from scoring_bench.core.endpoints import (
    ASYNC_PREDICT_PATH,
    BATCHED_PREDICT_PATH,
    QUEUE_PREDICT_PATH,
    SYNC_PREDICT_PATH,
)
from scoring_bench.core.settings import Settings
from tests.ports import free_port

SEED_BODY = [5.1, 3.5, 1.4, 0.2]
ENTITIES = 50
APPS = {
    "model-sync": (api_model_sync.app, SYNC_PREDICT_PATH),
    "model-async": (api_model_async.app, ASYNC_PREDICT_PATH),
    "scoring-sync": (api_scoring_sync.app, SYNC_PREDICT_PATH),
    "scoring-async": (api_scoring_async.app, ASYNC_PREDICT_PATH),
    "scoring-queue": (api_scoring_queue.app, QUEUE_PREDICT_PATH),
    "scoring-batched": (api_scoring_batched.app, BATCHED_PREDICT_PATH),
}
CLOSED_PORT_URL = "http://127.0.0.1:9"  # discard: nothing listens there


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real, embedded redis-server, seeded with a few entities."""
    port = free_port()
    folder: Path = tmp_path_factory.mktemp("redis")
    argv = embedded.command(embedded.find_binary("auto"), "127.0.0.1", port, folder, persist=False)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                threading.Event().wait(0.02)
        seed(client, Settings.model_fields["redis_key_prefix"].default, ENTITIES, 8, show_progress=False)
        yield url
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


@contextmanager
def serve_model(latency_ms: float) -> Iterator[str]:
    """The sync model API with a fixed latency, served from a thread; its predict URL."""
    app = api_model_sync.app.create_app(
        Settings(model_latency="fixed", model_latency_fixed_ms=latency_ms, metrics_enabled=False)
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}{SYNC_PREDICT_PATH}"
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture(scope="session")
def model_url() -> Iterator[str]:
    """The model API both scorers call (1 ms per call)."""
    with serve_model(1.0) as url:
        yield url


def app_settings(store: str, model: str, **overrides: Any) -> Settings:
    """Settings of an in-process app: the test's Redis and model API, the queue's broker and
    results on closed ports unless a test gives them."""
    values: dict[str, Any] = {
        "redis_url": store,
        "model_sync_url": model,
        "model_async_url": model,
        "num_entities": ENTITIES,
        "model_latency": "fixed",
        "model_latency_fixed_ms": 1.0,
        "broker_url": "redis://127.0.0.1:9/1",
        "result_backend_url": "redis://127.0.0.1:9/2",
        "redis_timeout_s": 0.5,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # the parsed JSON, or None
    headers: Mapping[str, str]


class Client:
    """One app behind its framework's test client, with the same small API for Flask and FastAPI."""

    def __init__(self, name: str, settings: Settings) -> None:
        module, self.predict_path = APPS[name]
        self.app = module.create_app(settings)
        self.fastapi = isinstance(self.app, FastAPI)
        self._client: Any = None

    def __enter__(self) -> Client:
        self._client = TestClient(self.app).__enter__() if self.fastapi else self.app.test_client()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fastapi:
            self._client.__exit__(*exc)

    def response(self, method: str, path: str, data: bytes | None = None) -> Any:
        """The framework's own response object (httpx's, or werkzeug's TestResponse)."""
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if self.fastapi:
            return self._client.request(method, path, content=data, headers=headers)
        return self._client.open(path, method=method, data=data, headers=headers)

    def request(self, method: str, path: str, data: bytes | None = None) -> Answer:
        resp = self.response(method, path, data)
        if self.fastapi:
            body = (
                resp.json() if resp.headers.get("content-type", "").startswith("application/json") else None
            )
            return Answer(resp.status_code, body, resp.headers)
        return Answer(resp.status_code, resp.get_json(silent=True), resp.headers)

    def post(
        self, body: Any = None, data: bytes | None = None, path: str | None = None, **params: Any
    ) -> Answer:
        target = path or self.predict_path
        if params:
            target += "?" + urlencode(params)
        return self.request("POST", target, data if data is not None else orjson.dumps(body))

    def get(self, path: str) -> Answer:
        return self.request("GET", path)


@pytest.fixture
def client(redis_url: str, model_url: str) -> Iterator[Any]:
    """``client(name, **settings)``: an app in this process, closed after the test."""
    opened: list[Client] = []

    def make(name: str, **overrides: Any) -> Client:
        opened.append(Client(name, app_settings(redis_url, model_url, **overrides)).__enter__())
        return opened[-1]

    yield make
    for c in opened:
        c.__exit__(None, None, None)
