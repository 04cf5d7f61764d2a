"""The queue architecture's shared core: the Celery app built from the settings, the retry
backoff, the checks that a broker and a worker answer, and the API's engine seam (:class:`Engine`:
:class:`CeleryEngine` here, ``TaskiqEngine`` in :mod:`scoring_bench.service.queue_taskiq`).

Choices (measured or argued in doc/queue.md):

- Broker and results default to the stack's own Redis: the embedded one's db 1 and db 2 (the
  feature store is db 0), or, with ``REDIS_URL``, that Redis under ``REDIS_KEY_PREFIX``. Every
  key of the broker, the results and the issued-id registry starts with
  ``Settings.queue_key_prefix`` (kombu's and Celery's ``global_keyprefix``). ``BROKER_URL`` moves
  the broker to RabbitMQ; the results stay in Redis (the registry of issued ids lives beside them).
- At-least-once: tasks are acked after they ran and requeued if their worker dies
  (``acks_late`` + ``reject_on_worker_lost``), a worker reserves one task per pool slot
  (prefetch multiplier 1), and publishing to RabbitMQ waits for the broker's confirm.
- The queue name also names the control exchange, so workers of stacks that share a broker never
  answer each other's pings.
- Cost per task (profiled and measured, doc/queue.md "Cost per task"): no STARTED state stored
  (``QUEUE_TRACK_STARTED``), a SUCCESS stored without reading the stored state first
  (``QUEUE_RESULT_READ_BEFORE_SUCCESS``, :class:`SuccessStoringBackend`), and on a Redis broker one Redis
  client per kombu channel instead of one per publish, delivery and ack (``QUEUE_BROKER_CLIENT``,
  :mod:`scoring_bench.service.kombu_redis`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from celery import Celery, states
from celery.backends.base import BackendStoreError
from celery.backends.redis import RedisBackend
from kombu.exceptions import KombuError
from kombu.utils.encoding import bytes_to_str
from prometheus_client.core import GaugeMetricFamily
from starlette.concurrency import run_in_threadpool

from scoring_bench.core import health
from scoring_bench.core.errors import FeatureStoreUnavailable, ModelTimeout, ModelUnavailable
from scoring_bench.core.settings import Settings
from scoring_bench.service import kombu_redis

SCORE_TASK = "scoring_bench.score"
CALLBACK_TASK = "scoring_bench.deliver_callback"
# What a retry may cure; anything else (an unknown entity, ...) fails the task at once.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (ModelUnavailable, ModelTimeout, FeatureStoreUnavailable)
# Publishing is retried briefly, then the API answers 503 instead of hanging on a dead broker.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
log = logging.getLogger("scoring_bench")
BROKER_ERRORS: tuple[type[BaseException], ...] = (KombuError, OSError)
# kombu's Redis transport keeps a priority's tasks in "<queue>\x06\x16<priority>" (0: the queue itself)
REDIS_PRIORITY_SEP = "\x06\x16"
REDIS_PRIORITY_STEPS = (0, 3, 6, 9)
DEPTH_TIMEOUT_S = 0.5
CANCELLING_POOLS = ("prefork", "gevent")  # the pools whose running tasks Celery can stop (terminate_job)
RESULT_STORE_RETRIES, RESULT_STORE_MAX_SLEEP_MS = 30, 2000  # storing a result: ~25 s of retries at most
PING_TIMEOUT_S = 0.5  # the API's health check: the broker's connect and a worker's ping
PING_CACHE_S = 1.0  # at most one ping per second, however often health is asked


def is_redis_url(url: str) -> bool:
    return urlsplit(url).scheme in ("redis", "rediss")


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    if not is_redis_url(settings.queue_broker_url):
        # RabbitMQ redelivers an unacked task as soon as its consumer's connection drops;
        # publisher confirms make a 202 mean "the broker has the task".
        return {"confirm_publish": True}
    return {
        "global_keyprefix": settings.queue_key_prefix,
        # Redis has no consumer connections to watch: a task a worker took and never acked is
        # redelivered once it is older than this (kombu's QoS.restore_visible).
        "visibility_timeout": settings.queue_visibility_timeout_s,
        # kombu looks for such tasks only every 10 x 10 s by default, which would make a short
        # visibility timeout meaningless: look every second (one ZRANGE under a mutex).
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
        "socket_connect_timeout": 1.0,
    }


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery's configuration, all of it derived from one Settings object."""
    name = settings.queue_name
    redis_broker = is_redis_url(settings.queue_broker_url)
    return {
        "broker_url": settings.queue_broker_url,
        # QUEUE_BROKER_CLIENT=channel: one Redis client object per channel, not one per operation
        "broker_transport": kombu_redis.TRANSPORT
        if redis_broker and settings.queue_broker_client == "channel"
        else None,
        "broker_transport_options": broker_transport_options(settings),
        "broker_connection_timeout": 2.0,
        "broker_connection_retry_on_startup": True,
        "result_backend": settings.queue_results_url,
        "result_backend_transport_options": {"global_keyprefix": settings.queue_key_prefix},
        "redis_socket_timeout": settings.redis_timeout_s,
        "redis_socket_connect_timeout": settings.redis_timeout_s,
        "result_expires": settings.queue_result_expires_s,
        # One result backend (one Redis connection pool) per process. Celery's default is one per
        # thread, and gevent's threads are greenlets, one per task: a new backend, an entry-point
        # scan and a new connection for every task (10 ms of CPU a task here, against 3 ms).
        "result_backend_thread_safe": True,
        # A task's state and result are stored again and again while the result store is down (full-jitter
        # backoff from 10 ms to 2 s, ~25 s in all), instead of once: a task that ran while Redis restarted
        # was acked without its result and stayed STARTED for ever (found by the faults experiment).
        "result_backend_always_retry": True,
        "result_backend_base_sleep_between_retries_ms": 10,
        "result_backend_max_sleep_between_retries_ms": RESULT_STORE_MAX_SLEEP_MS,
        "result_backend_max_retries": RESULT_STORE_RETRIES,
        "task_serializer": settings.queue_serializer,
        "result_serializer": settings.queue_serializer,
        "accept_content": [settings.queue_serializer],
        "result_accept_content": [settings.queue_serializer],
        "task_default_queue": name,
        "task_default_exchange": name,
        "task_default_routing_key": name,
        "control_exchange": name,
        "event_exchange": f"{name}.events",
        "task_acks_late": settings.queue_acks_late,
        "task_reject_on_worker_lost": settings.queue_acks_late,
        "worker_prefetch_multiplier": settings.queue_prefetch_multiplier,
        "task_soft_time_limit": settings.queue_soft_time_limit_s,
        "task_time_limit": settings.queue_time_limit_s,
        "task_track_started": settings.queue_track_started,
        "task_publish_retry_policy": PUBLISH_RETRY_POLICY,
        # With acks_late the broker redelivers the tasks of a lost connection: a pool that can stop a
        # running task stops them instead of finishing them twice. The threads and solo pools cannot
        # (Celery then stops consuming for good: "TaskPool does not implement kill_job", found by the
        # faults experiment on a Redis restart): their tasks finish, and the redelivered copy runs again.
        "worker_cancel_long_running_tasks_on_connection_loss": settings.queue_worker_pool in CANCELLING_POOLS,
        "worker_disable_rate_limits": True,
        # After a reconnect with tasks still running, Celery lowers the prefetch count and raises it again
        # with a basic.qos per ack — a blocking round trip from the consumer's event loop. After a
        # RabbitMQ restart under load that wait never ended and the worker stopped consuming (found by the
        # faults experiment; celery#9512 is the same feature's trouble with per-consumer QoS). With one
        # task per slot (QUEUE_PREFETCH_MULTIPLIER=1) there is nothing to over-fetch: no reduction.
        "worker_enable_prefetch_count_reduction": False,
    }


