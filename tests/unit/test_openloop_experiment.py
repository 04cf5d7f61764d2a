"""The experiment's process handling (benchmark/openloop/experiment.py): the generator is stopped whatever
happens — Ctrl-C, a hang, a failure — and the sampler always reads a whole mapping of processes."""

from __future__ import annotations

import sys
from pathlib import Path

import psutil
import pytest

from benchmark.openloop.experiment import Sampled, run_process, target_url
from scoring_bench.core.settings import Settings
from scoring_bench.stack.supervisor import ProcessRecord, StackState

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def state() -> StackState:
    return StackState("redis://127.0.0.1:1", [])


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_ctrl_c_stops_the_generator(tmp_path: Path) -> None:
    targets = Sampled(state())
    seen: list[int] = []

    def tick(_: float) -> None:
        seen.append(targets()["openloop"][0])
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_process(SLEEPER, Settings(), tmp_path / "log", 30, tick, targets, "openloop")
    assert seen and gone(seen[0])
    assert "openloop" not in targets()


def test_a_generator_that_hangs_is_stopped_and_reported(tmp_path: Path) -> None:
    targets = Sampled(state())
    seen: list[int] = []
    with pytest.raises(RuntimeError, match="did not finish"):
        run_process(
            SLEEPER, Settings(), tmp_path / "log", 0.3, lambda _: seen.append(targets()["x"][0]), targets, "x"
        )
    assert seen and gone(seen[0])


def test_a_generator_that_fails_is_reported_with_its_log(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    with pytest.raises(RuntimeError, match="exited with 3"):
        run_process(argv, Settings(), tmp_path / "log", 30, lambda _: None, Sampled(state()), "openloop")
    assert "boom" in (tmp_path / "log").read_text()


def test_the_sampler_sees_the_stack_and_the_running_generator() -> None:
    stack = StackState("redis://", [ProcessRecord("scoring-sync", 11, 0.0, 5001, "log", None)])
    targets = Sampled(stack)
    before = targets()
    targets.running("openloop", 42)
    assert before == {"scoring-sync": [11]}  # a mapping already handed out never changes
    assert targets() == {"scoring-sync": [11], "openloop": [42]}
    targets.running("openloop", None)
    assert targets() == {"scoring-sync": [11]}


def test_the_generator_drives_the_predict_url_or_the_queue_apis_base() -> None:
    stack = Settings(scoring_sync_port=5101, scoring_queue_port=8102)
    assert target_url(stack, "sync").endswith(":5101/api/v1/ml/sync/predict")
    assert target_url(stack, "queue").endswith(":8102")
