"""The soak for real, end to end: ``scoring-bench bench`` with ``BENCH_PROFILE=soak`` (what ``make soak``
runs), a few seconds on sync and on the queue, the rate from a closed-loop capacity probe. Structure only —
never a speed, and no verdict asserted (a few seconds say nothing about growth)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import psutil
import pytest

from benchmark.analysis.phases import service_names
from benchmark.cli import main
from benchmark.report.soak import SOAK_TITLE
from benchmark.soak.records import PROCESSES_CSV
from benchmark.soak.sampler import COLUMNS
from benchmark.summary import SoakProcess, Summary
from scoring_bench.stack.supervisor import port_is_free
from tests.integration.conftest import stack_port_env

pytestmark = pytest.mark.integration

SOAK = {
    "BENCH_PROFILE": "soak",
    "ARCHITECTURES": "sync,queue",
    "SOAK_S": "6",
    "SOAK_WARMUP_S": "1",
    "SOAK_WINDOW_S": "2",
    "SOAK_SAMPLE_S": "0.5",
    "SOAK_PROBE_S": "1.5",
    "BENCH_RAMP_USERS": "16",  # the probe's closed loops
    "BENCH_OPEN_CONNECTIONS": "64",
    "BENCH_VERIFY_REQUESTS": "5",
    "BENCH_CALIBRATION_S": "0.5",
    "NUM_ENTITIES": "200",
}


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def generators_running() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "benchmark.openloop" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


@pytest.mark.timeout(180)
def test_a_short_soak_writes_its_files_summary_and_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = stack_port_env()
    for name, value in {**{n: str(p) for n, p in ports.items()}, **SOAK}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("STACK_DIR", str(tmp_path / "stack"))
    for name in ("REDIS_URL", "EXPERIMENTS", "SOAK_RATE", "SOAK_FRACTION"):
        monkeypatch.delenv(name, raising=False)

    assert main(["bench"]) == 0

    latest = tmp_path / "results" / "latest"
    run = json.loads((latest / "run.json").read_text())
    assert run["complete"] is True and run["errors"] == [] and run["experiments"] == ["soak"]
    summary = Summary.load(latest)
    assert summary.verification is not None and summary.verification.passed
    assert summary.soak is not None and list(summary.soak.architectures) == ["sync", "queue"]
    for arch, soak in summary.soak.architectures.items():
        assert soak.capacity_source == "probe" and _finite(soak.capacity_rps), arch
        assert soak.fraction == 0.7 and soak.rate_rps == pytest.approx(0.7 * (soak.capacity_rps or 0)), arch
        assert (soak.duration_s, soak.warmup_s, soak.window_s) == (6.0, 1.0, 2.0), arch
        assert soak.load is not None and soak.load.requests > 0 and soak.load.completed > 0, arch
        for window in (soak.first_window, soak.last_window):
            assert window is not None and window.requests > 0 and _finite(window.p99_ms), arch
        assert [(m.start_s, m.end_s) for m in soak.minutes] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
        _check_processes(latest, arch, soak.processes)
    report = (latest / "report.md").read_text()
    assert f"## {SOAK_TITLE}" in report and ("steady" in report or "GREW" in report)
    assert (latest / "plots" / "soak.png").is_file() and (latest / "plots" / "soak_p99.png").is_file()
    assert not generators_running()
    assert all(port_is_free("127.0.0.1", port) for port in ports.values())


def _check_processes(latest: Path, arch: str, processes: list[SoakProcess]) -> None:
    """Every process of the architecture's path, each with its own numbers and a verdict."""
    with (latest / "soak" / arch / PROCESSES_CSV).open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows and tuple(rows[0]) == COLUMNS
    assert {p.service for p in processes} == set(service_names(arch))
    for service in service_names(arch):
        mains = [p for p in processes if p.service == service and p.role == "main"]
        assert len(mains) == 1, (arch, service)
    if arch == "sync":  # gunicorn: a master and its workers (SCORING_SYNC_WORKERS, 2 by default)
        assert len([p for p in processes if p.service == "scoring-sync" and p.role == "worker"]) == 2
    for process in processes:
        assert process.samples >= 4 and process.note is None, process
        assert (process.rss_mb.first_median or 0) > 0 and (process.fds.first_median or 0) > 0, process
        assert (process.threads.last_median or 0) >= 1 and process.connections.last_median is not None
        assert process.steady in (True, False), process
