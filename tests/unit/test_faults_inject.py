"""The injections on real (tiny) process groups: a freeze stops a whole group and continues it, a kill
takes the whole group, a server's workers are its children (benchmark.faults.inject). The stack's own
processes under load: tests/integration/test_faults_experiment.py."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from benchmark.faults.inject import Freeze, KillChild, KillRestart, RabbitRestart, injection, record_pid
from benchmark.faults.plan import faults_for
from benchmark.settings import BenchSettings
from scoring_bench.core.settings import Settings
from scoring_bench.stack.supervisor import ProcessRecord, StackError, StackState, Supervisor, state_path

# a parent with a child in its process group (as gunicorn's master has its workers)
CHILD = "import time; time.sleep(60)"
PARENT = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {CHILD!r}]); time.sleep(60)"


@pytest.fixture
def group(tmp_path: Path) -> Iterator[tuple[Supervisor, psutil.Process]]:
    """A recorded process ``server`` (a session leader with one child), as the supervisor records one."""
    proc = subprocess.Popen([sys.executable, "-c", PARENT], start_new_session=True)
    leader = psutil.Process(proc.pid)
    deadline = time.monotonic() + 10
    while not leader.children():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    settings = Settings(stack_dir=tmp_path)
    record = ProcessRecord("server", proc.pid, leader.create_time(), None, str(tmp_path / "log"), None)
    StackState("redis://127.0.0.1:1/0", [record]).save(state_path(settings))
    try:
        yield Supervisor(settings), leader
    finally:
        for p in [*leader.children(recursive=True), leader]:
            try:
                p.kill()
            except psutil.Error:
                pass
        proc.wait(timeout=10)


def _status(proc: psutil.Process) -> str:
    return str(proc.status())


def _until(condition: Callable[[], bool]) -> None:
    """A signal's effect shows once the kernel has delivered it."""
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_a_freeze_stops_the_whole_group_and_continues_it(group: tuple[Supervisor, psutil.Process]) -> None:
    supervisor, leader = group
    child = leader.children()[0]
    freeze = Freeze(supervisor, "server")
    assert "SIGSTOP" in freeze.begin()
    _until(lambda: _status(leader) == _status(child) == psutil.STATUS_STOPPED)
    assert "SIGCONT" in freeze.end()
    _until(lambda: psutil.STATUS_STOPPED not in (_status(leader), _status(child)))


def test_a_kill_takes_the_whole_group(group: tuple[Supervisor, psutil.Process]) -> None:
    supervisor, leader = group
    child = leader.children()[0]
    KillRestart(supervisor, "server", lambda _: None).begin()
    gone, alive = psutil.wait_procs([child], timeout=5)
    assert child in gone and not alive
    with pytest.raises(StackError):
        record_pid(supervisor, "server")  # the record's process is gone


def test_a_worker_kill_needs_a_worker(group: tuple[Supervisor, psutil.Process]) -> None:
    supervisor, _ = group
    with pytest.raises(StackError, match="no worker process"):
        KillChild(supervisor, "server", 1.0).begin()  # neither gunicorn nor uvicorn: no worker of theirs


def test_each_fault_gets_its_injection(tmp_path: Path) -> None:
    bench = BenchSettings(broker_url="amqp://guest:guest@127.0.0.1:5672//", bench_faults_rabbitmq_node="r@h")
    supervisor = Supervisor(bench.stack_settings())
    kinds = {
        f.name: type(injection(f, supervisor, "r@h", lambda _: None)) for f in faults_for(bench, "queue")
    }
    assert kinds == {
        "model-kill": KillRestart,
        "model-freeze": Freeze,
        "redis-restart": KillRestart,
        "server-worker-kill": KillChild,
        "queue-worker-kill": KillRestart,
        "broker-restart": RabbitRestart,
    }
