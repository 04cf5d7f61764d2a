"""Task ids and documents of the queue architecture, as its API answers them and a callback
receives them. Pure: the Celery-specific parts (turning a task's exception into an error body,
reading the result store) are in :mod:`scoring_bench.service.task_store`."""

from __future__ import annotations

import re
import uuid
from typing import Any

from scoring_bench.core.errors import InvalidBody

READY_STATES = frozenset({"SUCCESS", "FAILURE"})
ERROR_STATES = frozenset({"FAILURE", "RETRY"})
TASK_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
TASK_ID = re.compile(TASK_ID_PATTERN)


def new_task_id() -> str:
    return str(uuid.uuid4())


def is_task_id(value: str) -> bool:
    return TASK_ID.match(value) is not None


def task_document(
    task_id: str, status: str, result: Any = None, error: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``{"task_id", "status", "result"?, "error"?}``: what ``GET .../tasks/{id}`` answers and
    what a callback receives. ``result`` is shown for SUCCESS, ``error`` (an error body) for a
    failed or retrying task."""
    doc: dict[str, Any] = {"task_id": task_id, "status": status}
    if status == "SUCCESS":
        doc["result"] = result
    elif error is not None:
        doc["error"] = error
    return doc


def parse_wait_ms(value: str | None, maximum: int) -> int:
    """The ``wait_ms`` query parameter: 0 (do not wait) when absent, else 0..maximum or 422."""
    if value is None:
        return 0
    if not (value.isascii() and value.isdigit()) or int(value) > maximum:
        raise InvalidBody(
            f"wait_ms must be an integer from 0 to {maximum} (QUEUE_MAX_WAIT_MS), got {value!r}"
        )
    return int(value)
