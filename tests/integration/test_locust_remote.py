"""Locust on "other machines": a real master with its web UI on a free loopback port and one worker process
started apart from the runner, as a user starts them elsewhere, against a real stack.

``LOCUST_MASTER_URL``: the runner drives a master it did not start; ``LOCUST_EXPECT_WORKERS=1``: the runner
starts the master and waits for a worker it did not start. Either way the phase's raw files must parse with
the analysis and hold the requests the master counted, and the worker must not write a file of its own.
Structure only — never a speed.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from benchmark import load
from benchmark.analysis.phases import ramp_section
from benchmark.analysis.raw import (
    read_remote_workers,
    read_requests,
    read_resources,
    read_schedule,
    resource_path,
)
from benchmark.load import LOCUSTFILE, Stage, run_phase
from benchmark.locust_remote import RemoteLocustError
from benchmark.settings import BenchSettings
from scoring_bench.core.settings import Settings
from scoring_bench.stack.process_env import PROJECT_ROOT, process_env
from tests.integration.conftest import Stack, free_port

pytestmark = pytest.mark.integration

ARCH = "async"
STAGES = [Stage(1, 2.0, 0.5), Stage(4, 2.0, 0.5)]


def bench_settings(stack: Stack, **overrides: object) -> BenchSettings:
    values = {name: getattr(stack.settings, name) for name in Settings.model_fields}
    return BenchSettings(bench_profile="smoke", bench_sample_interval_s=0.25, **values, **overrides)  # type: ignore[arg-type]


def start(argv: list[str], stack: Stack, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--loglevel", "WARNING", *argv],
            env=process_env(stack.settings),
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def worker_argv(port: int) -> list[str]:
    """What a user types on another machine (doc/methodology.md): no file options."""
    return ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]


def wait_for_worker(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/scoring-bench/status", timeout=2).json()["worker_count"] == 1:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise AssertionError(f"no worker connected to {url}")


def check_phase(out: Path, run_dir: Path, phase: str, arch: str = ARCH) -> None:
    """The phase's files parse with the analysis and hold every request the master counted."""
    schedule = read_schedule(run_dir, phase, arch)
    assert schedule is not None and [step.users for step in schedule] == [1, 4]
    entries = read_requests(run_dir, phase, arch)
    assert entries and all(entry.ok for entry in entries)
    assert schedule[0].start - 1.0 < entries[0].t and entries[-1].t < schedule[-1].end + 1.0  # one clock
    every = read_requests(run_dir, phase, arch, "*")  # the queue's submit, poll and end_to_end
    with (out / f"{arch}_stats.csv").open() as handle:
        aggregated = next(row for row in csv.DictReader(handle) if row["Name"] == "Aggregated")
    assert int(aggregated["Request Count"]) == len(every)
    for name in (f"{arch}_failures.csv", f"{arch}_exceptions.csv", f"{arch}.html", f"{arch}_workers.csv"):
        assert (out / name).is_file(), name
    record = json.loads((out / f"{arch}_remote.json").read_text())
    assert record["requests"] == len(every) and len(record["workers"]) == 1
    assert f"{arch}_requests.remote.csv" not in record["missing"]
    usage = read_remote_workers(run_dir, phase, arch)  # the worker's own CPU, once a second
    assert {sample.name for sample in usage} == {f"locust-worker-{record['workers'][0]}"}
    assert any(schedule[0].start <= sample.t <= schedule[-1].end for sample in usage)
    ramp = ramp_section(run_dir, arch, None)
    assert ramp is not None and [step.users for step in ramp.steps] == [1, 4]
    assert all(step.requests > 0 for step in ramp.steps)
    assert not list(out.glob(f"{arch}_requests.[0-9]*.csv"))  # the worker wrote nothing of its own here


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "logs"
    folder.mkdir()
    yield folder


