"""The attribution's ``servers`` study (benchmark/attribution_servers.py): each framework on each server over
the rounds, and the sync–async gap split into the servers' part and the framework's.

The split, for the p50 at one user and for the throughput at the load's users apart: the gap between the
defaults (FastAPI on uvicorn against Flask on gunicorn gthread) is the whole; with granian serving both,
what remains of it (FastAPI on granian against Flask on granian) is the framework's and its I/O model's;
the rest came with the servers. gevent-patched Flask (sync code, async I/O) is measured by the part of the
whole gap it closes against gthread. A gap's range comes from the configurations' min–max over the rounds
(its low end: the better configuration's worst round against the worse one's best), a share's from those
ranges; a range that reaches 0 % (or 100 %) says that part cannot be told apart from the noise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from benchmark.analysis.measurements import Measurement
from benchmark.attribution_servers import (
    FASTAPI_GRANIAN,
    FASTAPI_UVICORN,
    FLASK_GEVENT,
    FLASK_GRANIAN,
    FLASK_GTHREAD,
    SERVERS,
    STUDY,
    Server,
    server_of_label,
)
from benchmark.stats import spread
from benchmark.summary import GapSplit, ServerFramework, ServerLevel, Share, Spread

# What each configuration is compared with: the default Flask for the sync servers and for the default
# FastAPI (the whole gap), Flask on granian for FastAPI on granian (the framework's part).
REFERENCES: dict[str, Server] = {
    FLASK_GEVENT.label: FLASK_GTHREAD,
    FLASK_GRANIAN.label: FLASK_GTHREAD,
    FASTAPI_UVICORN.label: FLASK_GTHREAD,
    FASTAPI_GRANIAN.label: FLASK_GRANIAN,
}
EPSILON = 1e-6  # a gap (ms or req/s) smaller than this is none: no share of it
Range = tuple[float | None, float | None, float | None]  # value, low, high


def _spread(values: Iterable[float | None]) -> Spread | None:
    present = [value for value in values if value is not None]
    return Spread.model_validate(spread(present)) if present else None


def server_level(server: Server, rows: Sequence[Measurement]) -> ServerLevel:
    """One configuration over its rounds."""
    p50, rps, cpu = (
        _spread(row.p50_ms for row in rows),
        _spread(row.rps for row in rows),
        _spread(row.cpu_ms_per_request for row in rows),
    )
    failures = _spread(row.failure_ratio for row in rows)
    return ServerLevel(
        label=server.label,
        framework=server.framework,
        server=server.server,
        architecture=server.architecture,
        rounds=len(rows),
        p50_ms=p50.mean if p50 else None,
        p50_spread=p50,
        rps=rps.mean if rps else None,
        rps_spread=rps,
        cpu_ms_per_request=cpu.mean if cpu else None,
        cpu_spread=cpu,
        failure_ratio=failures.mean if failures else None,
    )


def _metric(level: ServerLevel, metric: str) -> tuple[float | None, Spread | None]:
    return (level.p50_ms, level.p50_spread) if metric == "p50_ms" else (level.rps, level.rps_spread)


def advantage(better: ServerLevel | None, worse: ServerLevel | None, metric: str) -> Range:
    """How much ``better`` beats ``worse`` (p50: worse − better; req/s: better − worse), and its range over
    the rounds (None unless both have more than one round)."""
    if better is None or worse is None:
        return None, None, None
    (b, b_spread), (w, w_spread) = _metric(better, metric), _metric(worse, metric)
    if b is None or w is None:
        return None, None, None
    sign = -1.0 if metric == "p50_ms" else 1.0  # a lower p50 is better
    value = sign * (b - w)
    if not _ranged(b_spread) or not _ranged(w_spread):
        return value, None, None
    assert b_spread and w_spread and b_spread.min is not None and b_spread.max is not None
    assert w_spread.min is not None and w_spread.max is not None
    ends = [sign * (b_spread.min - w_spread.max), sign * (b_spread.max - w_spread.min)]
    return value, min(ends), max(ends)


def _ranged(s: Spread | None) -> bool:
    return s is not None and s.n > 1 and s.min is not None and s.max is not None


def share(part: Range, whole: Range) -> Share:
    """``part / whole``; its range from the corners of the two ranges, unless the whole's reaches zero."""
    (p, p_low, p_high), (w, w_low, w_high) = part, whole
    if p is None or w is None or abs(w) < EPSILON:
        return Share()
    value = p / w + 0.0  # + 0.0: no -0.0
    if p_low is None or p_high is None or w_low is None or w_high is None or w_low <= 0 <= w_high:
        return Share(value=value)
    corners = [a / b for a in (p_low, p_high) for b in (w_low, w_high)]
    return Share(value=value, low=min(corners), high=max(corners))


def _reaches(s: Share, point: float) -> bool | None:
    if s.low is None or s.high is None:
        return None
    return s.low <= point <= s.high


def gap_split(levels: dict[str, ServerLevel], metric: str) -> GapSplit | None:
    """One metric's gap between the defaults, its framework part (both on granian), gevent's part."""
    get = levels.get
    whole = advantage(get(FASTAPI_UVICORN.label), get(FLASK_GTHREAD.label), metric)
    if whole[0] is None:
        return None
    framework_part = advantage(get(FASTAPI_GRANIAN.label), get(FLASK_GRANIAN.label), metric)
    gevent_part = advantage(get(FLASK_GEVENT.label), get(FLASK_GTHREAD.label), metric)
    _, low, high = whole
    gap_noise = None if low is None or high is None else low <= 0 <= high
    framework = share(framework_part, whole)
    return GapSplit(
        metric=metric,
        gap=whole[0],
        gap_low=low,
        gap_high=high,
        framework_gap=framework_part[0],
        framework=framework,
        gevent=share(gevent_part, whole),
        gap_within_noise=gap_noise,
        framework_within_noise=_reaches(framework, 0.0),
        servers_within_noise=_reaches(framework, 1.0),
    )


def server_overrides(label: str) -> dict[str, Any]:
    """The settings that choose a configuration's server (empty for an unknown label)."""
    server = server_of_label(label)
    return dict(server.overrides) if server else {}


def first_steps(rows: Sequence[Measurement]) -> dict[str, int]:
    """The first step (stack) that measured each configuration, by label."""
    steps: dict[str, int] = {}
    for row in sorted(rows, key=lambda r: r.step):
        if row.study == STUDY:
            steps.setdefault(row.label, row.step)
    return steps


def servers_section(rows: Sequence[Measurement]) -> ServerFramework | None:
    """The study from the attribution's measurements; None when it did not run."""
    own = [row for row in rows if row.study == STUDY]
    if not own:
        return None
    by_label: dict[str, list[Measurement]] = {}
    for row in sorted(own, key=lambda r: (r.step, r.rep)):
        by_label.setdefault(row.label, []).append(row)
    levels = {s.label: server_level(s, by_label[s.label]) for s in SERVERS if s.label in by_label}
    users = [row.load_users for row in own if row.load_users is not None]
    return ServerFramework(
        rounds=max((level.rounds for level in levels.values()), default=0),
        load_users=max(users) if users else None,
        servers=list(levels.values()),
        missing=[s.label for s in SERVERS if s.label not in levels],
        latency=gap_split(levels, "p50_ms"),
        throughput=gap_split(levels, "rps"),
    )
