"""Celery worker of the queue architecture: the app with its two tasks, and its entry point.

``python -m api_scoring_queue.worker --pool threads --concurrency 64 ...`` (the exact command:
``scoring_bench.stack.servers.command``) builds the worker from the settings in the environment
(:func:`main`) and runs Celery's own worker with it. A task runs the sync handler's scoring code
(SyncScorer: the feature-store read, then the model calls, concurrent by default
(``QUEUE_MODEL_CALLS``), against ``QUEUE_MODEL_API``); the pool
(``QUEUE_WORKER_POOL``: 64 threads by default) runs many tasks at once. Why: doc/queue.md.

Metrics: the worker serves no HTTP, so its main process serves its own ``/metrics`` on
``HOST:QUEUE_WORKER_METRICS_PORT``. The pool's processes record into the worker's
``PROMETHEUS_MULTIPROC_DIR`` (a prefork pool's children too) and the server sums them.

Profiling (``PROFILER``, ``PROFILE_DIR``): :func:`scoring_bench.service.profiling.install_celery`, in
the processes that run the tasks, as ``queue-worker-<pid>.*``.
"""

from __future__ import annotations

if __name__ == "__main__":
    # gevent's pool needs its monkey patches before anything imports sockets or threads, which is what
    # Celery's own `celery` command does first; without them a gevent worker never answered a ping.
    from celery import maybe_patch_concurrency

    maybe_patch_concurrency()

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from celery import Celery, Task
from celery.utils.log import get_task_logger
from redis.exceptions import RedisError

from scoring_bench.core.callback_urls import callback_refusal
from scoring_bench.core.schemas import ScoreRequest
from scoring_bench.core.settings import Architecture, Settings
from scoring_bench.core.tasks import READY_STATES
from scoring_bench.core.timing import QUEUED_STEP
from scoring_bench.service import metrics, profiling
from scoring_bench.service.callback_sender import CallbackFailed, CallbackSender
from scoring_bench.service.queue import (
    CALLBACK_TASK,
    SCORE_TASK,
    TRANSIENT_ERRORS,
    make_celery,
    retry_delay_s,
    runs_key,
    scorer_settings,
)
from scoring_bench.service.scorer_sync import SyncScorer
from scoring_bench.service.task_store import document_of

WORKER_SERVICE = "queue-worker"
log = get_task_logger(__name__)
T = TypeVar("T")


class TaskScorer(SyncScorer):
    """The sync handler's scoring code, its model calls one after another or on a thread pool as
    QUEUE_MODEL_CALLS says (``Settings.concurrent_model_calls("queue")``)."""

    architecture: ClassVar[Architecture] = "queue"


