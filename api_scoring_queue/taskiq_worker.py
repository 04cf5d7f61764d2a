"""taskiq worker of the queue architecture (``QUEUE_ENGINE=taskiq``): the broker with its two tasks, and its
entry point.

``python -m api_scoring_queue.taskiq_worker --node <QUEUE_NAME>@<host>`` (the exact command:
``scoring_bench.stack.servers.command``) runs one asyncio process: taskiq's :class:`Receiver` reads the
broker's stream (:class:`scoring_bench.service.queue_taskiq.ScoringStreamBroker`) and runs up to
``QUEUE_WORKER_CONCURRENCY`` tasks at once on the event loop. A task runs the async handler's scoring code
(:class:`scoring_bench.service.scorer_async.AsyncScorer`: one aiohttp session, the model calls gathered as
``QUEUE_MODEL_CALLS`` says, against ``QUEUE_MODEL_API``) — no thread pool, no thread hand-off.

What the Celery worker gets from Celery, this one does itself, in the task or in :class:`ScoringMiddleware`:

- transient errors (:data:`scoring_bench.service.queue.TRANSIENT_ERRORS`) retried up to QUEUE_MAX_RETRIES
  times with the same backoff, inside the task (its state stored as RETRY meanwhile; the message stays
  unacknowledged and kept fresh, see queue_taskiq);
- a time limit per attempt (QUEUE_TIME_LIMIT_S: the scoring is cancelled, the task fails with
  ``task_time_limit``; QUEUE_SOFT_TIME_LIMIT_S has no equivalent);
- QUEUE_COUNT_RUNS (the same hash as the Celery worker's, :func:`scoring_bench.service.queue.runs_key`);
- the callback: once the result is stored, a second task (``CALLBACK_TASK``) POSTs the document, the
  allowlist checked again, retried with the same backoff;
- metrics on ``HOST:QUEUE_WORKER_METRICS_PORT`` (the same families as the Celery worker: steps, tasks
  started / succeeded / failed, end-to-end latency);
- a heartbeat every second (the API's health and the supervisor's readiness: taskiq has no ping).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import time
from contextlib import suppress
from typing import Any, ClassVar

from redis.exceptions import RedisError
from taskiq import Context, TaskiqDepends, TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.kicker import AsyncKicker
from taskiq.receiver import Receiver

from scoring_bench.core.callback_urls import callback_refusal
from scoring_bench.core.schemas import ScoreRequest
from scoring_bench.core.settings import Architecture, Settings
from scoring_bench.core.timing import QUEUED_STEP
from scoring_bench.service import metrics, profiling
from scoring_bench.service.callback_sender import CallbackFailed, CallbackRefused, CallbackSender
from scoring_bench.service.queue import CALLBACK_TASK, SCORE_TASK, TRANSIENT_ERRORS, retry_delay_s, runs_key
from scoring_bench.service.queue_taskiq import (
    HEARTBEAT_S,
    STORE_RESULT_LABEL,
    JsonResultBackend,
    ScoringStreamBroker,
    TaskTimeLimit,
    beat,
    decode_meta,
    encode_meta,
    meta_of_result,
    workers_key,
)
from scoring_bench.service.redis_clients import async_redis
from scoring_bench.service.scorer_async import AsyncScorer
from scoring_bench.service.task_store import document_of

WORKER_SERVICE = "queue-worker"
log = logging.getLogger("scoring_bench")


class TaskiqScorer(AsyncScorer):
    """The async handler's scoring code, its model calls as QUEUE_MODEL_CALLS says."""

    architecture: ClassVar[Architecture] = "queue"


def scorer_settings(settings: Settings) -> Settings:
    """The worker's settings for AsyncScorer: its model client aimed at QUEUE_MODEL_API."""
    endpoint = (
        settings.model_async_endpoint if settings.queue_model_api == "async" else settings.model_sync_endpoint
    )
    return settings.model_copy(update={"model_async_url": endpoint})


