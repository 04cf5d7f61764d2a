"""A micro-batcher: concurrent submissions collected per key (a model) into one call.

What the batching scoring handler (api_scoring_batched/, doc/batching.md) waits with, as Triton's
dynamic batcher, Ray Serve's ``@serve.batch`` and BentoML's adaptive batching do it, kept plain:

- items submitted for one key are sent together in one ``call(key, items)``, at most ``max_size`` of
  them: a batch is sent the moment it is full, or when its oldest item has waited ``max_wait_s``
  (0: what was submitted in the same turn of the event loop), so no item waits longer than that for a
  batch to fill;
- each caller gets its own item's result, its wait (from its submit to its batch's send), the size of
  the batch and the duration of the call;
- a call that raises fails exactly the callers of that batch; the next batch starts afresh; a key's
  batches do not wait for each other (a full batch is sent while the previous one is still in flight);
- a caller cancelled (its client went away) leaves the batch: before the send its item is dropped
  (an empty batch is not sent), after it the others still get their results. The call runs in a task
  of its own, never in a caller's, so no caller's cancellation cancels it.

One batcher per event loop; nothing here is thread-safe, and nothing needs to be.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Batched(Generic[R]):
    """One caller's answer: its item's result and how it got it."""

    value: R
    wait_ms: float  # from the submit to the send of its batch
    size: int  # items in the call it rode in
    call_ms: float  # the call's duration


@dataclass(eq=False)  # compared by identity: two callers may submit equal items
class _Pending(Generic[T, R]):
    item: T
    future: asyncio.Future[Batched[R]]
    submitted: float


@dataclass
class _Queue(Generic[T, R]):
    """One key's items not yet sent, and the timer that sends them."""

    items: list[_Pending[T, R]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class BatchCallError(RuntimeError):
    """The call answered a number of results other than its number of items."""


class MicroBatcher(Generic[K, T, R]):
    """``await submit(key, item)`` → :class:`Batched`: see the module's docstring."""

    def __init__(
        self,
        call: Callable[[K, list[T]], Awaitable[Sequence[R]]],
        max_size: int,
        max_wait_s: float,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if max_size < 1 or max_wait_s < 0:
            raise ValueError("max_size must be >= 1 and max_wait_s >= 0")
        self.call = call
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self.clock = clock
        self.queues: dict[K, _Queue[T, R]] = {}
        self.running: set[asyncio.Task[None]] = set()  # the calls in flight (a reference keeps each alive)
        self.closed = False

    async def submit(self, key: K, item: T) -> Batched[R]:
        if self.closed:
            raise RuntimeError("the batcher is closed")
        loop = asyncio.get_running_loop()
        queue = self.queues.setdefault(key, _Queue())
        pending: _Pending[T, R] = _Pending(item, loop.create_future(), self.clock())
        queue.items.append(pending)
        if len(queue.items) >= self.max_size:
            self._send(key)
        elif queue.timer is None:
            queue.timer = loop.call_later(self.max_wait_s, self._send, key)
        try:
            return await pending.future
        except asyncio.CancelledError:
            self._leave(key, pending)
            raise

    def _leave(self, key: K, pending: _Pending[T, R]) -> None:
        """A cancelled caller's item, still unsent, leaves its batch (the last one: no batch, no timer)."""
        queue = self.queues.get(key)
        if queue is None or pending not in queue.items:
            return  # already sent: the call goes on for the others, and its result for this one is dropped
        queue.items.remove(pending)
        if not queue.items and queue.timer is not None:
            queue.timer.cancel()
            queue.timer = None

    def _send(self, key: K) -> None:
        """Take the key's pending items (up to max_size) and start their call in a task of its own."""
        queue = self.queues.get(key)
        if queue is None:
            return
        if queue.timer is not None:
            queue.timer.cancel()
            queue.timer = None
        batch = [p for p in queue.items[: self.max_size] if not p.future.done()]
        del queue.items[: self.max_size]
        if queue.items:  # more than a batch was pending (cannot happen by submit; kept safe): the rest waits
            queue.timer = asyncio.get_running_loop().call_later(self.max_wait_s, self._send, key)
        if not batch:
            return
        task = asyncio.get_running_loop().create_task(self._run(key, batch))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def _run(self, key: K, batch: list[_Pending[T, R]]) -> None:
        sent = self.clock()
        try:
            results = await self.call(key, [p.item for p in batch])
            if len(results) != len(batch):
                raise BatchCallError(f"the call answered {len(results)} results for {len(batch)} items")
        except BaseException as exc:  # every caller of this batch gets it, and only they
            for p in batch:
                if p.future.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    p.future.cancel()
                else:
                    p.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise  # CancelledError (the batcher closed), KeyboardInterrupt: not swallowed
            return
        call_ms = (self.clock() - sent) * 1000.0
        for p, value in zip(batch, results):
            if not p.future.done():  # a cancelled caller's result is dropped
                p.future.set_result(Batched(value, (sent - p.submitted) * 1000.0, len(batch), call_ms))

    async def aclose(self) -> None:
        """Send what is pending, wait for every call in flight; later submits are refused."""
        self.closed = True
        for key in list(self.queues):
            while self.queues[key].items:
                self._send(key)
        if self.running:
            await asyncio.gather(*self.running, return_exceptions=True)
