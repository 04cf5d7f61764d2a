"""One locustfile for every architecture: pick the user class by name.

    locust -f benchmark/locustfile.py SyncScoringUser      # or AsyncScoringUser

Every response is checked (status 200 and a score in [0, 1]), not only counted. When the
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

from scoring_bench.service_info import ASYNC_PREDICT_PATH, EXAMPLE_FEATURES, SYNC_PREDICT_PATH
from scoring_bench.settings import Settings

settings = Settings()
BODIES = [
    orjson.dumps({"entity_id": str(random.Random(i).randrange(settings.num_entities)),
                  "features": EXAMPLE_FEATURES})
    for i in range(512)
]
HEADERS = {"Content-Type": "application/json"}


def check_score(status: int, content: bytes | None) -> str | None:
    """What is wrong with a scoring answer, or None when it is a valid score."""
    if status != 200:
        return f"HTTP {status}: {(content or b'')[:120]!r}"
    try:
        detail = orjson.loads(content or b"")["detail"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return f"not a scoring answer: {(content or b'')[:120]!r}"
    if isinstance(detail, bool) or not isinstance(detail, float) or not 0.0 <= detail <= 1.0:
        return f"detail is not a score in [0, 1]: {detail!r}"
    return None


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