class ScoringMiddleware(TaskiqMiddleware):
    """After a scoring task's result is stored: its metrics, then its callback (a second task), so a
    receiver that asks for the status sees what it was sent."""

    def __init__(self, worker: TaskiqWorker) -> None:
        super().__init__()
        self.worker = worker

    async def post_save(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        if message.task_name != SCORE_TASK:
            return
        kwargs = message.kwargs or {}
        if self.worker.metrics is not None:
            steps, queue_metrics = self.worker.metrics
            if not result.is_err and isinstance(result.return_value, dict):
                steps.observe_steps(result.return_value.get("timings") or {})
            queue_metrics.task_ended(not result.is_err, kwargs.get("submitted_at"))
        if url := kwargs.get("callback_url"):
            meta = decode_meta(meta_of_result(message.task_id, result))
            document = document_of(message.task_id, str(meta["status"]), meta.get("result"))
            kicker: AsyncKicker[Any, Any] = AsyncKicker(
                CALLBACK_TASK, self.broker, {STORE_RESULT_LABEL: False}
            )
            await kicker.kiq(url=url, document=document)


class TaskiqWorker:
    """The broker, its result backend, the tasks, and what they use (made in the running loop by
    :meth:`start`)."""

    def __init__(self, settings: Settings, node: str) -> None:
        self.settings = settings
        self.node = node
        self.broker = ScoringStreamBroker(settings, consumer_name=node, worker=True)
        self.results = JsonResultBackend(settings)
        self.broker.with_result_backend(self.results)
        self.broker.add_middlewares(ScoringMiddleware(self))
        self.broker.is_worker_process = True
        self.scorer = TaskiqScorer(scorer_settings(settings))
        self.sender = CallbackSender(settings.callback_timeout_s)
        recorder = metrics.recorder(settings, WORKER_SERVICE)
        self.metrics = None if recorder is None else (recorder, metrics.QueueMetrics(WORKER_SERVICE))

        # taskiq registers functions (it renames them), not bound methods
        async def score(
            features: list[float],
            entity_id: str | None = None,
            callback_url: str | None = None,
            submitted_at: float | None = None,
            context: Context = TaskiqDepends(),  # noqa: B008  (taskiq's dependency injection)
        ) -> dict[str, Any]:
            return await self.score(context.message.task_id, features, entity_id, submitted_at)

        async def deliver_callback(url: str, document: dict[str, Any]) -> None:
            await self.deliver_callback(url, document)

        self.broker.register_task(score, SCORE_TASK)
        self.broker.register_task(deliver_callback, CALLBACK_TASK)

    def backoff(self, retries: int) -> float:
        return retry_delay_s(
            retries, self.settings.queue_retry_backoff_s, self.settings.queue_retry_backoff_max_s
        )

    async def start(self) -> None:
        await self.scorer.start()

    async def close(self) -> None:
        await self.scorer.close()
        await self.broker.shutdown()

    async def score(
        self, task_id: str, features: list[float], entity_id: str | None, submitted_at: float | None
    ) -> dict[str, Any]:
        """The scoring handler's answer plus ``timings``, as the Celery worker's task. Transient errors are
        retried here with backoff (state RETRY meanwhile); others fail the task."""
        started = time.time()
        if self.metrics is not None:
            self.metrics[1].started.inc()
        request = ScoreRequest(entity_id, tuple(features))
        for attempt in range(self.settings.queue_max_retries + 1):
            if self.settings.queue_count_runs:
                await self.count_run(task_id, attempt)
            try:
                async with asyncio.timeout(self.settings.queue_time_limit_s):
                    body, timings = await self.scorer.score(request)
                break
            except TimeoutError:
                limit = self.settings.queue_time_limit_s
                raise TaskTimeLimit(
                    f"the task ran out of time: longer than QUEUE_TIME_LIMIT_S={limit:g} s"
                ) from None
            except TRANSIENT_ERRORS as exc:
                if attempt == self.settings.queue_max_retries:
                    raise
                with suppress(RedisError):  # the state is informative; the retry goes on without it
                    await self.results.store(task_id, encode_meta(task_id, "RETRY", error=exc))
                await asyncio.sleep(self.backoff(attempt))
        steps = {**timings.steps, "total": timings.total_ms()}
        if submitted_at is not None:
            steps[QUEUED_STEP] = round(max(started - submitted_at, 0.0) * 1000, 3)
        return {**body, "timings": steps}

    async def count_run(self, task_id: str, attempt: int) -> None:
        """Count this run of the attempt (QUEUE_COUNT_RUNS), as the Celery worker does; a store that does
        not answer leaves it uncounted."""
        key = runs_key(self.settings, task_id)
        assert self.results.client is not None
        try:
            pipe = self.results.client.pipeline(transaction=False)
            pipe.hincrby(key, str(attempt), 1)
            pipe.expire(key, self.settings.queue_result_expires_s)
            await pipe.execute()
        except RedisError as exc:
            log.warning("run of task %s not counted: %r", task_id, exc)

    async def deliver_callback(self, url: str, document: dict[str, Any]) -> None:
        """POST ``document`` to ``url``, retried with backoff while the receiver is unreachable or answers
        429/5xx; the allowlist checked again (a task's arguments are only as trustworthy as the broker)."""
        refusal = callback_refusal(url, self.settings.callback_allowed_hosts)
        if refusal is not None:
            log.warning("callback of task %s not sent: %s", document.get("task_id"), refusal)
            return
        for attempt in range(self.settings.callback_max_retries + 1):
            try:
                await asyncio.to_thread(self.sender.post, url, document)
                return
            except CallbackRefused as exc:
                log.warning("callback of task %s refused: %s", document.get("task_id"), exc)
                return
            except CallbackFailed as exc:
                if attempt == self.settings.callback_max_retries:
                    log.warning("callback of task %s not delivered: %s", document.get("task_id"), exc)
                    return
                await asyncio.sleep(self.backoff(attempt))


async def heartbeat(worker: TaskiqWorker, stop: asyncio.Event) -> None:
    """Beat every second and keep this worker's unacknowledged messages fresh; a broker that does not answer
    is tried again at the next beat."""
    client = async_redis(worker.settings, worker.settings.queue_broker_url)
    try:
        while not stop.is_set():
            try:
                await beat(client, worker.settings, worker.node)
                await worker.broker.touch(client)
            except RedisError as exc:
                log.warning("taskiq worker: heartbeat failed: %r", exc)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), HEARTBEAT_S)
        with suppress(RedisError):
            await client.zrem(workers_key(worker.settings), worker.node)
    finally:
        await client.aclose()


