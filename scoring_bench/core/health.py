"""Health: one type for every service and every dependency it checks.

A dependency's health is a string: ``"OK"``, or ``"DOWN: <why>"`` (``"UNKNOWN: <why>"`` when it
cannot be checked because something else is down). The sync and async scorers, the queue API and
the supervisor all speak it, so a health body means the same thing whoever answers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OK = "OK"


def down(reason: object) -> str:
    return f"DOWN: {reason}"


def unknown(reason: object) -> str:
    return f"UNKNOWN: {reason}"


def is_ok(health: str) -> bool:
    return health == OK


def health_response(dependencies: Mapping[str, str] | None = None) -> tuple[dict[str, Any], int]:
    """The body and status of ``GET /api/v1/healthcheck``: 200 ``"OK"``, or 503 ``"DEGRADED"``
    naming what is down."""
    if dependencies is None:
        return {"status": OK}, 200
    ok = all(is_ok(value) for value in dependencies.values())
    return {"status": OK if ok else "DEGRADED", "dependencies": dict(dependencies)}, 200 if ok else 503
