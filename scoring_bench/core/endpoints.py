"""The services' paths, and the index page every service shows at ``/``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

HEALTH_PATH = "/api/v1/healthcheck"
SYNC_PREDICT_PATH = "/api/v1/ml/sync/predict"
ASYNC_PREDICT_PATH = "/api/v1/ml/async/predict"
QUEUE_PREDICT_PATH = "/api/v1/ml/queue/predict"
BATCHED_PREDICT_PATH = "/api/v1/ml/batched/predict"  # the batching scoring handler (doc/batching.md)
BATCH_SUFFIX = "_batch"  # a model API's batch route: its predict path + this (batch_path)
QUEUE_TASKS_PATH = "/api/v1/ml/queue/tasks"
OPENAPI_PATH = "/openapi.json"  # every service's contract (scoring_bench.core.openapi)
EXAMPLE_FEATURES = [5.1, 3.5, 1.4, 0.2]


def index(service: str, predict_path: str, docs: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "service": service,
        "endpoints": {"predict": f"POST {predict_path}", "health": f"GET {HEALTH_PATH}"},
        "openapi": OPENAPI_PATH,
    }
    if docs:
        body["docs"] = "/docs"
    return body


def health_url(url: str) -> str:
    """The health URL of the service a URL points into (``http://host:port/any/path``)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{HEALTH_PATH}"


def batch_path(predict_path: str) -> str:
    """A model API's batch route beside its predict route: ``.../predict`` → ``.../predict_batch``."""
    return predict_path + BATCH_SUFFIX


def batch_url(predict_url: str) -> str:
    """The batch route of the model API a predict URL points at (its query string kept): the batching
    handler reaches the model API the async handler is given (MODEL_ASYNC_URL) at its batch route."""
    parts = urlsplit(predict_url)
    return urlunsplit(parts._replace(path=batch_path(parts.path)))
