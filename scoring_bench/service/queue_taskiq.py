"""The queue's second engine, taskiq (``QUEUE_ENGINE=taskiq``): the broker, the result store, the workers'
heartbeat, and the API's side of it (:class:`TaskiqEngine`).

taskiq is natively async: its worker is one asyncio process running the async handler's scoring code
(``api_scoring_queue/taskiq_worker.py``). What this module fixes, and why (doc/queue.md, "Another engine:
taskiq"):

- The broker is a Redis stream read by a consumer group (taskiq-redis's :class:`RedisStreamBroker`:
  XADD, XREADGROUP, XACK): a message delivered to a worker stays in the group's pending list until it is
  acknowledged, which happens after the task's result is stored (taskiq's ``WHEN_SAVED``). A worker that
  dies leaves its messages pending; a live worker claims those idle for longer than
  ``QUEUE_VISIBILITY_TIMEOUT_S`` (XAUTOCLAIM, every second) and runs them again. A live worker keeps its
  own messages from looking idle (it XCLAIMs them to itself every second), so a long task or its retries
  are never delivered twice. :class:`ScoringStreamBroker` changes taskiq-redis's in three ways: the
  acknowledgement also deletes the message (XACK + XDEL: the stream holds only what is waiting or running,
  where taskiq-redis's stream grows for ever or is trimmed by length, waiting messages included); the
  reclaim runs when the worker is idle too (taskiq-redis's runs only after a read that returned
  messages) and takes no lock (its lock key, ``autoclaim:<group>:<stream>``, is outside any prefix); and
  the consumer group starts at the stream's beginning (``$`` would skip what the API published before the
  first worker started).
- Every key is under ``Settings.queue_key_prefix`` (``<prefix>taskiq:...``): the stream, the results, the
  workers' heartbeats; the issued-id registry (:class:`scoring_bench.service.task_store.TaskStore`) and the
  run counts are the Celery engine's keys.
- Results are JSON (``{"task_id", "status", "result"}`` or ``{..., "error"}`` with the error's body), stored
  with ``SET ... EX QUEUE_RESULT_EXPIRES_S`` and ``PUBLISH``ed on a channel named like the key, in one
  pipeline — as Celery's Redis backend does — so :class:`scoring_bench.service.task_events.TaskEvents`
  wakes a waiting request the same way for both engines.
- taskiq has no control ping: each worker keeps its node name's score (the time of its last beat) in a
  sorted set, every second; a worker is alive when it beat within :data:`HEARTBEAT_ALIVE_S`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from taskiq import AckableMessage, AsyncResultBackend, TaskiqResult
from taskiq.kicker import AsyncKicker
from taskiq_redis import RedisStreamBroker

from scoring_bench.core import health
from scoring_bench.core.errors import ScoringError, error_body
from scoring_bench.core.settings import Settings
from scoring_bench.core.tasks import ERROR_STATES
from scoring_bench.service.queue import RESULT_STORE_MAX_SLEEP_MS, RESULT_STORE_RETRIES, SCORE_TASK
from scoring_bench.service.redis_clients import async_redis, pool_options
from scoring_bench.service.task_store import error_of

log = logging.getLogger("scoring_bench")
XREAD_BLOCK_MS = 1000  # a worker's read waits this long for a message, then reclaims and beats
CLAIM_EVERY_S = 1.0  # a worker looks for dead workers' messages this often
ACK_TRIES = 5  # an ack is tried this many times, ACK_RETRY_S apart, while the broker does not answer
ACK_RETRY_S = 1.0
HEARTBEAT_S = 1.0  # a worker beats this often
HEARTBEAT_ALIVE_S = 3.0  # a worker is alive when it beat within this
HEARTBEAT_KEEP_S = 60  # beats older than this are dropped from the set
# A task published with this label false stores no result (the callback task: nobody reads its result).
STORE_RESULT_LABEL = "store_result"
# The errors of a publish or a broker check: what the API turns into 503.
BROKER_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)


def stream_key(settings: Settings) -> str:
    """The stream of the queue's waiting and running tasks (the consumer group is ``QUEUE_NAME``)."""
    return f"{settings.queue_key_prefix}taskiq:{settings.queue_name}"


def result_key_prefix(settings: Settings) -> str:
    return f"{settings.queue_key_prefix}taskiq:result:"


