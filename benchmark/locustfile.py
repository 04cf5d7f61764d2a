"""One locustfile for every architecture: pick the user class by name.

    locust -f benchmark/locustfile.py SyncScoringUser
    # or AsyncScoringUser, BatchedScoringUser, QueueScoringUser

Every response is checked (status 200 and a score in [0, 1]), not only counted. Every entry is
named after its architecture (:mod:`benchmark.entries`), so that several user classes in one Locust
(the web UI's default) keep apart in its statistics, charts and files: ``sync predict``,
``async predict``, ``batched predict``. The queue user submits a task (entry ``queue submit``),
polls it until it is done (``queue poll``, a long poll) and reports the time from submit to result
as a third entry, ``queue end_to_end`` (request type QUEUE); what it sends and how it judges the
answers is :mod:`benchmark.queue_client`, shared with the burst and timeit experiments.

Users are a closed loop (no wait between requests) until the target fails: after a connection
error or a 5xx a user waits a short, capped, jittered time (``--failure-backoff-max-s``,
:mod:`benchmark.backoff`) instead of spinning on a dead target, and resumes at once with the next
answer.

The stack's own settings (where each scoring handler listens, how many entities are seeded) are
read from the environment when Locust starts, as every process of the stack reads them. The
benchmark's knobs are Locust options (``locust -f benchmark/locustfile.py --help`` lists them under
"Custom arguments"), each with its default from :class:`benchmark.settings.BenchSettings`:
``--stages`` (a JSON list of ``{"users", "duration_s", "warmup_s"}``) drives a load shape, whose
steps are written to ``--schedule-json``; ``--requests-csv`` records every request (one file per
Locust process), so the report computes per-step statistics from raw data. A worker started without
it (by hand, on another machine) sends its records to its master instead, whose web UI serves them
with the schedule to the runner (:mod:`benchmark.locust_forwarding`, :mod:`benchmark.locust_remote`).
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import IO, Any, ClassVar

import orjson
from locust import FastHttpUser, LoadTestShape, events, task
from locust.env import Environment
from locust.runners import MasterRunner

from benchmark import locust_forwarding as forwarding
from benchmark import locust_ui as _comparison_tab  # noqa: F401 - the web UI's Comparison tab (no-op headless)
from benchmark.backoff import FailureBackoff
from benchmark.checks import check_score
from benchmark.entries import END_TO_END, PREDICT, entry_name
from benchmark.queue_client import Call, QueueClientOptions, TaskOutcome, TaskRun
from benchmark.settings import BenchSettings
from scoring_bench.core.endpoints import (
    ASYNC_PREDICT_PATH,
    BATCHED_PREDICT_PATH,
    EXAMPLE_FEATURES,
    SYNC_PREDICT_PATH,
)
from scoring_bench.core.settings import Settings

HEADERS = {"Content-Type": "application/json"}
BODY_COUNT = 512


def _default(field: str) -> Any:
    return BenchSettings.model_fields[field].default


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    """The benchmark's knobs as Locust options (also settable as LOCUST_<NAME> variables)."""
    parser.add_argument(
        "--queue-wait-ms",
        type=int,
        default=_default("bench_queue_wait_ms"),
        env_var="LOCUST_QUEUE_WAIT_MS",
        help="Queue user: ?wait_ms= of the submit.",
    )
    parser.add_argument(
        "--queue-poll-wait-ms",
        type=int,
        default=_default("bench_queue_poll_wait_ms"),
        env_var="LOCUST_QUEUE_POLL_WAIT_MS",
        help="Queue user: ?wait_ms= of each poll.",
    )
    parser.add_argument(
        "--queue-timeout-s",
        type=float,
        default=_default("bench_queue_timeout_s"),
        env_var="LOCUST_QUEUE_TIMEOUT_S",
        help="Queue user: a task not done by then fails.",
    )
    parser.add_argument(
        "--failure-backoff-max-s",
        type=float,
        default=_default("locust_failure_backoff_max_s"),
        env_var="LOCUST_FAILURE_BACKOFF_MAX_S",
        help="Longest wait of a user after consecutive connection errors or 5xx (0: none).",
    )
    parser.add_argument(
        "--stages",
        default="",
        env_var="LOCUST_STAGES",
        include_in_web_ui=False,
        help='Load shape: JSON list of {"users", "duration_s", "warmup_s"}.',
    )
    parser.add_argument(
        "--schedule-json", default="", include_in_web_ui=False, help="Write when each stage really ran here."
    )
    parser.add_argument(
        "--requests-csv",
        default="",
        include_in_web_ui=False,
        help="Record every request here ({pid}: one file per Locust process).",
    )
    parser.add_argument(
        "--phase",
        default="",
        env_var="LOCUST_PHASE",
        include_in_web_ui=False,
        help="Name of the phase (recorded in the schedule).",
    )
    parser.add_argument(
        "--architecture",
        default="",
        env_var="LOCUST_ARCHITECTURE",
        include_in_web_ui=False,
        help="Architecture driven (recorded in the schedule).",
    )


