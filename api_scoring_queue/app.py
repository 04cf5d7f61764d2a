"""FastAPI queue API: validate, enqueue a task (Celery's, or taskiq's: QUEUE_ENGINE), answer 202 with its id;
task status.

The request is validated exactly as by the other scoring handlers (bad input never becomes a
task). ``?wait_ms=N`` (at most QUEUE_MAX_WAIT_MS) waits for the result: 200 when the task
finished in time, else the usual 202; the wait ends when the result store announces the result
(``QUEUE_WAKEUP=notify``: :mod:`scoring_bench.service.task_events`), or polls it.
``?callback_url=`` asks the worker to POST the task's document there when it ends (allowlisted hosts
only, checked here: 422 otherwise). The task is published by name
(``scoring_bench.service.queue.SCORE_TASK``): the API shares the worker's Celery configuration, not
its code.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import FastAPI, Request, Response
from redis.exceptions import RedisError

from scoring_bench.core import health, openapi
from scoring_bench.core.callback_urls import check_callback_url
from scoring_bench.core.endpoints import (
    HEALTH_PATH,
    QUEUE_PREDICT_PATH,
    QUEUE_TASKS_PATH,
    index,
)
from scoring_bench.core.errors import QueueUnavailable, UnknownTask
from scoring_bench.core.schemas import RequestParser, ScoreRequest
from scoring_bench.core.settings import Settings
from scoring_bench.core.tasks import READY_STATES, is_task_id, new_task_id, parse_wait_ms, task_document
from scoring_bench.service import fastapi_adapter, metrics, profiling
from scoring_bench.service.fastapi_adapter import json_response, read_body
from scoring_bench.service.queue import Engine, QueueDepthCollector, log, make_engine
from scoring_bench.service.redis_clients import async_redis, pool_exhausted
from scoring_bench.service.task_events import TaskEvents
from scoring_bench.service.task_store import TaskStore

SERVICE = "scoring-queue"


def task_path(task_id: str) -> str:
    return f"{QUEUE_TASKS_PATH}/{task_id}"


class Queue:
    """The API's side of the queue: publish a task, read its document, check the broker (through the
    engine: Celery or taskiq); the issued-id registry and the wake-up are the same for both."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.results = async_redis(settings, settings.queue_results_url, settings.queue_pool_wait_s)
        self.events = (
            # a client of its own: the subscription holds its connection for good, outside the requests' pool
            TaskEvents(
                async_redis(settings, settings.queue_results_url), engine.result_key_prefix, engine.decode
            )
            if settings.queue_wakeup == "notify"
            else None
        )
        self.store = TaskStore(
            self.results,
            settings.queue_key_prefix,
            settings.queue_result_expires_s,
            engine.result_key,
            engine.decode,
            republish=self._republish,
            republish_after_s=settings.queue_republish_after,
            events=self.events,
        )
        self.metrics = metrics.QueueMetrics(SERVICE) if settings.metrics_enabled else None

    async def _republish(self, task_id: str, kwargs: dict[str, Any]) -> None:
        """Publish a task again that has been PENDING too long (TaskStore); a broker that is down leaves it
        for the next read after as long again."""
        try:
            await self.engine.publish(task_id, kwargs)
        except self.engine.errors as exc:
            log.warning("task %s not published again: %r", task_id, exc)

    async def submit(self, request: ScoreRequest, callback_url: str | None) -> str:
        """Record the id first (a status read right after the 202 must find it), then publish."""
        task_id = new_task_id()
        kwargs = {
            "features": list(request.features),
            "entity_id": request.entity_id,
            "callback_url": callback_url,
            "submitted_at": time.time(),
        }
        try:
            await self.store.issue(task_id, kwargs)
        except RedisError as exc:
            raise self._store_error(exc) from None
        try:
            await self.engine.publish(task_id, kwargs)
        except self.engine.errors as exc:
            # The id was never given out: forget it if the store answers. With one Redis for both it is
            # down with the broker, and the id then expires with the results (a 500 here, before: found
            # by the faults experiment).
            with suppress(RedisError):
                await self.store.forget(task_id)
            raise QueueUnavailable(f"the broker is unreachable: {exc!r}") from None
        if self.metrics is not None:
            self.metrics.submitted.inc()
        return task_id

    async def document(self, task_id: str, wait_ms: int) -> dict[str, Any] | None:
        try:
            return await (self.store.wait(task_id, wait_ms) if wait_ms else self.store.document(task_id))
        except RedisError as exc:
            raise self._store_error(exc) from None

    def _store_error(self, exc: RedisError) -> QueueUnavailable:
        if pool_exhausted(exc):  # not down: busy (a burst larger than the API takes in at once)
            return QueueUnavailable(
                f"the queue is busy: all {self.settings.redis_pool_size} connections to the result store "
                f"stayed in use for {self.settings.queue_pool_wait_s:g} s "
                "(REDIS_POOL_SIZE, QUEUE_POOL_WAIT_S); retry later"
            )
        return QueueUnavailable(f"the result store is unreachable: {exc}")

    async def health(self) -> dict[str, str]:
        dependencies = dict(await self.engine.broker_and_workers())
        try:
            await self.results.ping()
            dependencies["result_backend"] = health.OK
        except RedisError as exc:
            dependencies["result_backend"] = health.down(exc)
        return dependencies

    def start(self) -> None:
        if self.events is not None:
            self.events.start()

    async def close(self) -> None:
        if self.events is not None:
            await self.events.close()
        await self.results.aclose()
        await self.engine.close()