class ResultStoreBackend(RedisBackend):  # type: ignore[misc]  # celery has no type hints
    """The queue API's result backend: Celery's Redis backend, without the per-task subscription.

    By default, every task sent subscribes the sender to the task's result channel
    (``on_task_call``), so that ``AsyncResult.get()`` hears of the result; the subscription is dropped
    when the ``AsyncResult`` is collected. The API never waits on an ``AsyncResult`` — it reads a task's
    state with one MGET (:class:`scoring_bench.service.task_store.TaskStore`) — and never reads that
    pub/sub connection, so nobody processed the replies: redis-py kept every channel ever subscribed
    (~300 B per task) and Redis buffered the unread replies and results. The soak measured it: the queue
    API's memory grew 2.9 MB a minute at 160 tasks/s (doc/soak.md). Two Redis commands per task less, too.
    """

    def on_task_call(self, producer: Any, task_id: str) -> None:
        """Subscribe to nothing: the API reads results from the store itself."""


class SuccessStoringBackend(RedisBackend):  # type: ignore[misc]
    """The worker's result backend with ``QUEUE_RESULT_READ_BEFORE_SUCCESS=false``: Celery's Redis backend,
    storing a SUCCESS without first reading the task's stored state.

    Celery reads the stored state before every write and keeps a SUCCESS already there, so that a duplicate
    run (a redelivered task) cannot overwrite it: one Redis round trip per state stored. A SUCCESS written
    over a SUCCESS is the same task's answer again, so for SUCCESS the read is skipped; STARTED, RETRY and
    FAILURE are still read first and never overwrite a SUCCESS.
    """

    def _store_result(
        self,
        task_id: str,
        result: Any,
        state: str,
        traceback: Any = None,
        request: Any = None,
        **kwargs: Any,
    ) -> Any:
        if state != states.SUCCESS:
            return super()._store_result(task_id, result, state, traceback, request, **kwargs)
        meta = self._get_result_meta(result=result, state=state, traceback=traceback, request=request)
        meta["task_id"] = bytes_to_str(task_id)
        try:
            self._set_with_state(self.get_key_for_task(task_id), self.encode(meta), state)
        except BackendStoreError as exc:
            raise BackendStoreError(str(exc), state=state, task_id=task_id) from exc
        return result