class _BackingOffUser(FastHttpUser):
    """Closed loop (each user sends its next request when the last one ends) while the target
    answers; after connection errors or 5xx, a wait of :class:`FailureBackoff`."""

    abstract = True
    arch = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # a worker gets the master's options with each spawn (the runner's, when it drives a master)
        options = self.environment.parsed_options
        self.backoff = FailureBackoff(
            getattr(options, "failure_backoff_max_s", _default("locust_failure_backoff_max_s"))
        )

    def wait_time(self) -> float:
        return self.backoff.wait_s()


class _ScoringUser(_BackingOffUser):
    abstract = True
    path = ""
    bodies: ClassVar[list[bytes]] = []

    @task
    def predict(self) -> None:
        body = self.bodies[random.randrange(len(self.bodies))]
        with self.client.post(
            self.path,
            data=body,  # type: ignore[arg-type]  # bytes are sent as they are
            headers=HEADERS,
            name=entry_name(self.arch, PREDICT),
            catch_response=True,
        ) as resp:
            self.backoff.record(resp.status_code)
            problem = check_score(resp.status_code, resp.content)
            if problem:
                resp.failure(problem)
            else:
                resp.success()


class SyncScoringUser(_ScoringUser):
    arch = "sync"
    path = SYNC_PREDICT_PATH


class AsyncScoringUser(_ScoringUser):
    arch = "async"
    path = ASYNC_PREDICT_PATH


class BatchedScoringUser(_ScoringUser):
    arch = "batched"
    path = BATCHED_PREDICT_PATH


class QueueScoringUser(_BackingOffUser):
    """Submit a task, poll it until it is done, report submit → result as ``queue end_to_end``."""

    arch = "queue"
    bodies: ClassVar[list[bytes]] = []
    options = QueueClientOptions(
        _default("bench_queue_wait_ms"),
        _default("bench_queue_poll_wait_ms"),
        _default("bench_queue_timeout_s"),
    )

    def on_start(self) -> None:
        # a worker gets the master's options with each spawn (the runner's, when it drives a master)
        self.options = _queue_options(self.environment.parsed_options, self.options)

    @task
    def predict(self) -> None:
        started = time.perf_counter()
        run = TaskRun(self.bodies[random.randrange(len(self.bodies))], self.options)
        step: Call | TaskOutcome = run.first()
        while isinstance(step, Call):
            step = self._send(run, step)
        self.environment.events.request.fire(
            request_type="QUEUE",
            name=entry_name(self.arch, END_TO_END),
            response_time=(time.perf_counter() - started) * 1000.0,
            response_length=0,
            exception=None if step.ok else RuntimeError(step.problem),
            context={},
        )

    def _send(self, run: TaskRun, call: Call) -> Call | TaskOutcome:
        with self.client.request(
            call.method,
            call.path,
            data=call.body,  # type: ignore[arg-type]  # bytes are sent as they are
            headers=HEADERS if call.body else None,
            name=entry_name(self.arch, call.name),
            catch_response=True,
        ) as resp:
            self.backoff.record(resp.status_code)
            step = run.answer(resp.status_code, resp.content)
            if run.last_problem:
                resp.failure(run.last_problem)
            else:
                resp.success()
        return step