def create_app(settings: Settings) -> FastAPI:
    parser = RequestParser(settings.max_features, settings.max_body_bytes)
    queue = Queue(settings, make_engine(settings))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        queue.start()
        yield
        await queue.close()

    about = index(SERVICE, QUEUE_PREDICT_PATH, docs=True)
    about["endpoints"]["task"] = f"GET {QUEUE_TASKS_PATH}/{{task_id}}"
    contract = openapi.document(
        "queue",
        "scoring-bench queue API",
        QUEUE_PREDICT_PATH,
        parser,
        settings.queue_max_wait_ms,
        settings.callback_allowed_hosts,
    )
    app = fastapi_adapter.create_app(contract, about, settings, lifespan)
    profiling.install_fastapi(app, settings, SERVICE)
    if settings.metrics_enabled:  # queue_depth: the broker's queue length, read at each scrape
        metrics.add_collector("queue_depth", QueueDepthCollector(settings, SERVICE))

    @app.post(QUEUE_PREDICT_PATH)
    async def predict(
        request: Request, wait_ms: str | None = None, callback_url: str | None = None
    ) -> Response:
        score_request = parser.scoring(await read_body(request, settings.max_body_bytes))
        wait = parse_wait_ms(wait_ms, settings.queue_max_wait_ms)
        if callback_url is not None:
            check_callback_url(callback_url, settings.callback_allowed_hosts)
        task_id = await queue.submit(score_request, callback_url)
        doc = (await queue.document(task_id, wait) if wait else None) or task_document(task_id, "PENDING")
        status = 200 if doc["status"] in READY_STATES else 202
        return json_response(doc, status, {"Location": task_path(task_id)})

    @app.get(QUEUE_TASKS_PATH + "/{task_id}")
    async def task_status(task_id: str, wait_ms: str | None = None) -> Response:
        wait = parse_wait_ms(wait_ms, settings.queue_max_wait_ms)
        doc = await queue.document(task_id, wait) if is_task_id(task_id) else None
        if doc is None:
            raise UnknownTask(
                f"no task {task_id!r}: never issued, or its result expired "
                f"(after {settings.queue_result_expires_s} s)"
            )
        return json_response(doc)

    @app.get(HEALTH_PATH)
    async def healthcheck() -> Response:
        return json_response(*health.health_response(await queue.health()))

    return app


def from_environment() -> FastAPI:
    """The server's entry point (``uvicorn --factory``): the settings from the environment."""
    return create_app(Settings())