@pytest.mark.timeout(60)
def test_a_master_started_elsewhere_is_driven_through_its_web_api(
    stack: Stack, tmp_path: Path, logs: Path
) -> None:
    web, port = free_port(), free_port()
    master_argv = ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
    master_argv += ["--web-host", "127.0.0.1", "--web-port", str(web), "--class-picker"]
    master = start(master_argv, stack, logs / "master.log")
    worker = start(worker_argv(port), stack, logs / "worker.log")
    try:
        url = f"http://127.0.0.1:{web}"
        wait_for_worker(url)
        bench = bench_settings(stack, locust_master_url=url)
        run_dir = tmp_path / "run"
        out = run_phase(bench, stack.state, ARCH, "ramp", STAGES, run_dir)
        check_phase(out, run_dir, "ramp")
        sampled = {sample.name for sample in read_resources(resource_path(run_dir, "ramp", ARCH))}
        assert not any(name.startswith("locust") for name in sampled)  # nothing of Locust runs here
        assert "scoring-async" in sampled
        # the same master runs a second phase: a new schedule, only its own requests
        out = run_phase(bench, stack.state, ARCH, "repeat-2", STAGES, run_dir)
        check_phase(out, run_dir, "repeat-2")
    finally:
        stop(worker, master)


@pytest.mark.timeout(60)
def test_the_runner_starts_a_master_and_waits_for_a_worker_started_elsewhere(
    stack: Stack, tmp_path: Path, logs: Path
) -> None:
    port = free_port()
    # the queue user: its options reach the worker with the master's spawn (here: submit, then poll)
    bench = bench_settings(
        stack, locust_expect_workers=1, locust_master_bind_port=port, bench_queue_wait_ms=0
    )
    worker = start(worker_argv(port), stack, logs / "worker.log")  # waits for its master to appear
    run_dir = tmp_path / "run"
    try:
        out = run_phase(bench, stack.state, "queue", "ramp", STAGES, run_dir)
        check_phase(out, run_dir, "ramp", "queue")
        polls = read_requests(run_dir, "ramp", "queue", "poll")
        assert len(polls) >= len(read_requests(run_dir, "ramp", "queue"))  # wait_ms=0: every task polled
        sampled = {sample.name for sample in read_resources(resource_path(run_dir, "ramp", "queue"))}
        # the master sampled apart from the load generator (its workers, not sampled here)
        assert "locust_master" in sampled and not {"locust", "locust-worker-1"} & sampled
        assert (run_dir / "resources" / "ramp_queue_depth.csv").is_file()
        assert worker.poll() is None  # the master is kept between phases: its worker stays
    finally:
        load.close_local_master()
        stop(worker)
    assert worker.poll() is not None


@pytest.mark.timeout(30)
def test_too_few_workers_is_a_clear_error_naming_the_worker_command(stack: Stack, tmp_path: Path) -> None:
    bench = bench_settings(
        stack, locust_expect_workers=1, locust_master_bind_port=free_port(), locust_expect_workers_wait_s=3
    )
    try:
        with pytest.raises(RuntimeError, match=r"0 Locust worker\(s\) connected .* --worker --master-host"):
            run_phase(bench, stack.state, ARCH, "ramp", STAGES, tmp_path)
    finally:
        load.close_local_master()


@pytest.mark.timeout(40)
def test_a_master_running_another_user_class_is_stopped_and_named(
    stack: Stack, tmp_path: Path, logs: Path
) -> None:
    web, port = free_port(), free_port()
    master_argv = ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
    master_argv += ["--web-host", "127.0.0.1", "--web-port", str(web), "SyncScoringUser"]  # no class picker
    master = start(master_argv, stack, logs / "master.log")
    worker = start(worker_argv(port), stack, logs / "worker.log")
    try:
        url = f"http://127.0.0.1:{web}"
        wait_for_worker(url)
        bench = bench_settings(stack, locust_master_url=url)
        with pytest.raises(
            RemoteLocustError, match=r"runs SyncScoringUser, not AsyncScoringUser alone.*--class-picker"
        ):
            run_phase(bench, stack.state, ARCH, "ramp", STAGES, tmp_path)
        time.sleep(1.0)
        assert requests.get(url + "/scoring-bench/status", timeout=5).json()["state"] == "stopped"
    finally:
        stop(worker, master)
