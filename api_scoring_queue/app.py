"""FastAPI queue API: validate, enqueue a Celery task, answer 202 with its id; task status.

The request is validated exactly as by the other scoring handlers (bad input never becomes a
task). ``?wait_ms=N`` (at most QUEUE_MAX_WAIT_MS) waits for the result: 200 when the task
finished in time, else the usual 202. ``?callback_url=`` asks the worker to POST the task's
document there when it ends (allowlisted hosts only, checked here: 422 otherwise).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, Query, Request, Response
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from api_scoring_queue.worker import app as celery_app
from api_scoring_queue.worker import score, settings
from scoring_bench.service import metrics
from scoring_bench.service.callbacks import check_callback_url
from scoring_bench.core.errors import QueueUnavailable, UnknownTask
from scoring_bench.service.fastapi_adapter import create_app, json_response, openapi_body, read_body
from scoring_bench.service.queue import BROKER_ERRORS, CachedCheck, QueueDepthCollector, broker_and_workers
from scoring_bench.core.schemas import RequestParser, ScoreRequest
from scoring_bench.core.service_info import (
    EXAMPLE_FEATURES,
    HEALTH_PATH,
    QUEUE_PREDICT_PATH,
    QUEUE_TASKS_PATH,
    health,
    index,
)
from scoring_bench.service.task_status import (
    READY_STATES,
    TaskStore,
    is_task_id,
    new_task_id,
    parse_wait_ms,
    task_document,
)

PING_TIMEOUT_S = 0.5  # the health check's broker connect and worker ping
PING_CACHE_S = 1.0  # at most one ping per second, however often health is asked

parser = RequestParser(settings.max_features, settings.max_body_bytes)
results = aioredis.Redis.from_url(
    settings.queue_results_url, socket_timeout=settings.redis_timeout_s,
    socket_connect_timeout=min(settings.redis_timeout_s, 0.5), max_connections=settings.redis_pool_size,
)
store = TaskStore(results, settings.queue_key_prefix, settings.queue_result_expires_s,
                  celery_app.backend.get_key_for_task, celery_app.backend.decode_result)
workers_check = CachedCheck(lambda: run_in_threadpool(broker_and_workers, celery_app, PING_TIMEOUT_S),
                            PING_CACHE_S)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    await results.aclose()
    celery_app.close()


_index = index("scoring-queue", QUEUE_PREDICT_PATH, docs=True)
_index["endpoints"]["task"] = f"GET {QUEUE_TASKS_PATH}/{{task_id}}"
app = create_app("scoring-bench queue API", _index, lifespan, settings)
queue_metrics = metrics.QueueMetrics("scoring-queue") if settings.metrics_enabled else None
if settings.metrics_enabled:  # queue_depth: the broker's queue length, read at each scrape
    metrics.add_collector(QueueDepthCollector(celery_app, settings, "scoring-queue"))
_schema: dict[str, Any] = {
    "anyOf": [parser.features_adapter.json_schema(), parser.entity_request_model.model_json_schema()]
}
WAIT_MS = Query(
    None, description=f"Wait up to this many ms (at most {settings.queue_max_wait_ms}) for the result."
)
CALLBACK_URL = Query(None, description="POST the task's document here when it ends (allowlisted hosts only).")


def task_path(task_id: str) -> str:
    return f"{QUEUE_TASKS_PATH}/{task_id}"


def _publish(task_id: str, request: ScoreRequest, callback_url: str | None) -> None:
    kwargs = {"features": list(request.features), "entity_id": request.entity_id,
              "callback_url": callback_url, "submitted_at": time.time()}
    score.apply_async(kwargs=kwargs, task_id=task_id)


async def _submit(request: ScoreRequest, callback_url: str | None) -> str:
    """Record the id first (a status read right after the 202 must find it), then publish."""
    task_id = new_task_id()
    try:
        await store.issue(task_id)
    except RedisError as exc:
        raise QueueUnavailable(f"the result store is unreachable: {exc}") from None
    try:
        await run_in_threadpool(_publish, task_id, request, callback_url)
    except BROKER_ERRORS as exc:
        await store.forget(task_id)
        raise QueueUnavailable(f"the broker is unreachable: {exc!r}") from None
    if queue_metrics is not None:
        queue_metrics.submitted.inc()
    return task_id


async def _document(task_id: str, wait_ms: int) -> dict[str, Any] | None:
    try:
        return await (store.wait(task_id, wait_ms) if wait_ms else store.document(task_id))
    except RedisError as exc:
        raise QueueUnavailable(f"the result store is unreachable: {exc}") from None


@app.post(QUEUE_PREDICT_PATH, status_code=202, openapi_extra=openapi_body(_schema, EXAMPLE_FEATURES))
async def predict(request: Request, wait_ms: str | None = WAIT_MS,
                  callback_url: str | None = CALLBACK_URL) -> Response:
    score_request = parser.scoring(await read_body(request, settings.max_body_bytes))
    wait = parse_wait_ms(wait_ms, settings.queue_max_wait_ms)
    if callback_url is not None:
        check_callback_url(callback_url, settings.callback_allowed_hosts)
    task_id = await _submit(score_request, callback_url)
    doc = (await _document(task_id, wait) if wait else None) or task_document(task_id, "PENDING")
    return json_response(doc, 200 if doc["status"] in READY_STATES else 202, {"Location": task_path(task_id)})


@app.get(QUEUE_TASKS_PATH + "/{task_id}")
async def task_status(task_id: str, wait_ms: str | None = WAIT_MS) -> Response:
    wait = parse_wait_ms(wait_ms, settings.queue_max_wait_ms)
    doc = await _document(task_id, wait) if is_task_id(task_id) else None
    if doc is None:
        raise UnknownTask(f"no task {task_id!r}: never issued, or its result expired "
                          f"(after {settings.queue_result_expires_s} s)")
    return json_response(doc)


@app.get(HEALTH_PATH)
async def healthcheck() -> Response:
    dependencies = dict(await workers_check.get())
    try:
        await results.ping()
        dependencies["result_backend"] = "OK"
    except RedisError as exc:
        dependencies["result_backend"] = f"DOWN: {exc}"
    return json_response(*health(dependencies))
