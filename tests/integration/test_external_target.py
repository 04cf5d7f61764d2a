"""End to end: `scoring-bench bench` with BENCH_TARGET=external against a stack it did not start.

The test starts a real stack on free, non-default ports itself (as `make up` would for someone else), then
runs the bench against it with only the same port settings: the report must hold the measurements and the
skip lines, and the harness must have started, restarted and stopped none of the stack's processes.
Structure only — never a speed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import psutil
import pytest

from benchmark.cli import main
from benchmark.external import SKIP_REASONS
from benchmark.summary import Summary
from scoring_bench.core.endpoints import HEALTH_PATH
from scoring_bench.stack.probes import check_health
from scoring_bench.stack.servers import service
from tests.integration.conftest import stack_settings, start_stack

pytestmark = pytest.mark.integration

# The smoke profile, tiny, on one architecture: every experiment that runs against an external target runs
# once (client profile, gate, timeit, the Locust phases, the open loop, the cross-check); those that need a
# restart are asked for too, so the run must skip them.
TINY = {
    "BENCH_PROFILE": "smoke",
    "ARCHITECTURES": "async",
    "EXPERIMENTS": "profile,timeit,locust,openloop,crosscheck,burst,attribution,faults",
    "BENCH_PROFILE_REQUESTS": "8",
    "BENCH_TIMEIT_REQUESTS": "10",
    "BENCH_ONE_USER_S": "2",
    "BENCH_RAMP_USERS": "1,16",
    "BENCH_RAMP_STEP_S": "2",
    "BENCH_WARMUP_S": "0.5",
    "BENCH_SUSTAINED_S": "2",
    "BENCH_STRESS_S": "2",
    "BENCH_RECOVERY_S": "2",
    "BENCH_REPEATS": "1",
    "BENCH_OPEN_FRACTIONS": "0.5",
    "BENCH_OPEN_STEP_S": "1",
    "BENCH_CROSSCHECK_S": "1",
    "BENCH_VERIFY_REQUESTS": "5",
    "BENCH_CALIBRATION_S": "0.5",
    "BENCH_CONTROL": "true",  # asked for: the targets do not name the control, so it is skipped
    "LOCUST_WORKERS": "0",
}
PORT_SETTINGS = (
    "model_sync_port",
    "scoring_sync_port",
    "model_async_port",
    "scoring_async_port",
    "scoring_queue_port",
    "queue_worker_metrics_port",
    "embedded_redis_port",
)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


@pytest.mark.timeout(240)
def test_bench_measures_a_stack_it_did_not_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    theirs = stack_settings(tmp_path / "their-stack")
    with start_stack(theirs) as stack:
        processes = {p.name: (p.pid, p.create_time) for p in stack.state.processes}
        for name in PORT_SETTINGS:  # the same port settings, nothing else about the stack
            monkeypatch.setenv(name.upper(), str(getattr(theirs, name)))
        for name, value in TINY.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("BENCH_TARGET", "external")
        monkeypatch.setenv("NUM_ENTITIES", str(theirs.num_entities))  # the entities the stack seeded
        monkeypatch.setenv("RESULTS_DIR", str(tmp_path / "results"))
        monkeypatch.setenv("STACK_DIR", str(tmp_path / "harness-stack"))
        monkeypatch.delenv("REDIS_URL", raising=False)
        children = {p.pid for p in psutil.Process().children(recursive=True)}

        assert main(["bench"]) == 0

        # the harness started no service of its own and left nothing running
        assert not (tmp_path / "harness-stack").exists()
        assert {p.pid for p in psutil.Process().children(recursive=True)} == children
        # the stack is still up: the same processes, every service healthy
        assert stack.state.alive()
        assert {p.name: (p.pid, p.create_time) for p in stack.state.processes} == processes
        for name in ("model-sync", "model-async", "scoring-sync", "scoring-async", "scoring-queue"):
            assert check_health(service(name).url(theirs, HEALTH_PATH))[0], name

    latest = tmp_path / "results" / "latest"
    run = json.loads((latest / "run.json").read_text())
    assert run["complete"] is True and run["errors"] == []
    assert run["experiments"] == ["profile", "timeit", "locust", "openloop", "crosscheck"]
    summary = Summary.load(latest)
    section = summary.architectures["async"]
    assert section.one_user and _finite(section.one_user.p50_ms)
    assert section.ramp and len(section.ramp.steps) == 2
    assert section.sustained and (section.sustained.rps or 0) > 0
    assert section.stress and section.stress.recovery is not None
    assert section.timeit and _finite(section.timeit.p50_ms)
    assert section.openloop and section.openloop.rates
    assert summary.verification and summary.verification.passed
    assert summary.burst is None and summary.attribution is None and summary.faults is None
    assert summary.control is None
    assert (latest / "profiles" / "client-async").is_dir()
    assert not (latest / "profiles" / "raw-pyinstrument").exists()  # no server-side profiling

    target = summary.environment.target if summary.environment else None
    assert target is not None and target.mode == "external"
    scoring = next(s for s in target.services if s.name == "scoring-async")
    assert scoring.url == f"http://127.0.0.1:{theirs.scoring_async_port}"
    assert {skip.experiment for skip in target.skipped} == {
        "profile",
        "burst",
        "attribution",
        "faults",
        "control",
    }

    report = (latest / "report.md").read_text()
    assert f"External target: model-sync http://127.0.0.1:{theirs.model_sync_port}" in report
    assert "started by someone else" in report
    assert "## Skipped against the external target" in report
    for name in ("profile", "burst", "attribution", "faults", "control"):
        assert f"- {name}: {SKIP_REASONS[name]}" in report
    assert "## Machine (the load generator's)" in report
    assert "Missing from this run" not in report and "Not part of this run" not in report
