"""One locustfile for every architecture: pick the user class by name.

    locust -f benchmark/locustfile.py SyncScoringUser      # or AsyncScoringUser, QueueScoringUser

Every response is checked (status 200 and a score in [0, 1]), not only counted. The queue user
submits a task (entry ``submit``), polls it until it is done (entry ``poll``, a long poll) and
reports the time from submit to result as a third entry, ``end_to_end`` (request type QUEUE). When the
benchmark runs it, ``BENCH_STAGES`` (a JSON list of ``{"users", "duration_s"}``) drives a load
shape, and every request is also written to ``BENCH_REQUESTS_CSV`` (one file per Locust process)
so the report computes per-step statistics from raw data.
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any

import orjson
from locust import FastHttpUser, LoadTestShape, constant, events, task
from locust.runners import MasterRunner

from benchmark.checks import check_score, check_task_result, read_task
from scoring_bench.core.service_info import (
    ASYNC_PREDICT_PATH,
    EXAMPLE_FEATURES,
    QUEUE_PREDICT_PATH,
    QUEUE_TASKS_PATH,
    SYNC_PREDICT_PATH,
)
from scoring_bench.core.settings import Settings
from scoring_bench.service.task_status import READY_STATES

settings = Settings()
# The queue user's knobs (benchmark.settings.BenchSettings passes them on to Locust's environment).
SUBMIT_WAIT_MS = int(os.environ.get("BENCH_QUEUE_WAIT_MS", "0"))
POLL_WAIT_MS = int(os.environ.get("BENCH_QUEUE_POLL_WAIT_MS", "1000"))
TASK_TIMEOUT_S = float(os.environ.get("BENCH_QUEUE_TIMEOUT_S", "30"))
END_TO_END = "end_to_end"
BODIES = [
    orjson.dumps({"entity_id": str(random.Random(i).randrange(settings.num_entities)),
                  "features": EXAMPLE_FEATURES})
    for i in range(512)
]
HEADERS = {"Content-Type": "application/json"}


class _ScoringUser(FastHttpUser):
    abstract = True
    wait_time = constant(0)  # closed loop: each user sends its next request when the last one ends
    path = ""

    @task
    def predict(self) -> None:
        body = BODIES[random.randrange(len(BODIES))]
        with self.client.post(self.path, data=body, headers=HEADERS, name="predict",
                              catch_response=True) as resp:
            problem = check_score(resp.status_code, resp.content)
            if problem:
                resp.failure(problem)
            else:
                resp.success()


class SyncScoringUser(_ScoringUser):
    host = settings.base_url(settings.scoring_sync_port)
    path = SYNC_PREDICT_PATH


class AsyncScoringUser(_ScoringUser):
    host = settings.base_url(settings.scoring_async_port)
    path = ASYNC_PREDICT_PATH


class QueueScoringUser(FastHttpUser):
    """Submit a task, poll it until it is done, report submit → result as ``end_to_end``.

    Each poll is a long poll (``?wait_ms=``), so a user waits on the API instead of spinning; the
    submit's own ``?wait_ms=`` (default 0) makes it the wait-or-queue hybrid when set."""

    wait_time = constant(0)
    host = settings.base_url(settings.scoring_queue_port)

    @task
    def predict(self) -> None:
        body = BODIES[random.randrange(len(BODIES))]
        started = time.perf_counter()
        doc = self._call("submit", "POST", f"{QUEUE_PREDICT_PATH}?wait_ms={SUBMIT_WAIT_MS}", body)
        deadline = started + TASK_TIMEOUT_S
        while doc is not None and doc["status"] not in READY_STATES and time.perf_counter() < deadline:
            doc = self._call("poll", "GET", f"{QUEUE_TASKS_PATH}/{doc['task_id']}?wait_ms={POLL_WAIT_MS}")
        if doc is None:
            problem = "the task was lost: submit or poll failed"
        elif doc["status"] not in READY_STATES:
            problem = f"not done within {TASK_TIMEOUT_S:g} s (status {doc['status']})"
        else:
            problem = check_task_result(doc)
        self.environment.events.request.fire(
            request_type="QUEUE", name=END_TO_END, response_time=(time.perf_counter() - started) * 1000.0,
            response_length=0, exception=RuntimeError(problem) if problem else None, context={},
        )

    def _call(self, name: str, method: str, path: str, body: bytes | None = None) -> dict[str, Any] | None:
        with self.client.request(method, path, data=body, headers=HEADERS if body else None, name=name,
                                 catch_response=True) as resp:
            doc, problem = read_task(resp.status_code, resp.content)
            if problem:
                resp.failure(problem)
            else:
                resp.success()
        return doc


# --- raw per-request records -------------------------------------------------------------
_records: Any = None


@events.init.add_listener
def _open_records(environment: Any, **_: Any) -> None:
    global _records
    target = os.environ.get("BENCH_REQUESTS_CSV")
    if target and not isinstance(environment.runner, MasterRunner):
        _records = open(target.replace("{pid}", str(os.getpid())), "w", buffering=1 << 16)
        _records.write("t,name,latency_ms,ok\n")


@events.request.add_listener
def _record(name: str, response_time: float, exception: Exception | None, **_: Any) -> None:
    if _records is not None:
        _records.write(f"{time.time():.6f},{name},{response_time:.3f},{0 if exception else 1}\n")


@events.quitting.add_listener
def _close_records(**_: Any) -> None:
    if _records is not None:
        _records.close()


# --- the load shape the benchmark drives ------------------------------------------------------
if os.environ.get("BENCH_STAGES"):

    class StagesShape(LoadTestShape):
        """Users per stage, held for ``duration_s``; writes when each stage really ran."""

        stages: list[dict[str, Any]] = json.loads(os.environ["BENCH_STAGES"])
        schedule_path = os.environ.get("BENCH_SCHEDULE_JSON")

        def __init__(self) -> None:
            super().__init__()
            self.current = -1
            self.steps: list[dict[str, Any]] = []

        def tick(self) -> tuple[int, float] | None:
            elapsed = self.get_run_time()
            ends, index = 0.0, None
            for i, stage in enumerate(self.stages):
                ends += stage["duration_s"]
                if elapsed < ends:
                    index = i
                    break
            now = time.time()
            if index != self.current:
                if self.steps:
                    self.steps[-1]["end"] = now
                if index is not None:
                    stage = self.stages[index]
                    self.steps.append({"users": stage["users"], "start": now,
                                       "warmup_s": stage.get("warmup_s", 0.0), "end": None})
                self.current = index if index is not None else self.current
                self._save()
            if index is None:
                return None
            users = self.stages[index]["users"]
            previous = self.stages[index - 1]["users"] if index else 0
            # reach each step's users within about a second, going up or down
            return users, float(max(users, previous, 1))

        def _save(self) -> None:
            if self.schedule_path:
                with open(self.schedule_path, "w") as f:
                    json.dump({"phase": os.environ.get("BENCH_PHASE", ""),
                               "architecture": os.environ.get("BENCH_ARCHITECTURE", ""),
                               "steps": self.steps}, f, indent=1)
