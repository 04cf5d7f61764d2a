"""The seed's timeit experiment: N sequential requests per architecture from one client.

Raw client-side times go to ``timeit/<arch>.csv`` with each answer's ``Server-Timing`` header,
so the report can split a request's time into feature store, models and the rest.

The queue: each request is a submit with ``?wait_ms=`` (``QUEUE_MAX_WAIT_MS``: the API holds the
answer until the task is done), long-polled further if it was not; the time recorded is submit →
result, and the task's ``timings`` (the worker's steps) stand in for the Server-Timing header.
"""

from __future__ import annotations

import csv
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import requests

from benchmark.queue_client import Call, QueueClientOptions, TaskOutcome, TaskRun
from scoring_bench.core.endpoints import EXAMPLE_FEATURES
from scoring_bench.core.settings import Settings
from scoring_bench.stack.servers import service

WARMUP_REQUESTS = 5  # open the connection and warm the server's pools; not recorded
REQUEST_TIMEOUT_S = 30.0  # one request to a sync or async handler (its model calls time out long before)
JSON_HEADERS = {"Content-Type": "application/json"}
FAILED_TASK = 500  # the status written for a queue task that failed or answered no valid score


def scoring_url(settings: Settings, arch: str) -> str:
    return service(f"scoring-{arch}").predict_url(settings)


def run_timeit(
    settings: Settings,
    arch: str,
    n: int,
    out_dir: Path,
    tick: Callable[[int], None] = lambda _: None,
    queue_timeout_s: float | None = None,
    queue_options: QueueClientOptions | None = None,
) -> Path:
    """``n`` sequential requests over one keep-alive connection; returns the CSV path.
    ``queue_timeout_s`` (the queue only, ``BENCH_QUEUE_TIMEOUT_S``): how long one task may take;
    ``queue_options``: how the queue's client waits (default: the submit and each poll wait up to
    ``QUEUE_MAX_WAIT_MS``)."""
    url = scoring_url(settings, arch)
    session = requests.Session()
    session.trust_env = False
    body = {"entity_id": "1", "features": EXAMPLE_FEATURES}
    if arch == "queue":
        if queue_options is not None:
            options = queue_options
        elif queue_timeout_s is None:
            raise ValueError("timeit of the queue needs queue_timeout_s (BENCH_QUEUE_TIMEOUT_S)")
        else:
            options = QueueClientOptions(
                settings.queue_max_wait_ms, settings.queue_max_wait_ms, queue_timeout_s
            )
        base = service("scoring-queue").url(settings)
        call = lambda: _queue_call(session, base, orjson.dumps(body), options)  # noqa: E731
    else:
        call = lambda: _call(session, url, body)  # noqa: E731
    for _ in range(WARMUP_REQUESTS):
        call()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{arch}.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["i", "latency_ms", "status", "server_timing"])
        for i in range(n):
            started = timeit.default_timer()
            status, timing = call()
            elapsed_ms = (timeit.default_timer() - started) * 1000.0
            writer.writerow([i, f"{elapsed_ms:.3f}", status, timing])
            tick(i + 1)
    session.close()
    return path


def _call(session: requests.Session, url: str, body: dict[str, Any]) -> tuple[int, str]:
    resp = session.post(url, json=body, timeout=REQUEST_TIMEOUT_S)
    return resp.status_code, resp.headers.get("Server-Timing", "")


def _queue_call(
    session: requests.Session, base: str, body: bytes, options: QueueClientOptions
) -> tuple[int, str]:
    """Submit and wait (then long-poll) until the task is done: (200 or FAILED_TASK, its timings).
    Each request's own timeout covers its long poll."""
    run = TaskRun(body, options)
    step: Call | TaskOutcome = run.first()
    while isinstance(step, Call):
        resp = session.request(
            step.method, base + step.path, data=step.body, headers=JSON_HEADERS, timeout=options.timeout_s
        )
        step = run.answer(resp.status_code, resp.content)
    if step.doc is None:
        return resp.status_code, ""
    if not step.ok:
        return FAILED_TASK, ""
    return 200, server_timing(step.doc["result"].get("timings"))


def server_timing(timings: Any) -> str:
    """A task's ``timings`` (ms per step) as a Server-Timing header, as the other handlers send it."""
    if not isinstance(timings, dict):
        return ""
    return ", ".join(
        f"{name};dur={value:.3f}"
        for name, value in timings.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    )
