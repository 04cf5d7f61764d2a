"""The open-loop generator: asyncio on uvloop, one aiohttp session, a connection limit.

Each rate of a sweep: the schedule (:func:`benchmark.openloop.schedule.arrival_offsets`) is fixed before
the first request; a dispatcher issues each request at its time as its own task, whatever the earlier
ones are doing; a request that finds every connection busy waits for one (that wait is part of its
corrected latency, as it would be for a real user behind a browser's connection limit). Every answer is
checked (:func:`benchmark.checks.check_score`; the queue: :class:`benchmark.queue_client.TaskRun`, submit
then long polls, one arrival being one task). The rate ends when every request has ended — answered, or
given up at the timeout — and its records are written (:mod:`benchmark.openloop.records`) before the
next rate starts.

The closed loop (the cross-check) is the same client driven by ``users`` loops, each sending its next
request when its previous answer is in.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import json
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from benchmark.checks import check_score
from benchmark.openloop.records import (
    CLOSED_CSV,
    CLOSED_JSON,
    COLUMNS,
    SWEEP_JSON,
    RequestRecord,
    csv_row,
    no_answer,
    rate_file,
)
from benchmark.openloop.schedule import Arrivals, arrival_offsets
from benchmark.queue_client import Call, QueueClientOptions, TaskOutcome, TaskRun
from scoring_bench.core.endpoints import EXAMPLE_FEATURES
from scoring_bench.core.tasks import READY_STATES

HEADERS = {"Content-Type": "application/json"}
BODY_COUNT = 512
WARMUP_REQUESTS = 3  # sequential, before a sweep or a closed loop: connections and pools warmed, not recorded
QUEUE_SLACK_S = 5.0  # beyond the task's own timeout and its last long poll, before the client gives up

clock = time.perf_counter


@dataclass(frozen=True)
class Target:
    """What to drive. ``url``: the predict URL (sync, async, batched) or the queue API's base URL (queue).
    ``timeout_s``: a request (a queue task) not done by then, counted from when it was issued, gets
    no answer."""

    arch: str
    url: str
    connections: int
    timeout_s: float = 30.0
    poll_wait_ms: int = 1000
    submit_wait_ms: int = 0  # queue: ?wait_ms= of the submit (0: answered 202 at once)

    @property
    def queue(self) -> bool:
        return self.arch == "queue"

    @property
    def limit_s(self) -> float:
        """How long a request may take, from issue to end, before the client gives up on it."""
        longest_wait_ms = max(self.poll_wait_ms, self.submit_wait_ms)
        return self.timeout_s + (longest_wait_ms / 1000 + QUEUE_SLACK_S if self.queue else 0.0)


@dataclass(frozen=True)
class Ended:
    """How one request ended (``clock()`` times)."""

    sent: float | None
    done: float
    ok: bool
    status: str
    task_id: str = ""  # queue: the id the submit was answered with


@dataclass
class _Sending:
    sent: float | None = None
    task_id: str = ""


def bodies(entities: int, n: int = BODY_COUNT) -> list[bytes]:
    """Scoring requests over the seeded entities (request i reads entity ``i % entities``)."""
    return [
        orjson.dumps({"entity_id": str(i % entities), "features": EXAMPLE_FEATURES})
        for i in range(min(n, entities))
    ]


def task_status(outcome: TaskOutcome) -> str:
    """A queue task's final status, or why no result came."""
    doc = outcome.doc
    if doc is not None and doc.get("status") in READY_STATES:
        return str(doc["status"])
    return no_answer(str(outcome.problem))


def error_status(error: BaseException) -> str:
    return no_answer(f"{type(error).__name__}: {error}")


class Client:
    """One aiohttp session behind ``target.connections`` connections: a request waits for a free one
    (an asyncio semaphore of the same size, so the wait is seen and timed), then is sent."""

    def __init__(self, target: Target, session: aiohttp.ClientSession) -> None:
        self.target = target
        self.session = session
        self.slots = asyncio.Semaphore(target.connections)
        self.options = QueueClientOptions(target.submit_wait_ms, target.poll_wait_ms, target.timeout_s)

    async def call(self, body: bytes) -> Ended:
        sending = _Sending()
        try:
            async with asyncio.timeout(self.target.limit_s):
                exchange = self._task if self.target.queue else self._score
                ok, status = await exchange(body, sending)
        except TimeoutError:
            ok, status = False, no_answer(f"not done within {self.target.limit_s:g} s")
        except Exception as error:  # anything else the transport raises: this request's, not the run's
            ok, status = False, error_status(error)
        return Ended(sending.sent, clock(), ok, status, sending.task_id)

    async def _score(self, body: bytes, sending: _Sending) -> tuple[bool, str]:
        try:
            status, content = await self._send("POST", self.target.url, body, sending)
        except aiohttp.ClientError as error:
            return False, error_status(error)
        return check_score(status, content) is None, str(status)

    async def _task(self, body: bytes, sending: _Sending) -> tuple[bool, str]:
        run = TaskRun(body, self.options)
        step: Call | TaskOutcome = run.first()
        while isinstance(step, Call):
            try:
                url = self.target.url + step.path
                status, content = await self._send(step.method, url, step.body, sending)
            except aiohttp.ClientError as error:
                step = run.failed(error)
            else:
                step = run.answer(status, content)
                sending.task_id = run.task_id or ""
        return step.ok, task_status(step)

    async def _send(self, method: str, url: str, body: bytes | None, sending: _Sending) -> tuple[int, bytes]:
        async with self.slots:
            if sending.sent is None:
                sending.sent = clock()
            async with self.session.request(
                method, url, data=body, headers=HEADERS if body is not None else None
            ) as response:
                return response.status, await response.read()