def make_celery(settings: Settings, reads_results_itself: bool = False) -> Celery:
    """The Celery app of the settings; ``reads_results_itself``: for a process that reads task states from
    the result store directly (the API), with :class:`ResultStoreBackend` (``AsyncResult.get`` does not
    hear of results there)."""
    app = Celery("scoring_bench", set_as_current=False)
    app.conf.update(celery_config(settings))
    if reads_results_itself:
        app.conf.result_backend = f"{__name__}:{ResultStoreBackend.__name__}+{settings.queue_results_url}"
    elif not settings.queue_result_read_before_success:
        app.conf.result_backend = f"{__name__}:{SuccessStoringBackend.__name__}+{settings.queue_results_url}"
    return app


def runs_key(settings: Settings, task_id: str) -> str:
    """The result store's hash of a task's runs (QUEUE_COUNT_RUNS): attempt (0, then each retry) → how
    many times that attempt started. An attempt counted twice ran twice: its message was delivered again
    (a worker died, or lost the broker, before acking it)."""
    return f"{settings.queue_key_prefix}runs:{task_id}"


def scorer_settings(settings: Settings) -> Settings:
    """The worker's settings for SyncScorer: its model client aimed at QUEUE_MODEL_API."""
    async_api = settings.queue_model_api == "async"
    endpoint = settings.model_async_endpoint if async_api else settings.model_sync_endpoint
    return settings.model_copy(update={"model_sync_url": endpoint})


