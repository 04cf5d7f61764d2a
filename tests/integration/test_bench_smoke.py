"""End to end: `scoring-bench bench` with the smoke profile writes a complete run folder.

Checks structure and schema only — never a speed.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.entries import END_TO_END, KINDS, POLL, SUBMIT, entry_name
from benchmark.summary import SCHEMA_VERSION, Summary
from scoring_bench.stack.supervisor import port_is_free
from tests.integration.conftest import stack_port_env

pytestmark = pytest.mark.integration
# The smoke profile, smaller still: every experiment and every code path of a run, in a fraction of
# the time (the numbers mean nothing; the test checks structure only). A stage lasts at least 2 s:
# Locust's load shape ticks once a second, and every stage must see a tick.
TINY = {
    "BENCH_PROFILE": "smoke",
    "BENCH_PROFILE_REQUESTS": "8",
    "BENCH_TIMEIT_REQUESTS": "10",
    "BENCH_ONE_USER_S": "2",
    "BENCH_RAMP_USERS": "1,32",
    "BENCH_RAMP_STEP_S": "2",
    "BENCH_WARMUP_S": "0.5",
    "BENCH_SUSTAINED_S": "2",
    "BENCH_STRESS_S": "2",
    "BENCH_RECOVERY_S": "2",
    "BENCH_BURST_TASKS": "30",
    "BENCH_BURST_CONCURRENCIES": "4,16",
    "BENCH_ATTRIBUTION_TIMEIT": "3",
    "BENCH_ATTRIBUTION_LOAD_S": "1",
    "BENCH_ATTRIBUTION_USERS": "16",
    "BENCH_FANOUT": "2",
    # One study: the others run the same measurement on other stacks (their configurations, the gap and
    # the report are unit-tested: tests/unit/test_attribution_report.py; the seed-faithful stack starts
    # and agrees in tests/integration/test_server_variants.py; the cpu model in process: tests/apps/).
    "BENCH_ATTRIBUTION_STUDIES": "fanout",
    "BENCH_REPEATS": "2",
    "BENCH_REPEAT_ONE_USER_S": "2",
    "BENCH_REPEAT_SUSTAINED_S": "2",
    "BENCH_OPEN_FRACTIONS": "0.5,1.0",
    "BENCH_OPEN_STEP_S": "1",
    "BENCH_CROSSCHECK_S": "1",
    "BENCH_VERIFY_REQUESTS": "5",
    "BENCH_CALIBRATION_S": "0.5",
    "BENCH_CONTROL": "true",  # off in smoke: asked for, with the smallest sizes
    "BENCH_CONTROL_S": "1",
    "BENCH_CONTROL_REQUESTS": "5",
    # Locust standalone in every phase: a master and its workers (LOCUST_WORKERS=auto) cost ~3.5 s more a
    # phase; tests/integration/test_locust_workers.py runs them, chosen by auto, against a real stack.
    "LOCUST_WORKERS": "0",
}


def _locust_entries(stats_csv: Path) -> set[str]:
    """The entries of Locust's own statistics file, its ``Aggregated`` row left out."""
    with stats_csv.open(newline="") as handle:
        return {row["Name"] for row in csv.DictReader(handle)} - {"Aggregated"}


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


