"""The queue's task ledger, decided in plain functions (no I/O): every task the API accepted (answered
202 with a task id) must end as SUCCESS or an explicit FAILURE; ``lost`` = accepted − ended must be 0.

The final states come from the queue API (``GET .../tasks/<id>``) after the run, polled until every task
has ended or the wait is over (:mod:`benchmark.faults.tasks`); an id the API no longer knows (404) is a
task the system forgot. The runs come from the worker's own count in the result store
(``QUEUE_COUNT_RUNS``: attempt → how many times it started): an attempt that started twice *ran twice*
(its message was delivered again after a worker died or lost the broker before acking it). Retries are
not runs twice: each retry is its own attempt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from scoring_bench.core.tasks import READY_STATES

UNKNOWN = "UNKNOWN"  # the API answered 404: never issued, or forgotten
STALL_S = 15.0  # past its deadline, the ledger waits on while some task ended within this long
OVERTIME_S = 180.0  # and at most this long past it
UNREACHABLE = "UNREACHABLE"  # the API did not answer the last poll


def accepted_ids(task_ids: Iterable[str]) -> list[str]:
    """The distinct task ids the API answered with, in order (empty ids are refused submits)."""
    return list(dict.fromkeys(task_id for task_id in task_ids if task_id))


def ended(status: str) -> bool:
    return status in READY_STATES


def keep_waiting(now: float, deadline: float, last_progress: float) -> bool:
    """Whether the ledger polls on for tasks that have not ended: until ``deadline`` (the longest a task
    should take), then while tasks still end (one did within ``STALL_S``), for ``OVERTIME_S`` at most —
    a task that is still on its way is not declared lost, one that stopped moving is."""
    if now < deadline:
        return True
    return now < deadline + OVERTIME_S and now - last_progress < STALL_S


@dataclass(frozen=True)
class Tally:
    """The ledger of one fault run."""

    accepted: int
    succeeded: int
    failed: int  # an explicit FAILURE
    unfinished: int  # still PENDING, STARTED or RETRY when the wait ended
    unknown: int  # 404: the API no longer knows the id
    unreachable: int  # the API did not answer
    ran_twice: int | None  # tasks with an attempt that started more than once; None: runs not counted
    extra_runs: int | None  # runs beyond one per attempt, over all tasks
    runs_unknown: int | None  # ended tasks without any counted run (their counter was not written)

    @property
    def lost(self) -> int:
        """Accepted − ended: every task that did not end as SUCCESS or FAILURE."""
        return self.accepted - self.succeeded - self.failed


def tally(
    accepted: Iterable[str], final: Mapping[str, str], runs: Mapping[str, Mapping[str, int]] | None
) -> Tally:
    """The ledger of ``accepted`` ids from their ``final`` statuses (SUCCESS, FAILURE, PENDING, STARTED,
    RETRY, :data:`UNKNOWN`, :data:`UNREACHABLE`; an id without one is unreachable) and, when the worker
    counted them, their ``runs`` (id → attempt → starts)."""
    ids = accepted_ids(accepted)
    states = [final.get(task_id, UNREACHABLE) for task_id in ids]
    ran_twice = extra = runs_unknown = None
    if runs is not None:
        counted = [runs.get(task_id) or {} for task_id in ids]
        ran_twice = sum(1 for attempts in counted if any(n > 1 for n in attempts.values()))
        extra = sum(max(n - 1, 0) for attempts in counted for n in attempts.values())
        runs_unknown = sum(1 for attempts, state in zip(counted, states) if ended(state) and not attempts)
    return Tally(
        accepted=len(ids),
        succeeded=states.count("SUCCESS"),
        failed=states.count("FAILURE"),
        unfinished=sum(1 for s in states if s not in READY_STATES and s not in (UNKNOWN, UNREACHABLE)),
        unknown=states.count(UNKNOWN),
        unreachable=states.count(UNREACHABLE),
        ran_twice=ran_twice,
        extra_runs=extra,
        runs_unknown=runs_unknown,
    )


def parse_runs(raw: Mapping[bytes | str, bytes | str]) -> dict[str, int]:
    """A task's runs hash as Redis returns it (attempt → starts, as bytes); fields that are not counts
    are left out."""
    parsed = {}
    for attempt, count in raw.items():
        try:
            parsed[_text(attempt)] = int(_text(count))
        except ValueError:
            continue
    return parsed


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
