"""The queue's client, without I/O: submit one task, long-poll it until it is done, judge the result.

Locust's queue user, the burst and the timeit experiment each talk HTTP with their own library
(geventhttpclient, aiohttp, requests); what they send and how they judge the answers is decided
here, once (the h11 way: the decisions in plain code, the I/O a thin loop around them)::

    run = TaskRun(body, options)
    call = run.first()
    while isinstance(call, Call):
        status, content = <send call.method call.path call.body>
        call = run.answer(status, content)
    outcome = call          # TaskOutcome: the task's document, and what is wrong (None: a valid score)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from benchmark.checks import check_task_result, read_task
from scoring_bench.core.endpoints import QUEUE_PREDICT_PATH, QUEUE_TASKS_PATH
from scoring_bench.core.tasks import READY_STATES


@dataclass(frozen=True)
class QueueClientOptions:
    """``?wait_ms=`` of the submit (0: answer 202 at once; more: the wait-or-queue hybrid) and of
    each poll (a long poll), and how long a task may take before the client gives up on it."""

    submit_wait_ms: int
    poll_wait_ms: int
    timeout_s: float


@dataclass(frozen=True)
class Call:
    """The next request to send (``path`` relative to the queue API's base URL)."""

    name: Literal["submit", "poll"]
    method: Literal["POST", "GET"]
    path: str
    body: bytes | None = None


@dataclass(frozen=True)
class TaskOutcome:
    """How one task ended for the client: its last document (None when no valid one came back)
    and what is wrong with it (None: it succeeded with a valid score)."""

    doc: dict[str, Any] | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


class TaskRun:
    """One task, from submit to result. ``last_problem`` is what was wrong with the last answer
    (a client that reports every request, like Locust, marks that request failed)."""

    def __init__(
        self, body: bytes, options: QueueClientOptions, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.body = body
        self.options = options
        self.clock = clock
        self.deadline = clock() + options.timeout_s
        self.last_problem: str | None = None
        self.calls = 0
        self.task_id: str | None = None  # once the submit was answered with a task document

    def first(self) -> Call:
        self.calls = 1
        return Call(
            "submit", "POST", f"{QUEUE_PREDICT_PATH}?wait_ms={self.options.submit_wait_ms}", self.body
        )

    def answer(self, status: int, content: bytes | None) -> Call | TaskOutcome:
        """The next call after an answer, or the outcome once the task is done (or lost, or late)."""
        doc, self.last_problem = read_task(status, content)
        if doc is None:
            return TaskOutcome(None, f"the task was lost: {self.last_problem}")
        self.task_id = self.task_id or str(doc["task_id"])
        if doc["status"] in READY_STATES:
            return TaskOutcome(doc, check_task_result(doc))
        if self.clock() >= self.deadline:
            return TaskOutcome(doc, f"not done within {self.options.timeout_s:g} s (status {doc['status']})")
        self.calls += 1
        return Call("poll", "GET", f"{QUEUE_TASKS_PATH}/{doc['task_id']}?wait_ms={self.options.poll_wait_ms}")

    def failed(self, error: BaseException) -> TaskOutcome:
        """The transport failed (no answer at all)."""
        self.last_problem = f"{type(error).__name__}: {error}"
        return TaskOutcome(None, f"the task was lost: {self.last_problem}")