class ProcessClients:
    """What a task uses, made once per worker process on first use: after the prefork pool has
    forked (a pooled connection must not be shared across processes), shared by its threads or
    greenlets."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._made: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _once(self, name: str, make: Callable[[], T]) -> T:
        if name not in self._made:
            with self._lock:
                if name not in self._made:
                    self._made[name] = make()
        return self._made[name]  # type: ignore[no-any-return]

    def scorer(self) -> SyncScorer:
        return self._once("scorer", lambda: TaskScorer(scorer_settings(self.settings)))

    def sender(self) -> CallbackSender:
        return self._once("sender", lambda: CallbackSender(self.settings.callback_timeout_s))

    def metrics(self) -> tuple[metrics.ServiceMetrics, metrics.QueueMetrics] | None:
        def make() -> tuple[metrics.ServiceMetrics, metrics.QueueMetrics] | None:
            recorder = metrics.recorder(self.settings, WORKER_SERVICE)
            return None if recorder is None else (recorder, metrics.QueueMetrics(WORKER_SERVICE))

        return self._once("metrics", make)


def create_worker(settings: Settings, clients: ProcessClients | None = None) -> Celery:
    """The Celery app with the scoring task and the callback task, configured by ``settings``
    (``clients``: what the tasks use; by default made on first use in each worker process)."""
    app = make_celery(settings)
    process = clients or ProcessClients(settings)

    def backoff(retries: int) -> float:
        return retry_delay_s(retries, settings.queue_retry_backoff_s, settings.queue_retry_backoff_max_s)

    class ScoreTask(Task):  # type: ignore[misc]
        """Counts its runs and ends, and posts the task's outcome to its callback URL once it has
        ended (the result is stored by then, so a receiver that asks for the status sees the same)."""

        def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
            if (recorded := process.metrics()) is not None:
                recorded[1].started.inc()

        def after_return(
            self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any
        ) -> None:
            if status not in READY_STATES:
                return
            if (recorded := process.metrics()) is not None:
                # after the result is stored (Celery calls after_return then): off the waiting client's path
                if status == "SUCCESS" and isinstance(retval, dict):
                    recorded[0].observe_steps(retval.get("timings") or {})
                recorded[1].task_ended(status == "SUCCESS", (kwargs or {}).get("submitted_at"))
            if url := (kwargs or {}).get("callback_url"):
                self.app.send_task(CALLBACK_TASK, args=(url, document_of(task_id, status, retval)))

    @app.task(
        name=SCORE_TASK, bind=True, base=ScoreTask, max_retries=settings.queue_max_retries, shared=False
    )  # shared: Celery would add it to every app made in this process
    def score(
        self: Task,
        features: list[float],
        entity_id: str | None = None,
        callback_url: str | None = None,
        submitted_at: float | None = None,
    ) -> dict[str, Any]:
        """The scoring handler's answer plus ``timings`` (ms per step, as in Server-Timing).
        Transient errors are retried with backoff; others (an unknown entity) fail the task.
        ``submitted_at``: the API's clock at submit; ``timings["queued"]`` is the time from there to this
        run's start (publish, broker, the worker's pick-up; wall clocks of two processes: one host's, or
        as far apart as the hosts' clocks are)."""
        started = time.time()
        if settings.queue_count_runs:
            count_run(self, settings)
        try:
            body, timings = process.scorer().score(ScoreRequest(entity_id, tuple(features)))
        except TRANSIENT_ERRORS as exc:
            raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from None
        steps = {**timings.steps, "total": timings.total_ms()}
        if submitted_at is not None:
            steps[QUEUED_STEP] = round(max(started - submitted_at, 0.0) * 1000, 3)
        return {**body, "timings": steps}

    @app.task(
        name=CALLBACK_TASK,
        bind=True,
        ignore_result=True,
        max_retries=settings.callback_max_retries,
        shared=False,
    )
    def deliver_callback(self: Task, url: str, document: dict[str, Any]) -> None:
        """POST ``document`` to ``url``, retried with backoff while the receiver is unreachable or
        answers 429/5xx. The allowlist is checked again: the API checked it at submit time, but a
        task's arguments are only as trustworthy as everything that can write to the broker."""
        refusal = callback_refusal(url, settings.callback_allowed_hosts)
        if refusal is not None:
            log.warning("callback of task %s not sent: %s", document.get("task_id"), refusal)
            return
        try:
            process.sender().post(url, document)
        except CallbackFailed as exc:
            raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from None

    return app


def count_run(task: Task, settings: Settings) -> None:
    """Count this run of the task's current attempt in the result store (:func:`runs_key`), expiring with
    its result. A store that does not answer leaves the run uncounted (and says so in the log): the
    task itself goes on, and fails or retries on its own reads if the store is down."""
    key = runs_key(settings, task.request.id)
    try:
        pipe = task.backend.client.pipeline(transaction=False)
        pipe.hincrby(key, str(task.request.retries or 0), 1)
        pipe.expire(key, settings.queue_result_expires_s)
        pipe.execute()
    except RedisError as exc:
        log.warning("run of task %s not counted: %r", task.request.id, exc)


def main(argv: list[str] | None = None) -> None:
    """The worker's entry point: settings from the environment, then Celery's ``worker`` command
    with ``argv`` (its options: pool, concurrency, queue, node name)."""
    settings = Settings()
    app = create_worker(settings)
    profiling.install_celery(settings, WORKER_SERVICE)
    if settings.metrics_enabled:
        metrics.start_worker_server(settings.host, settings.queue_worker_metrics_port, WORKER_SERVICE)
    app.worker_main(["worker", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
