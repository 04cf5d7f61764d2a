"""The queue's task states, read from the result backend's Redis without blocking.

Celery alone cannot tell an id it never saw from a task still waiting in the queue (both read as
PENDING), so the API records every id it issues (``SET <prefix>issued:<id> EX <result expiry>``)
in the result backend's Redis, beside the results. A status read is one MGET of the id's registry
key and its result key: a stored result gives its state (a result exists only for an id that was
issued, so it counts even if the registry key has expired); the registry key alone means PENDING;
neither means the id is unknown (never issued, or expired): 404.

The registry key also holds the task (its arguments) and when it was accepted, so that a task still PENDING
— no state stored at all — long after it was accepted can be published again when its status is read
(``republish``): a message the broker lost is not lost for good. kombu's Redis transport pops a message
(BRPOP), then records it as unacknowledged in a second round trip; a worker killed between the two takes
the message with it (celery/kombu#305; found by the faults experiment). The wait before publishing again is
longer than any legitimate wait for a first start (``Settings.queue_republish_after``), so what this can
cost is a task that runs twice — the at-least-once promise — never one that does not run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from scoring_bench.core.errors import ScoringError, error_body
from scoring_bench.core.tasks import ERROR_STATES, READY_STATES, task_document
from scoring_bench.service.task_events import TaskEvents

FIRST_POLL_S, MAX_POLL_S = 0.005, 0.05  # QUEUE_WAKEUP=poll: soon at first, then every 50 ms
NOTIFIED_CHECK_S = 1.0  # QUEUE_WAKEUP=notify: read the store again this often all the same
log = logging.getLogger("scoring_bench")
Republish = Callable[[str, dict[str, Any]], Awaitable[None]]


def error_of(exc: object) -> dict[str, Any]:
    """The error of a failed (or retrying) task, in every service's error format."""
    if isinstance(exc, ScoringError):
        return exc.body()
    if isinstance(exc, (SoftTimeLimitExceeded, TimeLimitExceeded)):
        return error_body("task_time_limit", f"the task ran out of time: {exc!r}")
    if isinstance(exc, BaseException):
        return error_body("task_failed", f"{type(exc).__name__}: {exc}")
    return error_body("task_failed", str(exc))


def document_of(task_id: str, status: str, result: Any = None) -> dict[str, Any]:
    """The task document of a state and what Celery stored with it (a value, or an exception)."""
    failed = status in ERROR_STATES or isinstance(result, BaseException)
    return task_document(task_id, status, result, error_of(result) if failed else None)


class AsyncRedis(Protocol):
    """The part of ``redis.asyncio.Redis`` the store uses (a fake in the unit tests)."""

    def set(self, name: str, value: str, ex: int) -> Awaitable[Any]: ...
    def delete(self, *names: str) -> Awaitable[Any]: ...
    def mget(self, keys: list[Any]) -> Awaitable[list[Any]]: ...


class TaskStore:
    """Issued ids and task states."""

    def __init__(
        self,
        client: AsyncRedis,
        key_prefix: str,
        expires_s: int,
        result_key: Callable[[str], Any],
        decode: Callable[[bytes], Mapping[str, Any]],
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        republish: Republish | None = None,
        republish_after_s: float = float("inf"),
        wall: Callable[[], float] = time.time,
        events: TaskEvents | None = None,
    ) -> None:
        self.client = client
        self.key_prefix = key_prefix
        self.expires_s = expires_s
        self.result_key = result_key  # the result backend's key of a task id
        self.decode = decode  # the result backend's decoder (exceptions rebuilt)
        self.sleep = sleep
        self.clock = clock
        self.republish = republish  # publishes a task again (its id, its arguments)
        self.republish_after_s = republish_after_s
        self.wall = wall  # when a task was accepted: wall-clock time, the same in every process
        self.events = events  # QUEUE_WAKEUP=notify: wakes a waiter when its task's result is stored

    def issued_key(self, task_id: str) -> str:
        return f"{self.key_prefix}issued:{task_id}"

    async def issue(self, task_id: str, task: Mapping[str, Any] | None = None) -> None:
        """Record the id (with the task's arguments, to publish it again if it is lost)."""
        await self.client.set(self.issued_key(task_id), self._record(task), ex=self.expires_s)

    def _record(self, task: Mapping[str, Any] | None) -> str:
        return "1" if task is None else json.dumps({"at": self.wall(), "task": dict(task)})

    async def forget(self, task_id: str) -> None:
        await self.client.delete(self.issued_key(task_id))

    async def document(self, task_id: str) -> dict[str, Any] | None:
        """The task's document, or None for an id that was never issued or has expired."""
        issued, stored = await self.client.mget([self.issued_key(task_id), self.result_key(task_id)])
        if stored is not None:
            meta = self.decode(stored)
            return document_of(task_id, str(meta["status"]), meta.get("result"))
        if issued is None:
            return None
        await self._republish_if_lost(task_id, issued)
        return task_document(task_id, "PENDING")

    async def _republish_if_lost(self, task_id: str, issued: bytes | str) -> None:
        """Publish a task again when it has been PENDING for ``republish_after_s`` since it was accepted (or
        last published); its record gets the new time first, so the next reads wait as long again."""
        if self.republish is None:
            return
        try:
            record = json.loads(issued)
            accepted, task = float(record["at"]), record["task"]
        except (ValueError, TypeError, KeyError):
            return  # an id recorded without its task
        if self.wall() - accepted < self.republish_after_s:
            return
        await self.client.set(self.issued_key(task_id), self._record(task), ex=self.expires_s)
        log.warning(
            "task %s still PENDING %.0f s after it was accepted: published again",
            task_id,
            self.wall() - accepted,
        )
        await self.republish(task_id, task)

    async def wait(self, task_id: str, wait_ms: int) -> dict[str, Any] | None:
        """The document once the task has finished, or as it is after ``wait_ms``: woken by the task's
        notification (``events``, when it listens), else by polling the store."""
        deadline = self.clock() + wait_ms / 1000.0
        if self.events is None:
            return await self._poll(task_id, deadline)
        while True:
            with self.events.watch(task_id) as notified:
                trusted = self.events.listening  # subscribed before this read: no result can slip by
                doc = await self.document(task_id)
                left = deadline - self.clock()
                if doc is None or doc["status"] in READY_STATES or left <= 0:
                    return doc
                if not trusted:
                    return await self._poll(task_id, deadline)
                try:
                    meta = await asyncio.wait_for(notified, min(left, NOTIFIED_CHECK_S))
                except TimeoutError:
                    continue
                if meta:
                    return document_of(task_id, str(meta["status"]), meta.get("result"))
                # woken without a result: the listener reconnected and may have missed it; read again

    async def _poll(self, task_id: str, deadline: float) -> dict[str, Any] | None:
        delay = FIRST_POLL_S
        while True:
            doc = await self.document(task_id)
            left = deadline - self.clock()
            if doc is None or doc["status"] in READY_STATES or left <= 0:
                return doc
            await self.sleep(min(delay, left))
            delay = min(delay * 2, MAX_POLL_S)
