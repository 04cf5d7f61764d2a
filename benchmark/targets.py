"""The product's performance targets, checked against a run's summary (never in tests).

They are stated for the default stack (the ``tuned`` preset, two U(40, 50) ms models) on a
2-core machine with everything co-located; on other settings or machines a check is reported as
not applicable rather than met or missed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmark.summary import ArchitectureSummary, Summary

MAX_OVERHEAD_MS = 3.0
MIN_SUSTAINED_RPS = {"async": 1000.0, "sync": 450.0}
MAX_QUICK_MINUTES = 10.0


@dataclass(frozen=True)
class TargetCheck:
    target: str
    architecture: str
    measured: float | None
    limit: float
    met: bool | None  # None: not measured, or not applicable to this run
    note: str = ""


def _default_workload(settings: dict[str, Any]) -> bool:
    return (
        settings.get("scoring_preset", "tuned") == "tuned"
        and settings.get("num_models") == 2
        and settings.get("model_latency") == "uniform"
        and settings.get("model_kind") == "io"
        and settings.get("model_latency_min_ms") == 40
        and settings.get("model_latency_max_ms") == 50
    )


def check_targets(summary: Summary) -> list[TargetCheck]:
    settings = summary.environment.settings if summary.environment else None
    applicable = _default_workload(settings or {})
    note = "" if applicable else "not applicable: the targets are for the default (tuned) workload"
    checks: list[TargetCheck] = []
    for arch in ("sync", "async"):
        data = summary.architectures.get(arch) or ArchitectureSummary()
        overhead = data.one_user.overhead_p50_ms if data.one_user else None
        checks.append(
            _check(
                f"p50 at 1 user at most {MAX_OVERHEAD_MS:g} ms above the ideal",
                arch,
                overhead,
                MAX_OVERHEAD_MS,
                lambda v, lim: v <= lim,
                applicable,
                note,
            )
        )
        sustained = data.sustained.rps if data.sustained else None
        checks.append(
            _check(
                f"maximum sustained throughput at least {MIN_SUSTAINED_RPS[arch]:g} req/s",
                arch,
                sustained,
                MIN_SUSTAINED_RPS[arch],
                lambda v, lim: v >= lim,
                applicable,
                note,
            )
        )
    minutes = _duration_minutes(summary)
    quick = summary.profile == "quick"
    checks.append(
        _check(
            f"the quick profile finishes in under {MAX_QUICK_MINUTES:g} minutes",
            "all",
            minutes,
            MAX_QUICK_MINUTES,
            lambda v, lim: v < lim,
            quick,
            "" if quick else "not applicable: this run is not the quick profile",
        )
    )
    return checks


def _check(
    target: str,
    arch: str,
    measured: float | None,
    limit: float,
    ok: Callable[[float, float], bool],
    applicable: bool,
    note: str,
) -> TargetCheck:
    if measured is None or not applicable:
        return TargetCheck(target, arch, measured, limit, None, note or "not measured in this run")
    return TargetCheck(target, arch, measured, limit, bool(ok(measured, limit)))


def _duration_minutes(summary: Summary) -> float | None:
    if summary.started_at is not None and summary.finished_at is not None:
        return (summary.finished_at - summary.started_at) / 60.0
    return None
