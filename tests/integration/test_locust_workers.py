"""Locust as a master and its workers against a real stack, as ``LOCUST_WORKERS=auto`` runs every phase after
the first: the first phase standalone, the next one with the workers :class:`WorkerPlan` chose from the first
one's resource samples; each worker records its own requests, the master none, and the analysis reads them
all. (The end-to-end bench test, tests/integration/test_bench_smoke.py, runs its Locust standalone,
``LOCUST_WORKERS=0``: a master and its workers cost ~3.5 s more a phase, and this test covers them once.)
Structure only — never a speed."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from benchmark.analysis.phases import one_user_section, ramp_section
from benchmark.analysis.raw import read_requests, read_resources, resource_path
from benchmark.load import Stage, run_phase
from benchmark.locust_experiment import WorkerPlan
from benchmark.settings import BenchSettings
from scoring_bench.core.settings import Settings
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

ARCH = "queue"  # the user class with the most entries (submit, poll, end to end) and a depth sampler


def locust_running() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "locust" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


@pytest.mark.timeout(120)
def test_auto_workers_run_a_master_and_workers_whose_requests_are_all_read(
    stack: Stack, tmp_path: Path
) -> None:
    values = {name: getattr(stack.settings, name) for name in Settings.model_fields}
    bench = BenchSettings(bench_profile="smoke", bench_sample_interval_s=0.25, **values)
    assert bench.locust_workers == "auto"
    plan = WorkerPlan(bench, tmp_path, ARCH)

    first = plan.next("one_user")
    assert first == 0  # the first phase: one standalone process
    run_phase(bench, stack.state, ARCH, "one_user", [Stage(1, 2.0, 0.5)], tmp_path, workers=first)
    workers = plan.next("ramp")  # from the first phase's samples of its Locust process
    assert workers >= 1
    stages = [Stage(1, 2.0, 0.5), Stage(8, 2.0, 0.5)]
    out = run_phase(bench, stack.state, ARCH, "ramp", stages, tmp_path, workers=workers)
    assert not locust_running()

    assert len(list((tmp_path / "locust" / "one_user").glob(f"{ARCH}_requests.*.csv"))) == 1
    files = list(out.glob(f"{ARCH}_requests.*.csv"))
    assert len(files) == workers  # one per worker: the master runs no user
    for name in (f"{ARCH}_stats.csv", f"{ARCH}.html", f"{ARCH}_schedule.json"):
        assert (out / name).is_file(), name  # the master's own files
    sampled = {sample.name for sample in read_resources(resource_path(tmp_path, "ramp", ARCH))}
    assert {"locust", *(f"locust-worker-{i}" for i in range(1, workers + 1))} <= sampled
    assert (tmp_path / "resources" / "ramp_queue_depth.csv").is_file()  # the queue's depth sampler ran too

    entries = read_requests(tmp_path, "ramp", ARCH)
    assert entries and all(entry.ok for entry in entries)
    one_user = one_user_section(tmp_path, ARCH, None)
    assert one_user is not None and one_user.p95_ms
    ramp = ramp_section(tmp_path, ARCH, one_user.p95_ms)
    assert ramp is not None and [step.users for step in ramp.steps] == [1, 8]
    assert all(step.requests > 0 and step.rps for step in ramp.steps)