def retry_delay_s(
    retries: int, base_s: float, max_s: float, rand: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(max, base * 2**retries)].

    Celery's own ``retry_backoff`` counts in whole seconds (at least 1 s), too coarse for a
    request someone waits on; this is the same rule in fractions of a second.
    """
    return rand() * min(max_s, base_s * 2.0**retries)


def _errors(conn: Any) -> tuple[type[BaseException], ...]:
    """What talking to the broker through ``conn`` may raise (its transport's own errors too)."""
    return BROKER_ERRORS + tuple(conn.connection_errors) + tuple(conn.channel_errors)


def worker_answers(app: Celery, node_name: str, timeout_s: float) -> bool:
    """True when the worker ``node_name`` answers a control ping: it consumes from the broker.

    Every check uses a connection of its own: kombu's connection pools are global, keyed by URL,
    and a pooled connection can outlive the broker it was made to (a stack restarted on the same
    port)."""
    with app.connection_for_write(connect_timeout=timeout_s) as conn:
        try:
            replies = app.control.ping(destination=[node_name], timeout=timeout_s, connection=conn)
        except _errors(conn):
            return False
    return any(node_name in reply for reply in replies)


def broker_and_workers(app: Celery, timeout_s: float) -> dict[str, str]:
    """Health of the broker and of the workers (at least one answers a ping). Blocking."""
    with app.connection_for_write(connect_timeout=timeout_s) as conn:
        try:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout_s)
            replies = app.control.ping(timeout=timeout_s, limit=1, connection=conn)
        except _errors(conn) as exc:
            return {"broker": health.down(repr(exc)), "workers": health.unknown("the broker is down")}
    workers = health.OK if replies else health.down(f"no worker answered a ping within {timeout_s} s")
    return {"broker": health.OK, "workers": workers}


