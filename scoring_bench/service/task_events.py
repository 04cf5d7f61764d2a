"""Wake the requests that wait on a task the moment its result is stored (``QUEUE_WAKEUP=notify``).

Celery's Redis result backend PUBLISHes every state it stores on a channel named like the result's key
(``SETEX key`` + ``PUBLISH key`` in one pipeline). One pub/sub connection per API process PSUBSCRIBEs to
those channels; a message for a task somebody waits on resolves their futures with the stored meta. The
broker plays no part, so this works the same with RabbitMQ.

No lost wake-up: a waiter registers *before* it reads the store, and trusts the notifications only when
the subscription was confirmed before that read. A result stored before the read is seen by the read; one
stored after it is published to a subscription that already exists. While the pub/sub connection is down
(Redis restarting), :attr:`TaskEvents.listening` is false and waiters poll, as with ``QUEUE_WAKEUP=poll``;
a connection that drops wakes every waiter, so that none sleeps on a notification that will not come.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from scoring_bench.core.tasks import READY_STATES

log = logging.getLogger("scoring_bench")
GLOB_SPECIAL = "\\*?[]"
RECONNECT_S = 0.5  # after the pub/sub connection failed, try again this often


def channel_pattern(result_key_prefix: str) -> str:
    """The PSUBSCRIBE pattern of every task's result channel: the key prefix (glob characters escaped)
    then ``*``."""
    escaped = "".join("\\" + c if c in GLOB_SPECIAL else c for c in result_key_prefix)
    return escaped + "*"


Meta = Mapping[str, Any]


class TaskEvents:
    """The waiters of one process, and the pub/sub connection that wakes them (``client``: its own, closed
    with it; the subscription holds a connection for good)."""

    def __init__(
        self,
        client: aioredis.Redis,
        result_key_prefix: str,
        decode: Callable[[bytes], Meta],
        reconnect_s: float = RECONNECT_S,
    ) -> None:
        self.client = client
        self.prefix = result_key_prefix.encode()
        self.pattern = channel_pattern(result_key_prefix)
        self.decode = decode
        self.reconnect_s = reconnect_s
        self.waiters: dict[str, set[asyncio.Future[Meta]]] = {}
        self.listening = False  # the subscription is confirmed and its connection alive
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Subscribe and listen in the background (in the running loop), reconnecting for ever."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="task-events")

    async def close(self) -> None:
        """Stop listening and close the client (it is the listener's own)."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.client.aclose()

    @contextmanager
    def watch(self, task_id: str) -> Iterator[asyncio.Future[Meta]]:
        """A future resolved with the task's stored meta once it is ready (or with ``{}`` when the
        listener lost its connection: read the store again). Register before reading the store."""
        future: asyncio.Future[Meta] = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(task_id, set()).add(future)
        try:
            yield future
        finally:
            waiting = self.waiters.get(task_id)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self.waiters[task_id]

    def deliver(self, channel: bytes, data: bytes) -> None:
        """A message of the result channel ``channel``: resolve the waiters of its task if it is ready
        (the meta is decoded only when somebody waits)."""
        task_id = channel[len(self.prefix) :].decode() if channel.startswith(self.prefix) else ""
        waiting = self.waiters.get(task_id)
        if not waiting:
            return
        try:
            meta = self.decode(data)
        except Exception as exc:  # a foreign or corrupt message: the waiters read the store themselves
            log.warning("task %s: unreadable result message: %r", task_id, exc)
            meta = {}
        if meta and meta.get("status") not in READY_STATES:
            return
        for future in waiting:
            if not future.done():
                future.set_result(meta)

    def _wake_all(self) -> None:
        for waiting in self.waiters.values():
            for future in waiting:
                if not future.done():
                    future.set_result({})

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except (RedisError, OSError, RuntimeError) as exc:
                if self.listening:
                    log.warning("task notifications lost (%r): waiters poll until they are back", exc)
            finally:
                self.listening = False
                self._wake_all()
            await asyncio.sleep(self.reconnect_s)

    async def _listen(self) -> None:
        async with self.client.pubsub() as pubsub:
            await pubsub.psubscribe(self.pattern)
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is None:
                    continue
                if message["type"] == "psubscribe":
                    # Confirmed: every later PUBLISH reaches us. redis-py also subscribes again by itself
                    # after a reconnect: what was published in between is lost, so the waiters read again.
                    self.listening = True
                    self._wake_all()
                elif message["type"] == "pmessage":
                    self.deliver(message["channel"], message["data"])