@pytest.mark.timeout(600)  # a fourth architecture (batched): about 8 min on a busy 2-core machine
def test_a_tiny_bench_writes_a_complete_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ports = stack_port_env()
    for name, value in {**{n: str(p) for n, p in ports.items()}, **TINY}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("STACK_DIR", str(tmp_path / "stack"))
    monkeypatch.delenv("REDIS_URL", raising=False)

    assert main(["bench"]) == 0

    latest = tmp_path / "results" / "latest"
    for name in ("report.html", "report.md", "summary.json", "run.json", "environment.json"):
        assert (latest / name).is_file(), name
    run = json.loads((latest / "run.json").read_text())
    assert run["complete"] is True and run["errors"] == []
    summary = Summary.load(latest)  # the typed model: an unknown or missing key fails here
    assert summary.schema_version == SCHEMA_VERSION and summary.complete
    assert list(summary.architectures) == ["sync", "async", "batched", "queue"]
    for arch, section in summary.architectures.items():
        assert section.one_user and _finite(section.one_user.p50_ms), arch
        assert section.ideal and _finite(section.ideal.p50_ms), arch
        assert section.sustained and _finite(section.sustained.rps) and (section.sustained.rps or 0) > 0, arch
        assert _finite(section.sustained.server_cpu_ms_per_request), arch
        assert section.ramp and len(section.ramp.steps) == 2, arch
        assert section.stress and section.stress.recovery is not None, arch
        assert section.timeit and _finite(section.timeit.p50_ms), arch
        assert (latest / "locust" / "ramp" / f"{arch}_stats.csv").is_file()  # Locust's own files kept
        entries = _locust_entries(latest / "locust" / "ramp" / f"{arch}_stats.csv")
        assert entries and entries <= {entry_name(arch, kind) for kind in KINDS}, (
            entries
        )  # benchmark/entries.py
        assert (latest / "locust" / "ramp" / f"{arch}.html").is_file()
    for arch in summary.architectures:  # the queue: its API, and its worker below
        profile = summary.architectures[arch].profile
        assert profile and abs(sum(profile.values()) - 1.0) < 1e-6, arch
        assert (latest / "profiles" / arch / "pyinstrument.html").is_file()
        assert (latest / "profiles" / arch / "yappi-cpu.pstats").is_file()
    worker = summary.architectures["queue"].worker_profile
    assert worker and abs(sum(worker.values()) - 1.0) < 1e-6
    assert (latest / "profiles" / "queue-worker" / "yappi-cpu.pstats").is_file()
    improvement = summary.comparison.timeit_improvement_pct
    assert improvement and _finite(improvement.percent)
    _check_batched(latest, summary)
    _check_the_queue(latest, summary)
    _check_the_attribution(summary)
    _check_what_makes_numbers_trustworthy(summary)
    control = summary.control  # the async handler against the minimal control, every repetition
    assert control and [r.rep for r in control.reps] == [1, 2] and _finite(control.ratio_median)
    assert _finite(control.p50_diff_ms) and _finite(control.product_cpu_ms)
    html = (latest / "report.html").read_text()
    assert (
        len(re.findall(r'<img[^>]+src="data:image/png;base64,', html)) >= 8
    )  # the open loop's; no waterfall
    report = (latest / "report.md").read_text()
    for heading in (
        "## Verification before any load",
        "## Open loop: latency against offered load",
        "## Cross-check: Locust against an independent generator",
        "## The async handler against a minimal control",
    ):
        assert heading in report
    assert not re.search(r'(src|href)="https?://', html)
    assert all(port_is_free("127.0.0.1", port) for port in ports.values())


def _check_batched(latest: Path, summary: Summary) -> None:
    """The batching handler: its batch waits in the time split, its comparison with async in the report."""
    batched = summary.architectures["batched"]
    assert batched.time_split and _finite(batched.time_split.batch_wait_ms)
    assert batched.profile and batched.profile["model_calls"] > 0
    assert batched.ideal and "BATCH_MAX_WAIT_MS" in batched.ideal.description
    comparison = summary.comparison.batched_vs_async
    assert comparison is not None and _finite(comparison.sustained_rps_ratio)
    assert _finite(comparison.ramp_peak_ratio) and _finite(comparison.one_user_p50_cost_ms)
    assert comparison.sustained_rps_ratio_range is not None and comparison.sustained_rps_ratio_range.n == 2
    report = (latest / "report.md").read_text()
    assert "Batching against async: batching served" in report


def _check_the_queue(latest: Path, summary: Summary) -> None:
    """The queue is in the report: end-to-end statistics, its depth, and the burst."""
    queue = summary.architectures["queue"]
    assert queue.one_user and _finite(queue.one_user.p50_ms) and queue.one_user.failures == 0
    assert queue.queue and set(queue.queue.phases) == {"one_user", "ramp", "sustained", "stress"}
    assert (latest / "resources" / "sustained_queue_depth.csv").is_file()
    names = {
        row.split(",")[1]
        for path in (latest / "locust" / "sustained").glob("queue_requests*.csv")
        for row in path.read_text().splitlines()[1:]
    }
    # a submit with ?wait_ms= (BENCH_QUEUE_WAIT_MS) answers most tasks itself: polls only for the slower ones
    queue = {kind: entry_name("queue", kind) for kind in (SUBMIT, POLL, END_TO_END)}
    assert {queue[SUBMIT], queue[END_TO_END]} <= names <= set(queue.values())
    burst = summary.burst
    assert burst is not None and burst.tasks == 30
    assert {(run.architecture, run.concurrency) for run in burst.runs} == {
        ("queue", 4),
        ("queue", 16),
        ("sync", None),
        ("async", None),
        ("batched", None),
    }
    for run in burst.runs:
        if run.architecture == "queue":
            assert run.completed == 30 and _finite(run.drain_s), run
    report = (latest / "report.md").read_text()
    assert "## The queue: end-to-end latency, depth and worker CPU" in report
    assert "## Burst: many requests at once (seed 000)" in report


