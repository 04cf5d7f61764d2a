"""Is an answer a valid score? The checks every client of the benchmark applies (Locust's users, the
burst experiment): a request counts as a success only when it answered one."""

from __future__ import annotations

from typing import Any

import orjson


def check_score(status: int, content: bytes | None) -> str | None:
    """What is wrong with a scoring answer, or None when it is a valid score."""
    if status != 200:
        return f"HTTP {status}: {(content or b'')[:120]!r}"
    try:
        detail = orjson.loads(content or b"")["detail"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return f"not a scoring answer: {(content or b'')[:120]!r}"
    return score_problem(detail)


def score_problem(detail: Any) -> str | None:
    if isinstance(detail, bool) or not isinstance(detail, float) or not 0.0 <= detail <= 1.0:
        return f"detail is not a score in [0, 1]: {detail!r}"
    return None


def read_task(status: int, content: bytes | None) -> tuple[dict[str, Any] | None, str | None]:
    """A queue API answer (202 or 200) as its task document, or what is wrong with it."""
    if status not in (200, 202):
        return None, f"HTTP {status}: {(content or b'')[:120]!r}"
    try:
        doc = orjson.loads(content or b"")
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("task_id"), str) or "status" not in doc:
        return None, f"not a task document: {(content or b'')[:120]!r}"
    return doc, None


def check_task_result(doc: dict[str, Any]) -> str | None:
    """What is wrong with a finished task, or None when it succeeded with a valid score."""
    if doc.get("status") != "SUCCESS":
        return f"task {doc.get('status')}: {str(doc.get('error'))[:120]}"
    result = doc.get("result")
    return score_problem(result.get("detail") if isinstance(result, dict) else None)
