"""The queue's cost per task against the sync handler's per request, in one run (issue 13 §2).

For each variant of the stack's settings (``name:KEY=VALUE,KEY=VALUE``; the first is usually the
defaults), the stack is started once and driven by the open-loop generator as ``users`` closed loops:
the sync handler, then the queue (submit, then long polls), each for ``duration_s`` after a warm-up.
Server CPU is the CPU time of the processes that serve the architecture (its API, the queue's worker,
the model API it calls, Redis: :func:`benchmark.analysis.phases.service_names`), read from the kernel's
counters (psutil) around each closed loop, divided by the tasks (requests) that completed in it.

``python -m benchmark.queue_cost RUN_DIR USERS DURATION_S VARIANT...`` writes ``RUN_DIR/<variant>/<arch>/``
(the generator's files) and ``RUN_DIR/queue-cost.json``, and prints one table row per variant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import psutil

from benchmark.analysis.openloop import read_records
from benchmark.analysis.phases import service_names
from benchmark.openloop.accounting import closed_loop_stats
from benchmark.openloop.experiment import Sampled, closed_loop
from benchmark.openloop.records import CLOSED_CSV
from benchmark.settings import BenchSettings
from scoring_bench.stack.supervisor import StackState, running_stack

WARMUP_S = 2.0


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """``name:KEY=VALUE,KEY=VALUE`` → (name, {key: value}) (keys lower-cased: Settings' field names)."""
    name, _, rest = text.partition(":")
    pairs = [item.split("=", 1) for item in rest.split(",") if item]
    return name, {key.strip().lower(): value.strip() for key, value in pairs}


def tree_cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of the processes and their children, now."""
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in procs:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
    return total


def measure(
    bench: BenchSettings, state: StackState, arch: str, folder: Path, users: int, duration_s: float
) -> dict[str, Any]:
    names = service_names(arch, bench.stack_settings())
    pids = {name: [p.pid for p in state.processes if p.name == name] for name in names}
    before = {name: tree_cpu_s(ids) for name, ids in pids.items()}
    closed_loop(bench, arch, folder, users, duration_s, WARMUP_S, lambda _: None, Sampled(state))
    per_process = {name: tree_cpu_s(ids) - before[name] for name, ids in pids.items()}
    cpu_s = sum(per_process.values())
    records = read_records(folder / CLOSED_CSV)
    stats = closed_loop_stats(records, WARMUP_S, duration_s)
    completed = sum(1 for r in records if r.ok)
    return {
        "rps": stats.rps,
        "p50_ms": stats.p50_ms,
        "completed": completed,
        "failed": sum(1 for r in records if not r.ok),
        "cpu_s": cpu_s,
        "cpu_ms_per_completed": cpu_s * 1000 / completed if completed else None,
        "cpu_ms_per_completed_by_process": {
            name: seconds * 1000 / completed if completed else None for name, seconds in per_process.items()
        },
    }


def run(run_dir: Path, users: int, duration_s: float, variants: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for text in variants:
        name, overrides = parse_variant(text)
        bench = BenchSettings(**overrides)  # type: ignore[arg-type]  # pydantic parses the strings
        with running_stack(bench.stack_settings()) as state:
            row: dict[str, Any] = {"variant": name, "settings": overrides}
            for arch in ("sync", "queue"):
                row[arch] = measure(bench, state, arch, run_dir / name / arch, users, duration_s)
        sync, queue = row["sync"], row["queue"]
        if sync["cpu_ms_per_completed"] and queue["cpu_ms_per_completed"] and sync["rps"]:
            row["cpu_ratio"] = queue["cpu_ms_per_completed"] / sync["cpu_ms_per_completed"]
            row["rps_ratio"] = (queue["rps"] or 0.0) / sync["rps"]
        rows.append(row)
        (run_dir / "queue-cost.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
        print(_line(row), flush=True)
    return rows


def _line(row: dict[str, Any]) -> str:
    def cell(arch: str) -> str:
        m = row[arch]
        cpu = m["cpu_ms_per_completed"]
        p50 = m["p50_ms"] or 0
        return f"{arch} {m['rps'] or 0:.0f}/s {cpu or 0:.2f} ms CPU p50 {p50:.0f} ms fail {m['failed']}"

    ratios = f"cpu x{row.get('cpu_ratio', 0):.2f} rps x{row.get('rps_ratio', 0):.2f}"
    return f"{row['variant']:<16} {cell('sync')} | {cell('queue')} | {ratios}"


def main(argv: list[str]) -> None:
    run_dir, users, duration_s, *variants = argv
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    run(Path(run_dir), int(users), float(duration_s), variants or ["defaults:"])


if __name__ == "__main__":
    main(sys.argv[1:])