async def run(settings: Settings, node: str) -> None:
    """Listen until SIGTERM or SIGINT, then let the running tasks finish (QUEUE_TIME_LIMIT_S at most)."""
    worker = TaskiqWorker(settings, node)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await worker.start()
    receiver = Receiver(
        worker.broker,
        validate_params=False,  # the API validated the request; the kwargs are plain JSON
        max_async_tasks=settings.queue_worker_concurrency,
        max_prefetch=0,
        propagate_exceptions=False,
        wait_tasks_timeout=settings.queue_time_limit_s,
    )
    beating = asyncio.create_task(heartbeat(worker, stop))
    try:
        await receiver.listen(stop)
    finally:
        stop.set()
        await beating
        await worker.close()


def main(argv: list[str] | None = None) -> None:
    """The worker's entry point: settings from the environment; ``--node``: its name (heartbeat, consumer)."""
    parser = argparse.ArgumentParser(prog="api_scoring_queue.taskiq_worker")
    parser.add_argument("--node", default=None, help="node name (default: <QUEUE_NAME>@<host>)")
    args = parser.parse_args(argv)
    settings = Settings()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    node = args.node or f"{settings.queue_name}@{socket.gethostname()}"
    if settings.metrics_enabled:
        metrics.start_worker_server(settings.host, settings.queue_worker_metrics_port, WORKER_SERVICE)
    profiling.start_process(settings, WORKER_SERVICE)
    try:
        asyncio.run(run(settings, node))
    finally:
        profiling.finish_process()


if __name__ == "__main__":
    main()