def session(target: Target) -> aiohttp.ClientSession:
    """The one session: as many keep-alive connections as the limit, no timeout of its own (the
    client's covers the wait for a connection too), no proxy."""
    connector = aiohttp.TCPConnector(limit=target.connections, keepalive_timeout=60)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))


def record(scheduled: float, issued: float, ended: Ended, start: float) -> RequestRecord:
    """A request's record, its times relative to ``start``."""
    return RequestRecord(
        scheduled_s=scheduled,
        issued_s=issued - start,
        sent_s=ended.sent - start if ended.sent is not None else None,
        done_s=ended.done - start,
        ok=ended.ok,
        status=ended.status,
        task_id=ended.task_id,
    )


@contextmanager
def no_gc_pauses() -> Iterator[None]:
    """The cyclic garbage collector off for the block, run before it. Its full collections stop the event
    loop for tens of ms once a rate holds tens of thousands of records and tasks: every request due then is
    sent late (measured: send-lag p99 17 ms at 3,000 req/s with it, 2.5 ms without). What a rate leaves
    for it is collected in the pause before the next."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def wait_until(t: float) -> None:
    """Sleep until ``clock()`` reaches ``t`` (never wake early: a timer may round its delay down)."""
    while (delay := t - clock()) > 0:
        await asyncio.sleep(delay)


async def run_rate(
    call: Callable[[bytes], Awaitable[Ended]], offsets: Sequence[float], payloads: Sequence[bytes]
) -> tuple[float, list[RequestRecord]]:
    """Issue one request at each offset (s since the start), each as its own task; wait for all of them.
    Returns the start (epoch s) and the records in schedule order."""
    start, epoch = clock(), time.time()

    async def one(i: int, offset: float) -> RequestRecord:
        issued = clock()
        return record(offset, issued, await call(payloads[i % len(payloads)]), start)

    tasks = []
    for i, offset in enumerate(offsets):
        await wait_until(start + offset)
        tasks.append(asyncio.create_task(one(i, offset)))
    return epoch, list(await asyncio.gather(*tasks))


async def run_closed(
    call: Callable[[bytes], Awaitable[Ended]], users: int, total_s: float, payloads: Sequence[bytes]
) -> tuple[float, list[RequestRecord]]:
    """``users`` loops, each sending its next request when its answer is in, until ``total_s`` passed.
    Returns the start (epoch s) and the records ordered by send time (scheduled = issued)."""
    start, epoch = clock(), time.time()

    async def user(u: int) -> list[RequestRecord]:
        records, i = [], u
        while (issued := clock()) < start + total_s:
            ended = await call(payloads[i % len(payloads)])
            records.append(record(issued - start, issued, ended, start))
            i += users
        return records

    per_user = await asyncio.gather(*(user(u) for u in range(users)))
    return epoch, sorted((r for records in per_user for r in records), key=lambda r: r.scheduled_s)


# --------------------------------------------------------------------------- the files (thin I/O)


def write_records(path: Path, records: Sequence[RequestRecord]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(csv_row(r) for r in records)


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


@dataclass(frozen=True)
class Sweep:
    """One sweep: every rate of one architecture, in order, ``pause_s`` between them."""

    rates_rps: Sequence[float]
    step_s: float
    arrivals: Arrivals = "poisson"
    seed: int = 0
    pause_s: float = 1.0
    rep: int = 0
    entities: int = 1


async def sweep(target: Target, plan: Sweep, folder: Path) -> None:
    """Run every rate of ``plan`` against ``target``; write ``folder``/sweep.json and a CSV per rate."""
    folder.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {
        "architecture": target.arch,
        "rep": plan.rep,
        "arrivals": plan.arrivals,
        "seed": plan.seed,
        "connections": target.connections,
        "url": target.url,
        "rates": [],
    }
    write_json(folder / SWEEP_JSON, index)
    payloads = bodies(plan.entities)
    async with session(target) as http:
        client = Client(target, http)
        for i in range(WARMUP_REQUESTS):
            await client.call(payloads[i % len(payloads)])
        for i, rate in enumerate(plan.rates_rps):
            if i:
                await asyncio.sleep(plan.pause_s)
            offsets = arrival_offsets(rate, plan.step_s, plan.arrivals, plan.seed)
            with no_gc_pauses():
                start, records = await run_rate(client.call, offsets, payloads)
            write_records(folder / rate_file(i), records)
            entry = {"offered_rps": rate, "duration_s": plan.step_s, "requests": len(offsets), "start": start}
            index["rates"].append({**entry, "file": rate_file(i)})
            write_json(folder / SWEEP_JSON, index)


async def closed_loop(
    target: Target, users: int, duration_s: float, warmup_s: float, entities: int, folder: Path
) -> None:
    """``users`` closed loops for ``warmup_s + duration_s``; write ``folder``/closed.json and closed.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    payloads = bodies(entities)
    async with session(target) as http:
        client = Client(target, http)
        for i in range(WARMUP_REQUESTS):
            await client.call(payloads[i % len(payloads)])
        with no_gc_pauses():
            start, records = await run_closed(client.call, users, warmup_s + duration_s, payloads)
    write_records(folder / CLOSED_CSV, records)
    info = {"architecture": target.arch, "users": users, "duration_s": duration_s, "warmup_s": warmup_s}
    write_json(folder / CLOSED_JSON, {**info, "start": start, "file": CLOSED_CSV, "url": target.url})
