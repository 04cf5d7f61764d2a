"""The queue's task states, read from the result backend's Redis without blocking.

Celery alone cannot tell an id it never saw from a task still waiting in the queue (both read as
PENDING), so the API records every id it issues (``SET <prefix>issued:<id> EX <result expiry>``)
in the result backend's Redis, beside the results. A status read is one MGET of the id's registry
key and its result key: a stored result gives its state (a result exists only for an id that was
issued, so it counts even if the registry key has expired); the registry key alone means PENDING;
neither means the id is unknown (never issued, or expired): 404.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from scoring_bench.core.errors import ScoringError, error_body
from scoring_bench.core.tasks import ERROR_STATES, READY_STATES, task_document

FIRST_POLL_S, MAX_POLL_S = 0.005, 0.05  # wait_ms polls the result: soon at first, then every 50 ms


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
    ) -> None:
        self.client = client
        self.key_prefix = key_prefix
        self.expires_s = expires_s
        self.result_key = result_key  # the result backend's key of a task id
        self.decode = decode  # the result backend's decoder (exceptions rebuilt)
        self.sleep = sleep
        self.clock = clock

    def issued_key(self, task_id: str) -> str:
        return f"{self.key_prefix}issued:{task_id}"

    async def issue(self, task_id: str) -> None:
        await self.client.set(self.issued_key(task_id), "1", ex=self.expires_s)

    async def forget(self, task_id: str) -> None:
        await self.client.delete(self.issued_key(task_id))

    async def document(self, task_id: str) -> dict[str, Any] | None:
        """The task's document, or None for an id that was never issued or has expired."""
        issued, stored = await self.client.mget([self.issued_key(task_id), self.result_key(task_id)])
        if stored is not None:
            meta = self.decode(stored)
            return document_of(task_id, str(meta["status"]), meta.get("result"))
        return task_document(task_id, "PENDING") if issued is not None else None

    async def wait(self, task_id: str, wait_ms: int) -> dict[str, Any] | None:
        """The document once the task has finished, or as it is after ``wait_ms``."""
        deadline = self.clock() + wait_ms / 1000.0
        delay = FIRST_POLL_S
        while True:
            doc = await self.document(task_id)
            left = deadline - self.clock()
            if doc is None or doc["status"] in READY_STATES or left <= 0:
                return doc
            await self.sleep(min(delay, left))
            delay = min(delay * 2, MAX_POLL_S)
