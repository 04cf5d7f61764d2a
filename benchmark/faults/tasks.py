"""The task ledger's I/O (the decisions: :mod:`benchmark.faults.ledger`): the final state of every accepted
task from the queue API, polled until all have ended or the wait is over, and their runs as the worker
counted them in the result store.

Written into the fault run's folder: ``ledger.csv`` (``task_id``, ``status``, ``runs``: the attempt →
starts hash as JSON, empty when none was counted).
"""

from __future__ import annotations

import asyncio
import csv
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp
import orjson
import redis

from benchmark.faults.ledger import UNKNOWN, UNREACHABLE, ended, keep_waiting, parse_runs
from scoring_bench.core.endpoints import QUEUE_TASKS_PATH
from scoring_bench.core.settings import Settings
from scoring_bench.service.queue import runs_key

POLL_EVERY_S = 1.0
CONCURRENCY = 32
HTTP_TIMEOUT_S = 5.0
REDIS_BATCH = 500


async def _status(http: aiohttp.ClientSession, url: str, slots: asyncio.Semaphore) -> str:
    async with slots:
        try:
            async with http.get(url) as resp:
                if resp.status == 404:
                    return UNKNOWN
                if resp.status != 200:
                    return UNREACHABLE
                doc = orjson.loads(await resp.read())
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError):
            return UNREACHABLE
    return str(doc.get("status", UNREACHABLE)) if isinstance(doc, dict) else UNREACHABLE


async def _poll(base_url: str, ids: Sequence[str], deadline: float) -> dict[str, str]:
    final: dict[str, str] = {task_id: UNREACHABLE for task_id in ids}
    pending = list(ids)
    slots = asyncio.Semaphore(CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        last_progress = time.monotonic()
        while pending:
            states = await asyncio.gather(
                *(_status(http, f"{base_url}{QUEUE_TASKS_PATH}/{task_id}", slots) for task_id in pending)
            )
            final.update(zip(pending, states))
            still = [task_id for task_id, state in zip(pending, states) if not ended(state)]
            if len(still) < len(pending):
                last_progress = time.monotonic()
            pending = still
            if not pending or not keep_waiting(time.monotonic(), deadline, last_progress):
                break
            await asyncio.sleep(POLL_EVERY_S)
    return final


def final_states(base_url: str, ids: Sequence[str], wait_s: float) -> dict[str, str]:
    """Each task's status as the API answers it, polled until every task has ended (SUCCESS, FAILURE), or
    ``wait_s`` passed and no task ended lately (:func:`~benchmark.faults.ledger.keep_waiting`): the last
    status seen (:data:`~benchmark.faults.ledger.UNKNOWN` for a 404,
    :data:`~benchmark.faults.ledger.UNREACHABLE` when the API did not answer)."""
    return asyncio.run(_poll(base_url, ids, time.monotonic() + wait_s))


def counted_runs(settings: Settings, ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Each task's runs as the worker counted them (attempt → starts; empty: none counted)."""
    client = redis.Redis.from_url(settings.queue_results_url, socket_timeout=5, socket_connect_timeout=5)
    runs: dict[str, dict[str, int]] = {}
    try:
        for low in range(0, len(ids), REDIS_BATCH):
            batch = ids[low : low + REDIS_BATCH]
            pipe = client.pipeline(transaction=False)
            for task_id in batch:
                pipe.hgetall(runs_key(settings, task_id))
            runs.update({task_id: parse_runs(raw) for task_id, raw in zip(batch, pipe.execute())})
    finally:
        client.close()
    return runs


def write_ledger(
    path: Path, ids: Sequence[str], final: Mapping[str, str], runs: Mapping[str, Mapping[str, int]] | None
) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["task_id", "status", "runs"])
        for task_id in ids:
            counted = (runs or {}).get(task_id)
            writer.writerow(
                [task_id, final.get(task_id, UNREACHABLE), json.dumps(counted) if counted else ""]
            )
