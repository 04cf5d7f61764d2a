"""The product's performance targets, checked against a run's summary (never in tests).

They are stated for the default stack (the ``tuned`` preset, two U(40, 50) ms models) on a
2-core machine with everything co-located; on other settings or machines a check is reported as
not applicable rather than met or missed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

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
    return (settings.get("scoring_preset", "tuned") == "tuned" and settings.get("num_models") == 2
            and settings.get("model_latency") == "uniform" and settings.get("model_kind") == "io"
            and settings.get("model_latency_min_ms") == 40 and settings.get("model_latency_max_ms") == 50)


def check_targets(summary: dict[str, Any]) -> list[TargetCheck]:
    environment = summary.get("environment") or {}
    applicable = _default_workload(environment.get("settings") or {})
    note = "" if applicable else "not applicable: the targets are for the default (tuned) workload"
    archs = summary.get("architectures") or {}
    checks: list[TargetCheck] = []
    for arch in ("sync", "async"):
        data = archs.get(arch) or {}
        overhead = (data.get("one_user") or {}).get("overhead_p50_ms")
        checks.append(_check(f"p50 at 1 user at most {MAX_OVERHEAD_MS:g} ms above the ideal", arch,
                             overhead, MAX_OVERHEAD_MS, lambda v, lim: v <= lim, applicable, note))
        sustained = (data.get("sustained") or {}).get("rps")
        checks.append(_check(f"maximum sustained throughput at least {MIN_SUSTAINED_RPS[arch]:g} req/s", arch,
                             sustained, MIN_SUSTAINED_RPS[arch], lambda v, lim: v >= lim, applicable, note))
    minutes = _duration_minutes(summary)
    quick = summary.get("profile") == "quick"
    checks.append(_check(f"the quick profile finishes in under {MAX_QUICK_MINUTES:g} minutes", "all", minutes,
                         MAX_QUICK_MINUTES, lambda v, lim: v < lim, quick,
                         "" if quick else "not applicable: this run is not the quick profile"))
    return checks


def _check(target: str, arch: str, measured: float | None, limit: float, ok: Any, applicable: bool,
           note: str) -> TargetCheck:
    if measured is None or not applicable:
        return TargetCheck(target, arch, measured, limit, None, note or "not measured in this run")
    return TargetCheck(target, arch, measured, limit, bool(ok(measured, limit)))


def _duration_minutes(summary: dict[str, Any]) -> float | None:
    started, finished = summary.get("started_at"), summary.get("finished_at")
    if isinstance(started, (int, float)) and isinstance(finished, (int, float)):
        return (finished - started) / 60.0
    return None


def targets_section(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [asdict(check) for check in check_targets(summary)]