class CachedCheck:
    """An expensive health check run at most once per ``ttl_s``, however many callers ask
    at once (a ping is a broadcast every worker answers: it must not multiply with load)."""

    def __init__(
        self,
        check: Callable[[], Awaitable[dict[str, str]]],
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.check = check
        self.ttl_s = ttl_s
        self.clock = clock
        self.value: dict[str, str] | None = None
        self.checked_at = float("-inf")
        self.lock = asyncio.Lock()

    async def get(self) -> dict[str, str]:
        async with self.lock:
            if self.value is None or self.clock() - self.checked_at >= self.ttl_s:
                self.value = await self.check()
                self.checked_at = self.clock()
            return self.value


def queue_keys(settings: Settings) -> list[str]:
    """Every Redis list that holds the queue's waiting tasks: kombu keeps a priority's tasks in
    ``<queue>\\x06\\x16<priority>`` (priority 0: the queue itself), under the broker's
    ``global_keyprefix``."""
    base = settings.queue_key_prefix + settings.queue_name
    return [base + (f"{REDIS_PRIORITY_SEP}{step}" if step else "") for step in REDIS_PRIORITY_STEPS]


class QueueDepth:
    """How many tasks wait in the broker's queue (tasks a worker has reserved are not waiting).
    Redis: the LLENs of :func:`queue_keys` (one pipelined round trip); RabbitMQ: a passive
    declare's message count. ``read`` raises what the broker raises (one of
    :data:`BROKER_ERRORS` or redis's errors); a short timeout keeps a dead broker from hanging it."""

    def __init__(self, settings: Settings, timeout_s: float = DEPTH_TIMEOUT_S) -> None:
        self.queue = settings.queue_name
        self.url = settings.queue_broker_url
        self.timeout_s = timeout_s
        self.redis: Any = None
        self.connection: Any = None
        if is_redis_url(self.url):
            import redis

            self.redis = redis.Redis.from_url(
                self.url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
            )
            self.keys = queue_keys(settings)
        # QUEUE_ENGINE=taskiq: its stream (scoring_bench.service.queue_taskiq.stream_key) holds the waiting
        # and the running tasks (a task's message is deleted when it is acknowledged), its group's pending
        # list the running ones
        self.stream = (
            f"{settings.queue_key_prefix}taskiq:{self.queue}" if settings.queue_engine == "taskiq" else None
        )

    def read(self) -> int:
        if self.redis is not None and self.stream is not None:
            pipe = self.redis.pipeline(transaction=False)
            pipe.xlen(self.stream)
            pipe.xpending(self.stream, self.queue)
            length, pending = pipe.execute()
            return max(0, int(length) - int(pending["pending"]))
        if self.redis is not None:
            pipe = self.redis.pipeline(transaction=False)
            for key in self.keys:
                pipe.llen(key)
            return int(sum(pipe.execute()))
        if self.connection is None:
            from kombu.connection import Connection

            self.connection = Connection(self.url, connect_timeout=self.timeout_s)
        try:
            channel = self.connection.default_channel
            return int(channel.queue_declare(queue=self.queue, passive=True).message_count)
        except BaseException:
            self.connection.release()  # a broken connection is not reused: the next read reconnects
            self.connection = None
            raise

    def close(self) -> None:
        if self.redis is not None:
            self.redis.close()
        if self.connection is not None:
            self.connection.release()


class QueueDepthCollector:
    """``queue_depth``, read from the broker when ``/metrics`` is scraped (a Prometheus collector).
    An unreachable broker gives no sample, never a slow scrape."""

    def __init__(self, settings: Settings, service: str) -> None:
        self.depth = QueueDepth(settings)
        self.queue = settings.queue_name
        self.service = service

    def collect(self) -> list[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "queue_depth", "Tasks waiting in the broker's queue.", labels=["service", "queue"]
        )
        try:
            family.add_metric([self.service, self.queue], self.depth.read())
        except Exception as exc:
            log.warning("queue_depth: the broker did not answer: %r", exc)
        return [family]


class CeleryEngine:
    """The Celery engine's side of the API (QUEUE_ENGINE=celery): publish with ``send_task``, Celery's result
    keys and decoder, the broker and a worker's ping."""

    errors = BROKER_ERRORS

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.celery = make_celery(settings, reads_results_itself=True)
        backend = self.celery.backend
        self.result_key_prefix: str = backend.task_keyprefix.decode()
        self.decode: Callable[[bytes], Mapping[str, Any]] = backend.decode_result
        self.pings = CachedCheck(
            lambda: run_in_threadpool(broker_and_workers, self.celery, PING_TIMEOUT_S), PING_CACHE_S
        )

    def result_key(self, task_id: str) -> Any:
        return self.celery.backend.get_key_for_task(task_id)

    def _publish(self, task_id: str, kwargs: dict[str, Any]) -> None:
        if self.settings.queue_message_repr == "short":  # not Celery's saferepr of every feature
            short = f"{{{len(kwargs['features'])} features, entity {kwargs['entity_id']!r}}}"
            self.celery.send_task(SCORE_TASK, kwargs=kwargs, task_id=task_id, argsrepr="()", kwargsrepr=short)
        else:
            self.celery.send_task(SCORE_TASK, kwargs=kwargs, task_id=task_id)

    async def publish(self, task_id: str, kwargs: dict[str, Any]) -> None:
        """Publish (kombu blocks): on a worker thread (QUEUE_PUBLISH=thread), or on the event loop itself
        (inline: no thread hand-off, but the loop waits for the broker meanwhile)."""
        if self.settings.queue_publish == "inline":
            self._publish(task_id, kwargs)
        else:
            await run_in_threadpool(self._publish, task_id, kwargs)

    async def broker_and_workers(self) -> dict[str, str]:
        return await self.pings.get()

    async def close(self) -> None:
        self.celery.close()


class Engine(Protocol):
    """What the API needs of a queue engine (:class:`CeleryEngine`, or
    :class:`scoring_bench.service.queue_taskiq.TaskiqEngine`)."""

    errors: tuple[type[BaseException], ...]  # what publishing raises when the broker is unreachable
    result_key_prefix: str  # the result store's keys (and notification channels) start with it

    def result_key(self, task_id: str) -> Any: ...
    def decode(self, raw: bytes) -> Mapping[str, Any]: ...
    async def publish(self, task_id: str, kwargs: dict[str, Any]) -> None: ...
    async def broker_and_workers(self) -> dict[str, str]: ...
    async def close(self) -> None: ...


def make_engine(settings: Settings) -> Engine:
    if settings.queue_engine == "taskiq":
        from scoring_bench.service.queue_taskiq import TaskiqEngine  # taskiq is imported only when used

        return TaskiqEngine(settings)
    return CeleryEngine(settings)
