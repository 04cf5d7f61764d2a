"""The services' paths, and the index page every service shows at ``/``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

HEALTH_PATH = "/api/v1/healthcheck"
SYNC_PREDICT_PATH = "/api/v1/ml/sync/predict"
ASYNC_PREDICT_PATH = "/api/v1/ml/async/predict"
QUEUE_PREDICT_PATH = "/api/v1/ml/queue/predict"
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