def result_key(settings: Settings, task_id: str) -> str:
    return result_key_prefix(settings) + task_id


def workers_key(settings: Settings) -> str:
    """The sorted set of the workers' heartbeats: node name → time of its last beat."""
    return f"{settings.queue_key_prefix}taskiq:workers:{settings.queue_name}"


class StoredError(ScoringError):
    """A task's error as stored (its body), rebuilt on reading: a task document shows the body as it was."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        super().__init__(str(body.get("message", "")), list(body.get("details") or []))
        self.stored = dict(body)

    def body(self) -> dict[str, Any]:
        return dict(self.stored)


class TaskTimeLimit(ScoringError):
    """A task ran longer than QUEUE_TIME_LIMIT_S (the Celery engine's ``task_time_limit`` body)."""

    status, code = 504, "task_time_limit"


def encode_meta(task_id: str, status: str, result: Any = None, error: BaseException | None = None) -> bytes:
    """What the store holds for a task: its status and its result, or the body of its error."""
    meta: dict[str, Any] = {"task_id": task_id, "status": status}
    if error is not None:
        meta["error"] = error_of(error)
    else:
        meta["result"] = result
    return json.dumps(meta, separators=(",", ":")).encode()


def decode_meta(raw: bytes | str) -> dict[str, Any]:
    """The stored meta, as :class:`scoring_bench.service.task_store.TaskStore` reads Celery's: ``status``
    and ``result`` (an error rebuilt as an exception, so the task document shows its body)."""
    meta = json.loads(raw)
    if not isinstance(meta, dict) or "status" not in meta:
        raise ValueError(f"not a task's stored state: {raw!r}")
    if "error" in meta:
        meta["result"] = StoredError(meta["error"])
    elif meta["status"] in ERROR_STATES:
        meta["result"] = StoredError(error_body("task_failed", "the task failed"))
    return meta


def meta_of_result(task_id: str, result: TaskiqResult[Any]) -> bytes:
    if result.is_err:
        return encode_meta(task_id, "FAILURE", error=result.error or RuntimeError("the task failed"))
    return encode_meta(task_id, "SUCCESS", result.return_value)


def broker_connection_options(settings: Settings, read_block_ms: int = 0) -> dict[str, Any]:
    """redis-py's pool options for the broker (as every Redis client of the stack; a burst waits up to
    QUEUE_POOL_WAIT_S for a free connection, as the API's result store does), a socket timeout longer than a
    blocking read."""
    options = pool_options(settings, settings.queue_pool_wait_s)
    options["socket_timeout"] = settings.redis_timeout_s + read_block_ms / 1000.0
    options.pop("max_connections")
    return {"retry": AsyncRetry(NoBackoff(), 1), **options}


class ScoringStreamBroker(RedisStreamBroker):
    """taskiq-redis's stream broker with the acknowledgement deleting the message, the reclaim of dead
    workers' messages every second (idle or not, without a lock key) and a live worker's own messages kept
    fresh (:meth:`touch`). See the module's docstring."""

    def __init__(self, settings: Settings, consumer_name: str | None = None, worker: bool = False) -> None:
        block = XREAD_BLOCK_MS if worker else 0
        super().__init__(
            settings.queue_broker_url,
            queue_name=stream_key(settings),
            max_connection_pool_size=settings.redis_pool_size + (4 if worker else 0),
            consumer_group_name=settings.queue_name,
            consumer_name=consumer_name,
            consumer_id="0",
            xread_block=XREAD_BLOCK_MS,
            idle_timeout=int(settings.queue_visibility_timeout_s * 1000),
            unacknowledged_batch_size=settings.queue_worker_concurrency,
            xread_count=settings.queue_worker_concurrency,
            **broker_connection_options(settings, block),
        )
        self.in_flight: set[Any] = set()  # delivered to this worker, not yet acknowledged

    def _ack_generator(self, id: str, queue_name: str) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            """XACK + XDEL, tried for a few seconds while the broker does not answer; a message whose ack
            failed is no longer kept fresh, so it is claimed and run again after the visibility timeout
            (at least once) instead of staying pending for ever."""
            try:
                for attempt in range(ACK_TRIES):
                    try:
                        async with aioredis.Redis(connection_pool=self.connection_pool) as client:
                            pipe = client.pipeline(transaction=False)
                            pipe.xack(queue_name, self.consumer_group_name, id)
                            pipe.xdel(queue_name, id)
                            await pipe.execute()
                        return
                    except (RedisError, OSError) as exc:
                        if attempt == ACK_TRIES - 1:
                            log.warning("taskiq: message %s not acknowledged: %r", id, exc)
                            return
                        await asyncio.sleep(ACK_RETRY_S)
            finally:
                self.in_flight.discard(id)

        return ack

    def _message(self, msg_id: Any, fields: Mapping[bytes, bytes]) -> AckableMessage:
        self.in_flight.add(msg_id)  # (already, if it came in a batch: see listen)
        return AckableMessage(data=fields[b"data"], ack=self._ack_generator(msg_id, self.queue_name))

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """Read new messages (XREADGROUP, up to the worker's concurrency at once), and every second claim
        the ones another consumer left unacknowledged for longer than the visibility timeout. A broker
        that goes away is reconnected to every second."""
        claimed_at = float("-inf")
        while True:
            try:
                async with aioredis.Redis(connection_pool=self.connection_pool) as client:
                    while True:
                        if time.monotonic() - claimed_at >= CLAIM_EVERY_S:
                            claimed_at = time.monotonic()
                            reply = await client.xautoclaim(
                                self.queue_name,
                                self.consumer_group_name,
                                self.consumer_name,
                                min_idle_time=self.idle_timeout,
                                count=self.unacknowledged_batch_size,
                            )
                            for msg_id, fields in reply[1]:
                                if fields:  # a message deleted meanwhile has no fields
                                    log.warning("taskiq: message %s of a dead worker claimed", msg_id)
                                    yield self._message(msg_id, fields)
                        fetched: Any = await client.xreadgroup(
                            self.consumer_group_name,
                            self.consumer_name,
                            {self.queue_name: ">"},
                            block=self.block,
                            count=self.count,
                        )
                        for _stream, messages in fetched or []:
                            # the whole batch is this worker's now: kept fresh while it waits for a slot
                            self.in_flight.update(msg_id for msg_id, _ in messages)
                            for msg_id, fields in messages:
                                yield self._message(msg_id, fields)
            except (RedisError, OSError) as exc:
                log.warning("taskiq: the broker did not answer (%r); reading again in 1 s", exc)
                await asyncio.sleep(1.0)
                if isinstance(exc, redis.exceptions.ResponseError) and "NOGROUP" in str(exc):
                    await self._declare_consumer_group()  # the stream was deleted (a flushed Redis)

    async def touch(self, client: aioredis.Redis) -> None:
        """Reset the idle time of this worker's unacknowledged messages (XCLAIM to itself): a message
        whose task runs, retries or waits for a slot is never taken for a dead worker's."""
        ids: list[Any] = list(self.in_flight)
        if ids:
            await client.xclaim(
                self.queue_name, self.consumer_group_name, self.consumer_name, 0, ids, justid=True
            )


class JsonResultBackend(AsyncResultBackend[Any]):
    """Results as JSON under ``<prefix>taskiq:result:<id>``, each stored with a PUBLISH on its key's name
    (the API's notification, :mod:`scoring_bench.service.task_events`). Storing is retried while the store
    does not answer (~25 s at most, as the Celery engine's), so a task that ran while Redis restarted is not
    acknowledged without its result."""

    def __init__(self, settings: Settings, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.settings = settings
        self.sleep = sleep
        self.client: aioredis.Redis | None = None

    async def startup(self) -> None:
        if self.client is None:
            self.client = async_redis(self.settings, self.settings.queue_results_url)

    async def shutdown(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    def _client(self) -> aioredis.Redis:
        if self.client is None:
            raise RuntimeError("JsonResultBackend.startup() was not called")
        return self.client

    async def store(self, task_id: str, meta: bytes, success: bool = False) -> None:
        """SET with the results' expiry and PUBLISH, in one pipeline; retried with full-jitter backoff. A
        state other than SUCCESS is not stored over a stored SUCCESS (a duplicate run that failed), as
        Celery's backend guards it: one read more, for those states only."""
        key = result_key(self.settings, task_id)
        for attempt in range(RESULT_STORE_RETRIES + 1):
            try:
                stored = None if success else await self._client().get(key)
                if stored is not None and json.loads(stored).get("status") == "SUCCESS":
                    log.warning("task %s: a SUCCESS is stored; this run's state is not", task_id)
                    return
                pipe = self._client().pipeline(transaction=False)
                pipe.set(key, meta, ex=self.settings.queue_result_expires_s)
                pipe.publish(key, meta)
                await pipe.execute()
                return
            except RedisError as exc:
                if attempt == RESULT_STORE_RETRIES:
                    raise
                log.warning("task %s: result not stored (%r), trying again", task_id, exc)
                await self.sleep(random.random() * min(RESULT_STORE_MAX_SLEEP_MS, 10 * 2**attempt) / 1000.0)

    async def set_result(self, task_id: str, result: TaskiqResult[Any]) -> None:
        if str(result.labels.get(STORE_RESULT_LABEL, True)).lower() == "false":
            return
        await self.store(task_id, meta_of_result(task_id, result), success=not result.is_err)

    async def is_result_ready(self, task_id: str) -> bool:
        return bool(await self._client().exists(result_key(self.settings, task_id)))

    async def get_result(self, task_id: str, with_logs: bool = False) -> TaskiqResult[Any]:
        raw = await self._client().get(result_key(self.settings, task_id))
        if raw is None:
            raise KeyError(f"no result for task {task_id}")
        meta = decode_meta(raw)
        failed = isinstance(meta.get("result"), BaseException)
        return TaskiqResult(
            is_err=failed,
            return_value=None if failed else meta.get("result"),
            execution_time=0.0,
            error=meta["result"] if failed else None,
        )


async def beat(client: aioredis.Redis, settings: Settings, node: str, now: float | None = None) -> None:
    """A worker's heartbeat: its node's score is now; beats of workers gone for a minute are dropped."""
    now = time.time() if now is None else now
    key = workers_key(settings)
    pipe = client.pipeline(transaction=False)
    pipe.zadd(key, {node: now})
    pipe.zremrangebyscore(key, "-inf", now - HEARTBEAT_KEEP_S)
    pipe.expire(key, HEARTBEAT_KEEP_S)
    await pipe.execute()


def worker_alive(settings: Settings, node: str, timeout_s: float = 0.5) -> bool:
    """Whether the worker ``node`` beat within :data:`HEARTBEAT_ALIVE_S` (the supervisor's readiness
    check; blocking)."""
    client = redis.Redis.from_url(
        settings.queue_broker_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
    )
    try:
        score = client.zscore(workers_key(settings), node)
    except RedisError:
        return False
    finally:
        client.close()
    return score is not None and time.time() - float(score) <= HEARTBEAT_ALIVE_S


class TaskiqEngine:
    """The queue API's side of the taskiq engine: publish a task, the result store's keys and decoding,
    and the health of the broker and the workers."""

    errors = BROKER_ERRORS

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.broker = ScoringStreamBroker(settings)
        self.result_key_prefix = result_key_prefix(settings)
        self.broker_client = aioredis.Redis(connection_pool=self.broker.connection_pool)

    def result_key(self, task_id: str) -> str:
        return self.result_key_prefix + task_id

    @staticmethod
    def decode(raw: bytes) -> Mapping[str, Any]:
        return decode_meta(raw)

    async def publish(self, task_id: str, kwargs: dict[str, Any]) -> None:
        """XADD the task (taskiq's message: its name, id, kwargs). A broker that does not answer raises one
        of :data:`BROKER_ERRORS` within REDIS_TIMEOUT_S."""
        kicker: AsyncKicker[Any, Any] = AsyncKicker(SCORE_TASK, self.broker, {})
        try:
            await kicker.with_task_id(task_id).kiq(**kwargs)
        except Exception as exc:  # taskiq wraps what the broker raised in SendTaskError
            cause = exc.__cause__
            if isinstance(cause, BROKER_ERRORS):
                raise cause from None
            raise

    async def broker_and_workers(self) -> dict[str, str]:
        try:
            now = time.time()
            alive = await self.broker_client.zcount(
                workers_key(self.settings), now - HEARTBEAT_ALIVE_S, "+inf"
            )
        except BROKER_ERRORS as exc:
            return {"broker": health.down(repr(exc)), "workers": health.unknown("the broker is down")}
        workers = health.OK if alive else health.down(f"no worker beat within {HEARTBEAT_ALIVE_S:g} s")
        return {"broker": health.OK, "workers": workers}

    async def close(self) -> None:
        await self.broker_client.aclose()
        await self.broker.shutdown()
