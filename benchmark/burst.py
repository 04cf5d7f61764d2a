"""Seed 000's scenario: N requests arrive at once. The queue takes them as tasks and its workers drain
them; the sync, async and batching handlers must answer all N over N open connections.

For each worker concurrency (``BENCH_BURST_CONCURRENCIES``) the stack is started with
``QUEUE_WORKER_CONCURRENCY`` set to it; ``BENCH_BURST_TASKS`` tasks are submitted at once (one
connection each, asyncio + aiohttp), then each is long-polled until its result is there. Meanwhile the
broker's queue depth and the processes' CPU are sampled. On the first stack the same N requests go at
once to the direct handlers (sync, async, batched: those asked for), for comparison.
``BENCH_BURST_SIZES``: more burst sizes, each measured the same way after the main one (their files are
named ``_n<size>``), so the report can say at which size the queue beats the direct handlers, if it does.

Raw files, in ``burst/``: ``runs.json`` (the index, rewritten after each burst), one CSV per burst
(``queue_c<concurrency>.csv``, ``sync.csv``, ``async.csv``, ``batched.csv``: ``i``, ``submitted_s``,
``accepted_s``, ``done_s`` — seconds since the burst started — ``latency_ms`` (submit → result),
``status``, ``ok``),
and for the queue ``queue_c<concurrency>_depth.csv`` and ``resources_c<concurrency>.csv``.
"""

from __future__ import annotations

import asyncio
import csv
import json
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from benchmark.checks import check_score
from benchmark.queue_client import Call, QueueClientOptions, TaskOutcome, TaskRun
from benchmark.queue_depth import QueueDepthSampler
from benchmark.sampler import ResourceSampler
from benchmark.settings import BenchSettings
from scoring_bench.core.endpoints import EXAMPLE_FEATURES
from scoring_bench.core.settings import Settings
from scoring_bench.stack.servers import service
from scoring_bench.stack.supervisor import running_stack

COLUMNS = ["i", "submitted_s", "accepted_s", "done_s", "latency_ms", "status", "ok"]
WARMUP_TASKS = 3  # sequential, before each burst: connections, pools and the worker warmed, not recorded
DEPTH_INTERVAL_S = 0.05  # a burst drains in about a second: sample often
CPU_INTERVAL_S = 0.2
HEADERS = {"Content-Type": "application/json"}


@dataclass
class Outcome:
    i: int
    submitted_s: float
    accepted_s: float | None = None
    done_s: float | None = None
    latency_ms: float | None = None
    status: str = ""
    ok: int = 0


def bodies(settings: Settings, n: int) -> list[bytes]:
    return [
        orjson.dumps({"entity_id": str(i % settings.num_entities), "features": EXAMPLE_FEATURES})
        for i in range(n)
    ]


async def _queue_task(
    http: aiohttp.ClientSession, base: str, body: bytes, i: int, start: float, options: QueueClientOptions
) -> Outcome:
    """Submit one task, then long-poll it until it is done (or ``options.timeout_s`` passed)."""
    out = Outcome(i, time.time() - start)
    run = TaskRun(body, options)
    step: Call | TaskOutcome = run.first()
    while isinstance(step, Call):
        try:
            async with http.request(
                step.method, base + step.path, data=step.body, headers=HEADERS if step.body else None
            ) as resp:
                step = run.answer(resp.status, await resp.read())
            if out.accepted_s is None:  # the submit's answer
                out.accepted_s = time.time() - start
        except (TimeoutError, aiohttp.ClientError) as exc:
            step = run.failed(exc)
    out.status = str(step.doc["status"]) if step.doc else str(run.last_problem)[:40]
    return _finish(out, start, step.problem)


async def _request(http: aiohttp.ClientSession, url: str, body: bytes, i: int, start: float) -> Outcome:
    """One request to a sync or async scoring handler: its answer is the result."""
    out = Outcome(i, time.time() - start)
    try:
        async with http.post(url, data=body, headers=HEADERS) as resp:
            problem = check_score(resp.status, await resp.read())
            out.status = str(resp.status)
    except (TimeoutError, aiohttp.ClientError) as exc:
        problem, out.status = str(exc), type(exc).__name__
    out.accepted_s = time.time() - start
    return _finish(out, start, problem)


def _finish(out: Outcome, start: float, problem: str | None) -> Outcome:
    out.done_s = time.time() - start
    out.latency_ms = (out.done_s - out.submitted_s) * 1000.0
    out.ok = 0 if problem else 1
    return out


async def _burst(
    make: Callable[[aiohttp.ClientSession, int, float], Any], n: int, timeout_s: float
) -> tuple[float, list[Outcome]]:
    """``n`` calls at once, one connection each; returns the start (epoch s) and the outcomes."""
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=timeout_s + 10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        for i in range(WARMUP_TASKS):
            await make(http, i, time.time())
        start = time.time()
        outcomes = await asyncio.gather(*(make(http, i, start) for i in range(n)))
    return start, list(outcomes)


