"""Profiling a real stack: a handful of sequential requests (not a load test), then the
profiles each service wrote when it stopped, merged per architecture."""

from __future__ import annotations

import json
import pstats
from pathlib import Path

import pytest

from benchmark.profiles import CATEGORIES, collect, profile_client
from scoring_bench.stack.servers import SERVICES
from tests.integration.conftest import SCORING_SERVICES, SEED_BODY, Stack, stack_settings, start_stack

pytestmark = pytest.mark.integration

REQUESTS = 10
ARCHITECTURES = {"scoring-sync": "sync", "scoring-async": "async"}


def send_a_few(stack: Stack) -> None:
    for name in SCORING_SERVICES:
        for _ in range(REQUESTS):
            assert stack.post(name, SEED_BODY).status_code == 200


def test_pyinstrument_breakdown_of_both_architectures(tmp_path: Path) -> None:
    prof, profiles = tmp_path / "prof", tmp_path / "profiles"
    with start_stack(stack_settings(tmp_path, profiler="pyinstrument", profile_dir=prof)) as stack:
        send_a_few(stack)
        profile_client(stack.url("scoring-async"), SEED_BODY, 3, profiles / "client-async")
    # every HTTP service answered at least the supervisor's identity check (GET /), so each wrote a session
    assert {p.name.rsplit("-", 1)[0] for p in prof.glob("*.pyisession")} == {
        s.name for s in SERVICES if s.listens
    }
    for name, arch in ARCHITECTURES.items():
        out = profiles / arch
        result = collect(prof, name, out)
        for file in ("pyinstrument.html", "pyinstrument.txt", "breakdown.json"):
            assert (out / file).stat().st_size > 0, file
        written = json.loads((out / "breakdown.json").read_text())
        assert written == result["breakdown"]
        shares = written["shares"]
        assert list(shares) == list(CATEGORIES)
        assert sum(shares.values()) == pytest.approx(1.0)
        assert max(shares, key=shares.get) == "model_calls", (name, shares)  # type: ignore[arg-type]
        assert written["wall_ms"] > 0
    for file in ("pyinstrument.html", "pyinstrument.txt"):
        assert (profiles / "client-async" / file).stat().st_size > 0


def test_yappi_wall_profiles_of_both_architectures(tmp_path: Path) -> None:
    prof, profiles = tmp_path / "prof", tmp_path / "profiles"
    with start_stack(stack_settings(tmp_path, profiler="yappi-wall", profile_dir=prof)) as stack:
        send_a_few(stack)
    for name, arch in ARCHITECTURES.items():
        out = profiles / arch
        result = collect(prof, name, out)
        assert result["breakdown"] is None
        assert [p.name for p in result["written"]] == ["yappi-wall.pstats"]
        stats = pstats.Stats(str(out / "yappi-wall.pstats"))
        scorer = "scorer_sync.py" if arch == "sync" else "scorer_async.py"
        entries = stats.stats  # type: ignore[attr-defined]
        functions = {
            function.rsplit(".", 1)[-1]  # yappi names methods Class.method
            for file, _, function in entries
            if Path(file).name == scorer
        }
        assert {"predict", "read_features"} <= functions, functions


def send_queue_tasks(stack: Stack) -> None:
    """Submits that wait for their task: each answered 200 with the score, as the profiling experiment
    sends them."""
    for _ in range(REQUESTS):
        answer = stack.post("scoring-queue", SEED_BODY, params={"wait_ms": 5000})
        assert answer.status_code == 200 and answer.json()["status"] == "SUCCESS", answer.text


def test_pyinstrument_profiles_the_queue_api_and_each_task_of_its_worker(tmp_path: Path) -> None:
    prof, profiles = tmp_path / "prof", tmp_path / "profiles"
    with start_stack(stack_settings(tmp_path, profiler="pyinstrument", profile_dir=prof)) as stack:
        send_queue_tasks(stack)
    api = collect(prof, "scoring-queue", profiles / "queue")["breakdown"]
    worker = collect(prof, "queue-worker", profiles / "queue-worker")["breakdown"]
    # the API's requests wait for their task: the queue's time; the worker's tasks wait on the models
    assert max(api["shares"], key=api["shares"].get) == "queue", api
    assert max(worker["shares"], key=worker["shares"].get) == "model_calls", worker
    assert worker["shares"]["queue"] > 0  # Celery's work around the task (its result's write)
    assert worker["wall_ms"] >= REQUESTS * 40  # each task waits at least one model call (40-50 ms)
    assert "score" in (profiles / "queue-worker" / "pyinstrument.txt").read_text()


def test_yappi_cpu_profiles_the_queue_worker_process(tmp_path: Path) -> None:
    prof, profiles = tmp_path / "prof", tmp_path / "profiles"
    with start_stack(stack_settings(tmp_path, profiler="yappi-cpu", profile_dir=prof)) as stack:
        send_queue_tasks(stack)
    for service, folder in (("scoring-queue", "queue"), ("queue-worker", "queue-worker")):
        result = collect(prof, service, profiles / folder)
        assert [p.name for p in result["written"]] == ["yappi-cpu.pstats"]
    entries = pstats.Stats(str(profiles / "queue-worker" / "yappi-cpu.pstats")).stats  # type: ignore[attr-defined]
    files = {Path(file).name for file, _, _ in entries}
    assert {"worker.py", "scorer_sync.py", "trace.py"} <= files  # the task, its scorer, Celery's tracer