@events.init.add_listener
def _configure(environment: Environment, **_: Any) -> None:
    """Aim each user class at its handler, with bodies naming seeded entities and the queue options."""
    settings = Settings()
    for user, name, port in (
        (SyncScoringUser, "scoring-sync", settings.scoring_sync_port),
        (AsyncScoringUser, "scoring-async", settings.scoring_async_port),
        (BatchedScoringUser, "scoring-batched", settings.scoring_batched_port),
        (QueueScoringUser, "scoring-queue", settings.scoring_queue_port),
    ):
        user.host = settings.service_base_url(name, port)
        user.bodies = _bodies(settings.num_entities)
    options = environment.parsed_options
    if options is not None:
        QueueScoringUser.options = _queue_options(options, QueueScoringUser.options)
        _open_records(environment, options.requests_csv)
    forwarding.install(environment, options.requests_csv if options is not None else "")


def _queue_options(options: Any, default: QueueClientOptions) -> QueueClientOptions:
    if options is None or not hasattr(options, "queue_wait_ms"):
        return default
    return QueueClientOptions(options.queue_wait_ms, options.queue_poll_wait_ms, options.queue_timeout_s)


def _bodies(num_entities: int) -> list[bytes]:
    return [
        orjson.dumps(
            {"entity_id": str(random.Random(i).randrange(num_entities)), "features": EXAMPLE_FEATURES}
        )
        for i in range(BODY_COUNT)
    ]


# --- raw per-request records -------------------------------------------------------------
_records: IO[str] | None = None


def _open_records(environment: Environment, target: str) -> None:
    global _records
    if target and not isinstance(environment.runner, MasterRunner):
        _records = open(target.replace("{pid}", str(os.getpid())), "w", buffering=1 << 16)  # noqa: SIM115 - closed on quitting
        _records.write("t,name,latency_ms,ok\n")


@events.request.add_listener
def _record(name: str, response_time: float, exception: Exception | None, **_: Any) -> None:
    if _records is not None:
        _records.write(f"{time.time():.6f},{name},{response_time:.3f},{0 if exception else 1}\n")
    elif forwarding.active:
        forwarding.add(time.time(), name, response_time, exception is None)


@events.quitting.add_listener
def _close_records(**_: Any) -> None:
    if _records is not None:
        _records.close()


# --- the load shape the benchmark drives ------------------------------------------------------


class StagesShape(LoadTestShape):
    """``--stages``: users per stage, held for ``duration_s``; writes when each stage really ran to
    ``--schedule-json``. Without stages, Locust's own ``--users``, ``--spawn-rate`` and
    ``--run-time`` (``use_common_options``)."""

    use_common_options = True

    def __init__(self) -> None:
        super().__init__()
        self.current = -1
        self.steps: list[dict[str, Any]] = []
        self.finished = False  # a master driven through its web API runs one shape after another

    def reset_time(self) -> None:
        """Locust calls this when a run starts (twice: before its first tick and after); a new run
        after a finished one starts a new schedule."""
        super().reset_time()
        if self.finished:
            self.current, self.steps, self.finished = -1, [], False

    def _options(self) -> Any:
        assert self.runner is not None
        return self.runner.environment.parsed_options

    def tick(self) -> tuple[int, float] | None:
        options = self._options()
        stages: list[dict[str, Any]] = json.loads(options.stages) if options.stages else []
        elapsed = self.get_run_time()
        if not stages:
            if options.run_time and elapsed >= options.run_time:
                return None
            return int(options.num_users or 1), float(options.spawn_rate or 1)
        ends, index = 0.0, None
        for i, stage in enumerate(stages):
            ends += stage["duration_s"]
            if elapsed < ends:
                index = i
                break
        if index != self.current:
            self._stage_changed(index, stages, options)
        if index is None:
            return None
        users = stages[index]["users"]
        previous = stages[index - 1]["users"] if index else 0
        # reach each step's users within about a second, going up or down
        return users, float(max(users, previous, 1))

    def _stage_changed(self, index: int | None, stages: list[dict[str, Any]], options: Any) -> None:
        now = time.time()
        if self.steps:
            self.steps[-1]["end"] = now
        self.finished = index is None
        if index is not None:
            stage = stages[index]
            self.steps.append(
                {"users": stage["users"], "start": now, "warmup_s": stage.get("warmup_s", 0.0), "end": None}
            )
            self.current = index
        if options.schedule_json:
            with open(options.schedule_json, "w") as f:
                json.dump(
                    {"phase": options.phase, "architecture": options.architecture, "steps": self.steps},
                    f,
                    indent=1,
                )