def _write(path: Path, outcomes: list[Outcome]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for out in outcomes:
            writer.writerow(
                ["" if v is None else (f"{v:.6f}" if isinstance(v, float) else v) for v in astuple(out)]
            )


class BurstIndex:
    """``burst/runs.json``, rewritten after each burst so an interrupted run keeps what it measured."""

    def __init__(self, folder: Path, tasks: int) -> None:
        self.path = folder / "runs.json"
        self.data: dict[str, Any] = {"tasks": tasks, "runs": []}
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, entry: dict[str, Any]) -> None:
        self.data["runs"].append(entry)
        self.path.write_text(json.dumps(self.data, indent=1))


def _suffix(bench: BenchSettings, tasks: int) -> str:
    """The file-name suffix of a burst of ``tasks``: none for the main size (BENCH_BURST_TASKS)."""
    return "" if tasks == bench.bench_burst_tasks else f"_n{tasks}"


def burst_sizes(bench: BenchSettings) -> list[int]:
    """The main burst size, then the others of BENCH_BURST_SIZES."""
    return list(dict.fromkeys([bench.bench_burst_tasks, *bench.bench_burst_sizes]))


def burst_queue(
    bench: BenchSettings,
    stack: Settings,
    targets: dict[str, list[int]],
    folder: Path,
    index: BurstIndex,
    tasks: int | None = None,
) -> None:
    concurrency = stack.queue_worker_concurrency
    base = service("scoring-queue").url(stack)
    tasks = tasks or bench.bench_burst_tasks
    payloads = bodies(stack, tasks)
    name = f"queue_c{concurrency}{_suffix(bench, tasks)}"

    options = QueueClientOptions(0, bench.bench_queue_poll_wait_ms, bench.bench_queue_timeout_s)

    def make(http: aiohttp.ClientSession, i: int, start: float) -> Any:
        return _queue_task(http, base, payloads[i % len(payloads)], i, start, options)

    resources = f"resources_c{concurrency}{_suffix(bench, tasks)}.csv"
    with (
        QueueDepthSampler(folder / f"{name}_depth.csv", stack, DEPTH_INTERVAL_S),
        ResourceSampler(folder / resources, lambda: targets, CPU_INTERVAL_S),
    ):
        start, outcomes = asyncio.run(_burst(make, tasks, bench.bench_queue_timeout_s))
    _write(folder / f"{name}.csv", outcomes)
    index.add(
        {
            "architecture": "queue",
            "concurrency": concurrency,
            "tasks": tasks,
            "start": start,
            "file": f"{name}.csv",
            "depth_file": f"{name}_depth.csv",
            "resources_file": resources,
        }
    )


def burst_handler(
    bench: BenchSettings,
    stack: Settings,
    arch: str,
    folder: Path,
    index: BurstIndex,
    tasks: int | None = None,
) -> None:
    url = service(f"scoring-{arch}").predict_url(stack)
    tasks = tasks or bench.bench_burst_tasks
    payloads = bodies(stack, tasks)

    def make(http: aiohttp.ClientSession, i: int, start: float) -> Any:
        return _request(http, url, payloads[i % len(payloads)], i, start)

    start, outcomes = asyncio.run(_burst(make, tasks, bench.bench_queue_timeout_s))
    name = f"{arch}{_suffix(bench, tasks)}.csv"
    _write(folder / name, outcomes)
    index.add({"architecture": arch, "concurrency": None, "tasks": tasks, "start": start, "file": name})


def planned_bursts(bench: BenchSettings) -> int:
    handlers = [arch for arch in bench.architectures if arch != "queue"]
    return (len(bench.bench_burst_concurrencies) + len(handlers)) * len(burst_sizes(bench))


def run_burst(
    bench: BenchSettings,
    run_dir: Path,
    tick: Callable[[], None] = lambda: None,
    say: Callable[[str], None] = lambda _: None,
) -> Path:
    """Every burst: the queue at each worker concurrency (a stack each), the direct handlers on the first;
    each burst size in turn."""
    folder = run_dir / "burst"
    index = BurstIndex(folder, bench.bench_burst_tasks)
    for position, concurrency in enumerate(bench.bench_burst_concurrencies):
        stack = bench.stack_settings().model_copy(update={"queue_worker_concurrency": concurrency})
        with running_stack(stack, say) as state:
            targets = {p.name: [p.pid] for p in state.processes}
            for tasks in burst_sizes(bench):
                burst_queue(bench, stack, targets, folder, index, tasks)
                tick()
                if position == 0:
                    for arch in (a for a in bench.architectures if a != "queue"):
                        burst_handler(bench, stack, arch, folder, index, tasks)
                        tick()
    return folder
