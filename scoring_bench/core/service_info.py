"""Paths and the index page every service shows at ``/``."""

from __future__ import annotations

from typing import Any

HEALTH_PATH = "/api/v1/healthcheck"
SYNC_PREDICT_PATH = "/api/v1/ml/sync/predict"
ASYNC_PREDICT_PATH = "/api/v1/ml/async/predict"
QUEUE_PREDICT_PATH = "/api/v1/ml/queue/predict"
QUEUE_TASKS_PATH = "/api/v1/ml/queue/tasks"
EXAMPLE_FEATURES = [5.1, 3.5, 1.4, 0.2]


def index(service: str, predict_path: str, docs: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "service": service,
        "endpoints": {"predict": f"POST {predict_path}", "health": f"GET {HEALTH_PATH}"},
    }
    if docs:
        body["docs"] = "/docs"
    return body


def health(dependencies: dict[str, str] | None = None) -> tuple[dict[str, Any], int]:
    """Health body and status: 200 "OK", or 503 "DEGRADED" naming what is down."""
    if dependencies is None:
        return {"status": "OK"}, 200
    ok = all(v == "OK" for v in dependencies.values())
    return {"status": "OK" if ok else "DEGRADED", "dependencies": dependencies}, 200 if ok else 503
