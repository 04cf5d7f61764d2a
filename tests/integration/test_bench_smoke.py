"""End to end: `scoring-bench bench` with the smoke profile writes a complete run folder.

Checks structure and schema only — never a speed.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from benchmark.cli import main
from scoring_bench.stack.supervisor import port_is_free
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration
PORTS = (
    "MODEL_SYNC_PORT",
    "SCORING_SYNC_PORT",
    "MODEL_ASYNC_PORT",
    "SCORING_ASYNC_PORT",
    "SCORING_QUEUE_PORT",
    "QUEUE_WORKER_METRICS_PORT",
    "EMBEDDED_REDIS_PORT",
)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


@pytest.mark.timeout(420)  # every experiment on three architectures: close to the default 300 s on 2 cores
def test_smoke_bench_writes_a_complete_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ports = {name: free_port() for name in PORTS}
    for name, port in ports.items():
        monkeypatch.setenv(name, str(port))
    monkeypatch.setenv("RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("STACK_DIR", str(tmp_path / "stack"))
    monkeypatch.setenv("BENCH_PROFILE", "smoke")
    monkeypatch.delenv("REDIS_URL", raising=False)

    assert main(["bench"]) == 0

    latest = tmp_path / "results" / "latest"
    for name in ("report.html", "report.md", "summary.json", "run.json", "environment.json"):
        assert (latest / name).is_file(), name
    run = json.loads((latest / "run.json").read_text())
    assert run["complete"] is True and run["errors"] == []
    summary = json.loads((latest / "summary.json").read_text())
    assert summary["schema_version"] == 1
    assert set(summary["architectures"]) == {"sync", "async", "queue"}
    for arch, section in summary["architectures"].items():
        assert _finite(section["one_user"]["p50_ms"]), arch
        assert _finite(section["ideal"]["p50_ms"]), arch
        assert _finite(section["sustained"]["rps"]) and section["sustained"]["rps"] > 0, arch
        assert _finite(section["sustained"]["server_cpu_ms_per_request"]), arch
        assert section["ramp"]["steps"] and section["stress"]["recovery"] is not None, arch
        assert _finite(section["timeit"]["p50_ms"]), arch
        assert (latest / "locust" / "ramp" / f"{arch}_stats.csv").is_file()  # Locust's own files kept
        assert (latest / "locust" / "ramp" / f"{arch}.html").is_file()
    for arch in ("sync", "async"):  # the queue's API is not profiled
        assert abs(sum(summary["architectures"][arch]["profile"].values()) - 1.0) < 1e-6, arch
        assert (latest / "profiles" / arch / "pyinstrument.html").is_file()
        assert (latest / "profiles" / arch / "yappi-cpu.pstats").is_file()
    assert _finite(summary["comparison"]["timeit_improvement_pct"]["percent"])
    _check_the_queue(latest, summary)
    html = (latest / "report.html").read_text()
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', html)) >= 3
    assert not re.search(r'(src|href)="https?://', html)
    assert all(port_is_free("127.0.0.1", port) for port in ports.values())


def _check_the_queue(latest: Path, summary: dict[str, Any]) -> None:
    """The queue is in the report: end-to-end statistics, its depth, and the burst."""
    queue = summary["architectures"]["queue"]
    assert _finite(queue["one_user"]["p50_ms"]) and queue["one_user"]["failures"] == 0
    assert _finite(queue["sustained"]["rps"]) and queue["sustained"]["rps"] > 0
    assert set(queue["queue"]["phases"]) == {"one_user", "ramp", "sustained", "stress"}
    assert (latest / "resources" / "sustained_queue_depth.csv").is_file()
    names = {
        row.split(",")[1]
        for path in (latest / "locust" / "sustained").glob("queue_requests*.csv")
        for row in path.read_text().splitlines()[1:]
    }
    assert names == {"submit", "poll", "end_to_end"}
    burst = summary["burst"]
    assert burst is not None and burst["tasks"] == 100
    assert {(run["architecture"], run["concurrency"]) for run in burst["runs"]} == {
        ("queue", 8),
        ("queue", 64),
        ("sync", None),
        ("async", None),
    }
    for run in burst["runs"]:
        if run["architecture"] == "queue":
            assert run["completed"] == 100 and _finite(run["drain_s"]), run
    report = (latest / "report.md").read_text()
    assert "## The queue: end-to-end latency, depth and worker CPU" in report
    assert "## Burst: many requests at once (seed 000)" in report


def test_ctrl_c_stops_the_stack_and_keeps_partial_results(tmp_path: Path) -> None:
    ports = {name: free_port() for name in PORTS}
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update({name: str(port) for name, port in ports.items()})
    env.update(
        RESULTS_DIR=str(tmp_path / "results"),
        STACK_DIR=str(tmp_path / "stack"),
        BENCH_PROFILE="smoke",
        EXPERIMENTS="locust",
        RUN_ID="interrupted",
    )
    run_dir = tmp_path / "results" / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmark.cli", "bench"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not list((run_dir / "locust").glob("*/*_requests*.csv")):  # load is running
            assert time.monotonic() < deadline and proc.poll() is None, "the load never started"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    run = json.loads((run_dir / "run.json").read_text())
    assert run["complete"] is False and run["interrupted"] is True
    assert (run_dir / "report.md").is_file() and (run_dir / "summary.json").is_file()
    assert json.loads((run_dir / "summary.json").read_text())["complete"] is False
    assert all(port_is_free("127.0.0.1", port) for port in ports.values())