def _check_what_makes_numbers_trustworthy(summary: Summary) -> None:
    """The gate, the calibration, the open loop, the repetitions and the cross-check are all there."""
    assert summary.verification is not None and summary.verification.passed
    assert [row.architecture for row in summary.verification.rows] == ["sync", "async", "batched", "queue"]
    for row in summary.verification.rows:  # batched: batch calls of one item, as many as the others' calls
        assert row.model_calls == row.expected_model_calls == 5 * 2, row
    calibration = summary.environment.calibration if summary.environment else None
    assert calibration is not None and _finite(calibration.cpu_benchmark_us)
    after = summary.environment.calibration_after if summary.environment else None
    assert after is not None and _finite(after.cpu_benchmark_us)
    for arch, section in summary.architectures.items():
        assert section.openloop is not None and len(section.openloop.rates) == 2, arch
        assert all(rate.requests > 0 and _finite(rate.p99_ms) for rate in section.openloop.rates), arch
        assert section.repeats is not None and section.repeats.sustained_rps is not None, arch
        assert section.repeats.sustained_rps.n == 2 and section.repeats.one_user_p50_ms is not None, arch
        assert section.repeats.openloop_rate_at_limit_rps is not None, arch
        assert len(section.repeats.openloop_rate_at_limit_rps.values) == 2, arch
        assert section.crosscheck is not None and _finite(section.crosscheck.other_rps), arch
        assert section.sustained is not None and _finite(section.sustained.server_cpu_per_request_calibrated)


def _check_the_attribution(summary: Summary) -> None:
    """The study asked for ran, for both architectures it covers."""
    attribution = summary.attribution
    assert attribution is not None and attribution.missing == []
    assert {(entry.num_models, entry.architecture) for entry in attribution.fanout} == {
        (2, "sync"),
        (2, "async"),
    }
    assert all(_finite(entry.p50_ms) and _finite(entry.rps) for entry in attribution.fanout)
    assert attribution.steps == [] and attribution.cpu is None and attribution.tail is None


def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT as a terminal's foreground ``make bench`` gets it. A suite started in the background (``pytest
    &``, nohup, some CI runners) has SIGINT ignored, the child inherits that, and Python then installs no
    KeyboardInterrupt: the bench would never see the Ctrl-C this test sends (it waited out its 60 s)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_the_stack_and_keeps_partial_results(tmp_path: Path) -> None:
    ports = stack_port_env()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update({name: str(port) for name, port in ports.items()})
    env.update(
        RESULTS_DIR=str(tmp_path / "results"),
        STACK_DIR=str(tmp_path / "stack"),
        BENCH_PROFILE="smoke",
        EXPERIMENTS="locust",
        RUN_ID="interrupted",
        # before the load: the gate and the calibration as small as the tiny bench's (the test is the Ctrl-C)
        BENCH_VERIFY_REQUESTS="5",
        BENCH_CALIBRATION_S="0.5",
    )
    run_dir = tmp_path / "results" / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmark.cli", "bench"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_ctrl_c_as_in_a_terminal,
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
            proc.kill()  # it did not stop by itself: stop the stack it left (its state file in STACK_DIR)
            down = [sys.executable, "-m", "scoring_bench.stack.cli", "down"]
            subprocess.run(down, env=env, timeout=60, capture_output=True)
    run = json.loads((run_dir / "run.json").read_text())
    assert run["complete"] is False and run["interrupted"] is True
    assert (run_dir / "report.md").is_file() and (run_dir / "summary.json").is_file()
    assert json.loads((run_dir / "summary.json").read_text())["complete"] is False
    assert all(port_is_free("127.0.0.1", port) for port in ports.values())
