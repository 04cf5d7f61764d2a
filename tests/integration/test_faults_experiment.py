"""The faults experiment for real, on a tiny setting: a uvicorn worker killed under load (async, with two
of them) and the queue's Celery worker SIGKILLed mid-load, each on a stack of its own. The other faults'
decisions are unit-tested (tests/unit/test_faults_*.py), the injections too (test_faults_inject.py), Redis's
restart is in test_faults.py, and every fault ran in `make bench EXPERIMENTS=faults` (doc/faults.md)."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from benchmark.analysis.faults import faults_section
from benchmark.faults.experiment import run_faults
from benchmark.report.faults import faults_blocks
from benchmark.report.plots_faults import plot_fault_timeline
from benchmark.settings import BenchSettings
from tests.integration.conftest import stack_ports
from tests.integration.test_queue import QUEUE_TEST_SETTINGS

pytestmark = pytest.mark.integration


def _ours(stack_dir: Path) -> list[psutil.Process]:
    """Processes still running from this test's stacks (their command line names its folder or ports)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if str(stack_dir) in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


def test_a_uvicorn_worker_and_the_celery_worker_killed_under_load(tmp_path: Path) -> None:
    stack_dir = tmp_path / "stack"
    bench = BenchSettings(
        bench_profile="smoke",
        architectures="async,queue",
        bench_faults="server-worker-kill,queue-worker-kill",
        bench_faults_rate=30,
        bench_faults_steady_s=1.5,
        bench_faults_window_s=1.0,
        bench_faults_recover_s=5.0,
        bench_open_connections=64,
        bench_queue_timeout_s=10,
        **stack_ports(),
        stack_dir=stack_dir,
        num_entities=200,
        model_sync_workers=1,
        scoring_async_workers=2,
        health_timeout_s=30.0,
        # a dead worker's tasks come back after 3 s (QUEUE_TEST_SETTINGS), to 64 slots
        **{**QUEUE_TEST_SETTINGS, "model_latency_fixed_ms": 100.0, "queue_worker_concurrency": 64},
    )
    run_faults(bench, tmp_path)
    assert not _ours(stack_dir), "a process of the experiment's stacks is still running"

    faults = faults_section(tmp_path)
    assert faults is not None and faults.problems == []
    ran = {(run.architecture, run.fault): run for run in faults.runs}
    assert set(ran) == {
        ("async", "server-worker-kill"),
        ("queue", "server-worker-kill"),
        ("queue", "queue-worker-kill"),
    }
    assert ran["queue", "server-worker-kill"].skipped  # one uvicorn process: not a worker of a server
    for key in (("async", "server-worker-kill"), ("queue", "queue-worker-kill")):
        run = ran[key]
        assert run.problems == [], run.problems
        assert run.requests > 0 and run.timeline and run.fault_start_s is not None
        assert run.recovered is True, f"{key} did not recover: {run.timeline}"
    assert "runs 2 workers again" in ran["async", "server-worker-kill"].notes[-1]
    assert set(ran["async", "server-worker-kill"].errors_by_outcome) <= {"no answer"}  # reset connections
    ledger = ran["queue", "queue-worker-kill"].ledger
    assert ledger is not None and ledger.accepted > 0
    assert ledger.lost == 0, ledger  # the dead worker's tasks came back (visibility timeout) and ended
    assert ledger.ran_twice is not None and ledger.runs_unknown == 0  # every run counted by the worker
    assert plot_fault_timeline(faults, "queue-worker-kill", tmp_path / "plots") is not None
    assert faults_blocks(faults, {})
