"""Celery worker of the queue architecture: the app and its two tasks.

Served by ``celery -A api_scoring_queue.worker:app worker`` (the exact command:
``scoring_bench.stack.servers.command``). A task runs the sync handler's scoring code (SyncScorer: the
feature-store read, then the model calls one after another, against ``QUEUE_MODEL_API``); the
pool (``QUEUE_WORKER_POOL``: 64 threads by default) runs many tasks at once. Why: doc/queue.md.

Metrics: the worker serves no HTTP, so its main process serves its own ``/metrics`` on
``HOST:QUEUE_WORKER_METRICS_PORT`` (started by ``worker_init``, which only a worker sends: the
queue API imports this module too). The pool's processes record into the worker's
``PROMETHEUS_MULTIPROC_DIR`` (a prefork pool's children too) and the server sums them.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from celery import Task, signals
from celery.utils.log import get_task_logger

from scoring_bench.service import metrics
from scoring_bench.service.callbacks import CallbackFailed, CallbackSender, callback_refusal
from scoring_bench.service.queue import (
    CALLBACK_TASK,
    SCORE_TASK,
    TRANSIENT_ERRORS,
    make_celery,
    retry_delay_s,
    scorer_settings,
)
from scoring_bench.core.schemas import ScoreRequest
from scoring_bench.service.scorer_sync import SyncScorer
from scoring_bench.core.settings import Settings
from scoring_bench.service.task_status import READY_STATES, task_document

settings = Settings()
app = make_celery(settings)
log: logging.Logger = get_task_logger(__name__)

WORKER_SERVICE = "queue-worker"
T = TypeVar("T")
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def _once(name: str, make: Callable[[], T]) -> T:
    """A client made once per worker process, on first use: after the prefork pool has forked
    (a pooled connection must not be shared across processes), shared by threads or greenlets."""
    client = _clients.get(name)
    if client is None:
        with _clients_lock:
            client = _clients.get(name)
            if client is None:
                client = _clients[name] = make()
    return cast(T, client)


def scorer() -> SyncScorer:
    return _once("scorer", lambda: SyncScorer(scorer_settings(settings)))


def sender() -> CallbackSender:
    return _once("sender", lambda: CallbackSender(settings.callback_timeout_s))


@functools.cache
def _metrics() -> tuple[metrics.ServiceMetrics, metrics.QueueMetrics] | None:
    """The worker's metrics, made on first use in the process that records them."""
    recorder = metrics.recorder(settings, WORKER_SERVICE)
    return None if recorder is None else (recorder, metrics.QueueMetrics(WORKER_SERVICE))


def _backoff(retries: int) -> float:
    return retry_delay_s(retries, settings.queue_retry_backoff_s, settings.queue_retry_backoff_max_s)


class ScoreTask(Task):  # type: ignore[misc]
    """Posts the task's outcome to its callback URL once it has ended (the result is stored by
    then, so a receiver that asks for the task's status sees the same)."""

    def after_return(self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any,
                     einfo: Any) -> None:
        url = (kwargs or {}).get("callback_url")
        if url and status in READY_STATES:
            deliver_callback.delay(url, task_document(task_id, status, retval))


@app.task(name=SCORE_TASK, bind=True, base=ScoreTask, max_retries=settings.queue_max_retries)
def score(self: Task, features: list[float], entity_id: str | None = None,
          callback_url: str | None = None, submitted_at: float | None = None) -> dict[str, Any]:
    """The scoring handler's answer plus ``timings`` (ms per step, as in Server-Timing).
    Transient errors are retried with backoff; others (an unknown entity) fail the task.
    ``submitted_at``: the API's clock at submit, for the end-to-end latency (task_postrun)."""
    try:
        body, timings = scorer().score(ScoreRequest(entity_id, tuple(features)))
    except TRANSIENT_ERRORS as exc:
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from None
    if (recorded := _metrics()) is not None:
        recorded[0].observe_timings(timings)
    return {**body, "timings": {**timings.steps, "total": timings.total_ms()}}


@app.task(name=CALLBACK_TASK, bind=True, ignore_result=True, max_retries=settings.callback_max_retries)
def deliver_callback(self: Task, url: str, document: dict[str, Any]) -> None:
    """POST ``document`` to ``url``, retried with backoff while the receiver is unreachable or
    answers 429/5xx. The allowlist is checked again: the API checked it at submit time, but a
    task's arguments are only as trustworthy as everything that can write to the broker."""
    refusal = callback_refusal(url, settings.callback_allowed_hosts)
    if refusal is not None:
        log.warning("callback of task %s not sent: %s", document.get("task_id"), refusal)
        return
    try:
        sender().post(url, document)
    except CallbackFailed as exc:
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from None


@signals.worker_init.connect
def _serve_metrics(**_: Any) -> None:
    if settings.metrics_enabled:
        metrics.start_worker_server(settings.host, settings.queue_worker_metrics_port)


# Connected for every task and filtered by name: ``sender=score`` would evaluate the task's proxy,
# and finalize the app, at import.
@signals.task_prerun.connect
def _task_started(sender: Any = None, **_: Any) -> None:
    if getattr(sender, "name", None) == SCORE_TASK and (recorded := _metrics()) is not None:
        recorded[1].started.inc()


@signals.task_postrun.connect
def _task_ended(sender: Any = None, state: str | None = None, kwargs: dict[str, Any] | None = None,
                **_: Any) -> None:
    """After the result is stored (Celery sends task_postrun then): a retry is not an end."""
    if getattr(sender, "name", None) != SCORE_TASK:
        return
    recorded = _metrics()
    if recorded is not None and state in ("SUCCESS", "FAILURE"):
        recorded[1].task_ended(state == "SUCCESS", (kwargs or {}).get("submitted_at"))
