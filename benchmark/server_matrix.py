"""``python -m benchmark.server_matrix``: the server apart from the framework, measured side by side.

Issue 15 §2's first measurement: the Flask handler on gunicorn gthread, gunicorn gevent and granian (WSGI);
the FastAPI handler on uvicorn and granian (ASGI). Each is measured as the attribution experiment measures
a configuration (:func:`benchmark.attribution.measure`: p50/p95/p99 of sequential requests at one user, then
the throughput of ``BENCH_ATTRIBUTION_USERS`` closed-loop users and the stack's CPU per request over it),
on a stack of its own, in rounds: every configuration once per round, ``BENCH_ATTRIBUTION_REPEATS`` rounds,
so a drift of the machine spreads over all of them instead of falling on one.

Not yet a study of ``make bench``: the attribution experiment's study (benchmark/attribution.py) should take
:data:`CONFIGS` as its ``servers`` study (see the module's docstring there). Until then this writes
``<results>/<run id>/attribution/measurements.csv`` in the attribution's columns and a ``servers.md``
table of the medians over the rounds.
"""

from __future__ import annotations

import csv
import statistics
import sys
import time
from typing import Any

from benchmark.attribution import COLUMNS, Config, measure
from benchmark.settings import BenchSettings

STUDY = "servers"
# (label, architecture, the settings that choose its server)
CONFIGS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (
        "Flask · gunicorn gthread",
        "sync",
        {"scoring_sync_server": "gunicorn", "scoring_sync_worker_class": "gthread"},
    ),
    (
        "Flask · gunicorn gevent",
        "sync",
        {"scoring_sync_server": "gunicorn", "scoring_sync_worker_class": "gevent"},
    ),
    ("Flask · granian (WSGI)", "sync", {"scoring_sync_server": "granian"}),
    ("FastAPI · uvicorn", "async", {"scoring_async_server": "uvicorn"}),
    ("FastAPI · granian (ASGI)", "async", {"scoring_async_server": "granian"}),
)


def configs(rounds: int) -> list[Config]:
    """Every configuration once per round; a round's steps are numbered on from the last round's."""
    return [
        Config(STUDY, rnd * len(CONFIGS) + i, label, dict(overrides), "server", architectures=(arch,))
        for rnd in range(rounds)
        for i, (label, arch, overrides) in enumerate(CONFIGS)
    ]


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [float(r[key]) for r in rows if r.get(key) not in (None, "")]
    return statistics.median(values) if values else None


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per configuration, the median over the rounds (and each round's value)."""

    def cell(group: list[dict[str, Any]], key: str, fmt: str) -> str:
        median = _median(group, key)
        each = ", ".join(format(float(r[key]), fmt) for r in group if r.get(key) not in (None, ""))
        return "—" if median is None else f"{format(median, fmt)} ({each})"

    lines = [
        "| server | p50 at 1 user, ms | req/s at the load's users | CPU ms per request | failures |",
        "|---|---|---|---|---|",
    ]
    for label, _, _ in CONFIGS:
        group = [r for r in rows if r["label"] == label]
        failures = max((float(r["failure_ratio"] or 0) for r in group), default=0.0)
        lines.append(
            f"| {label} | {cell(group, 'p50_ms', '.1f')} | {cell(group, 'rps', '.0f')} | "
            f"{cell(group, 'cpu_ms_per_request', '.2f')} | {failures:.1%} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    base = BenchSettings(architectures=["sync", "async"])
    run_dir = base.results_dir / (base.run_id or time.strftime("servers-%Y%m%d-%H%M%S"))
    out = run_dir / "attribution"
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    with open(out / "measurements.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        for config in configs(base.bench_attribution_repeats):
            print(f"{config.step}: {config.label}", file=sys.stderr, flush=True)
            for row in measure(base, config, run_dir, lambda: None):
                row["rep"] = config.step // len(CONFIGS)
                writer.writerow(row)
                f.flush()
                rows.append(row)
    text = table(rows)
    (run_dir / "servers.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
