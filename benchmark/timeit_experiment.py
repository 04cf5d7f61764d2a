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

import requests

from benchmark.checks import check_task_result, read_task
from scoring_bench.stack.servers import service
from scoring_bench.core.service_info import EXAMPLE_FEATURES, QUEUE_TASKS_PATH
from scoring_bench.core.settings import Settings
from scoring_bench.service.task_status import READY_STATES

WARMUP_REQUESTS = 5  # open the connection and warm the server's pools; not recorded
QUEUE_TIMEOUT_S = 30.0
FAILED_TASK = 500  # the status written for a queue task that failed or answered no valid score


def scoring_url(settings: Settings, arch: str) -> str:
    svc = service(f"scoring-{arch}")
    return svc.url(settings, svc.predict_path)


def run_timeit(settings: Settings, arch: str, n: int, out_dir: Path,
               tick: Callable[[int], None] = lambda _: None) -> Path:
    """``n`` sequential requests over one keep-alive connection; returns the CSV path."""
    url = scoring_url(settings, arch)
    session = requests.Session()
    session.trust_env = False
    body = {"entity_id": "1", "features": EXAMPLE_FEATURES}
    call = (lambda: _queue_call(session, settings, url, body)) if arch == "queue" else (
        lambda: _call(session, url, body))
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
    resp = session.post(url, json=body, timeout=30)
    return resp.status_code, resp.headers.get("Server-Timing", "")


def _queue_call(session: requests.Session, settings: Settings, url: str,
                body: dict[str, Any]) -> tuple[int, str]:
    """Submit and wait (then long-poll) until the task is done: (200 or FAILED_TASK, its timings)."""
    wait_ms = settings.queue_max_wait_ms
    resp = session.post(f"{url}?wait_ms={wait_ms}", json=body, timeout=QUEUE_TIMEOUT_S)
    doc, _ = read_task(resp.status_code, resp.content)
    deadline = timeit.default_timer() + QUEUE_TIMEOUT_S
    while doc is not None and doc["status"] not in READY_STATES and timeit.default_timer() < deadline:
        resp = session.get(f"{service('scoring-queue').url(settings, QUEUE_TASKS_PATH)}/{doc['task_id']}",
                           params={"wait_ms": wait_ms}, timeout=QUEUE_TIMEOUT_S)
        doc, _ = read_task(resp.status_code, resp.content)
    if doc is None:
        return resp.status_code, ""
    if doc["status"] not in READY_STATES or check_task_result(doc):
        return FAILED_TASK, ""
    return 200, server_timing(doc["result"].get("timings"))


def server_timing(timings: Any) -> str:
    """A task's ``timings`` (ms per step) as a Server-Timing header, as the other handlers send it."""
    if not isinstance(timings, dict):
        return ""
    return ", ".join(f"{name};dur={value:.3f}" for name, value in timings.items()
                     if isinstance(value, (int, float)) and not isinstance(value, bool))
