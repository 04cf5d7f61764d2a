"""One Ctrl-C stops ``scoring-bench locust-ui`` and ``scoring-bench bench``: every process of the command's
process group and every process of its stack gone within 10 s, every port free, whatever state the
target is in (here: its services killed under 16 running users, which retry without backoff).

Ctrl-C is SIGINT to the whole foreground process group, sent here with ``killpg`` to a command started
in a session of its own. Each test runs as from a terminal, and as from a shell's background job without
job control (``cmd &`` in a script or a tool), which starts the command with SIGINT ignored — the case
where neither make, nor Python, nor Locust reacted at all (scoring_bench/stack/interrupts.py); the UI
also with SIGTERM to the group, which used to kill the command before it stopped its stack.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
import requests

from benchmark.cli import UI_SPAWN_RATE, UI_USERS
from benchmark.load import USER_CLASSES
from scoring_bench.stack.supervisor import port_is_free
from tests.integration.conftest import free_port, stack_port_env

pytestmark = pytest.mark.integration

STOP_WITHIN_S = 10.0
DISPOSITIONS = {"terminal": signal.SIG_DFL, "background job": signal.SIG_IGN}


def _group(pgid: int) -> list[psutil.Process]:
    """The live (not zombie) processes of a process group."""
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (OSError, psutil.Error):
            pass
    return found


def _wait_for(check: Callable[[], bool], timeout_s: float, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert proc.poll() is None, f"the command exited ({proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout_s:.0f} s"
        time.sleep(0.2)


@contextmanager
def _command(
    argv: list[str], env: dict[str, str], sigint: signal.Handlers, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` in a session of its own (its pid is its process group), SIGINT as ``sigint`` when it
    starts; whatever is left of its group is killed, and its stack stopped, at the end."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, sigint),
        )
    try:
        yield proc
    finally:
        for left in _group(proc.pid):
            left.kill()
        if proc.poll() is None:
            proc.wait(timeout=10)
        down = [sys.executable, "-m", "scoring_bench.stack.cli", "down"]
        subprocess.run(down, env=env, timeout=60, capture_output=True)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _one_signal_stops_everything(
    proc: subprocess.Popen[bytes],
    stack_pids: list[psutil.Process],
    log: Path,
    sig: signal.Signals = signal.SIGINT,
) -> float:
    """``sig`` to the group; returns the seconds until no process of the group nor of the stack was left."""
    sent = time.monotonic()
    os.killpg(proc.pid, sig)
    while _group(proc.pid) or any(_alive(p) for p in stack_pids):
        elapsed = time.monotonic() - sent
        assert elapsed < STOP_WITHIN_S, (
            f"still running {elapsed:.1f} s after one {sig.name}: "
            + "; ".join(" ".join(p.cmdline()[:6]) for p in _group(proc.pid))
            + f"\n--- log:\n{log.read_text(errors='replace')[-3000:]}"
        )
        time.sleep(0.1)
    proc.wait(timeout=1)
    return time.monotonic() - sent


def _stack_processes(stack_dir: Path) -> list[psutil.Process]:
    state = json.loads((stack_dir / "state.json").read_text())
    return [psutil.Process(p["pid"]) for p in state["processes"]]


def _env(tmp_path: Path, ports: dict[str, int], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update({name: str(port) for name, port in ports.items()})
    env.update(STACK_DIR=str(tmp_path / "stack"), NUM_ENTITIES="200", MODEL_SYNC_WORKERS="1", **extra)
    return env


def _check_the_start_form(index: str, ports: dict[str, int]) -> None:
    """The start form as the UI renders it (Locust's template arguments): the command's users and spawn
    rate, the class picker with every architecture's class, each beside its own service's URL (Locust's one
    host field stays empty: filled, it would send every class to that URL)."""
    args = json.loads(re.search(r"window\.templateArgs = (\{.*\})", index).group(1))  # type: ignore[union-attr]
    assert (args["num_users"], args["spawn_rate"]) == (UI_USERS, UI_SPAWN_RATE)
    assert args["show_userclass_picker"] is True and args["host"] == ""
    for arch, user_class in USER_CLASSES.items():
        assert (
            args["users"][user_class]["host"] == f"http://127.0.0.1:{ports[f'SCORING_{arch.upper()}_PORT']}"
        )


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("started_as", "sig"),
    [("terminal", signal.SIGINT), ("background job", signal.SIGINT), ("terminal", signal.SIGTERM)],
    ids=["ctrl-c", "ctrl-c on a background job", "sigterm"],
)
def test_one_signal_stops_the_ui_and_its_dead_stack(
    tmp_path: Path, started_as: str, sig: signal.Signals
) -> None:
    ports = {**stack_port_env(), "LOCUST_UI_PORT": free_port()}
    # no backoff: users retry a dead target at once, Locust spins on a core (the case)
    env = _env(tmp_path, ports, LOCUST_FAILURE_BACKOFF_MAX_S="0")
    ui = f"http://127.0.0.1:{ports['LOCUST_UI_PORT']}"
    http = requests.Session()
    http.trust_env = False
    log = tmp_path / "locust-ui.log"
    argv = [sys.executable, "-m", "benchmark.cli", "locust-ui"]
    with _command(argv, env, DISPOSITIONS[started_as], log) as proc:
        _wait_for(lambda: not port_is_free("127.0.0.1", ports["LOCUST_UI_PORT"]), 90, proc, "web UI")
        _check_the_start_form(http.get(ui, timeout=10).text, ports)
        form = [("user_count", "16"), ("spawn_rate", "16")] + [
            ("user_classes", c) for c in USER_CLASSES.values()
        ]
        assert http.post(f"{ui}/swarm", data=form, timeout=10).json()["success"] is True

        def requests_counted() -> bool:
            stats = http.get(f"{ui}/stats/requests", timeout=10).json()
            return bool(stats["total_rps"] > 0 and sum(s["num_requests"] for s in stats["stats"]) > 50)

        _wait_for(requests_counted, 30, proc, "requests answered")
        stack = _stack_processes(tmp_path / "stack")
        for process in stack:  # the stack goes away under the running users
            os.killpg(process.pid, signal.SIGKILL)
        _wait_for(lambda: not any(_alive(p) for p in stack), 10, proc, "stack gone")
        time.sleep(2)  # the users on a dead target for a while

        took = _one_signal_stops_everything(proc, stack, log, sig)

    assert proc.returncode == 130, log.read_text(errors="replace")[-2000:]
    busy = [name for name, port in ports.items() if not port_is_free("127.0.0.1", port)]
    assert busy == [], f"still listening after {took:.1f} s: {busy}"
    assert not (tmp_path / "stack" / "state.json").exists()  # the stack's record cleared


@pytest.mark.timeout(240)
@pytest.mark.parametrize("started_as", DISPOSITIONS)
def test_one_ctrl_c_stops_a_bench_run_and_keeps_its_partial_folder(tmp_path: Path, started_as: str) -> None:
    ports = stack_port_env()
    env = _env(
        tmp_path,
        ports,
        RESULTS_DIR=str(tmp_path / "results"),
        BENCH_PROFILE="smoke",
        EXPERIMENTS="locust",
        RUN_ID="interrupted",
        BENCH_VERIFY_REQUESTS="5",  # before the load, the gate and calibration small: the test is the Ctrl-C
        BENCH_CALIBRATION_S="0.5",
        LOCUST_WORKERS="0",
    )
    run_dir = tmp_path / "results" / "interrupted"
    log = tmp_path / "bench.log"
    with _command(
        [sys.executable, "-m", "benchmark.cli", "bench"], env, DISPOSITIONS[started_as], log
    ) as proc:
        _wait_for(lambda: bool(list((run_dir / "locust").glob("*/*_requests*.csv"))), 90, proc, "load")
        stack = _stack_processes(tmp_path / "stack")
        took = _one_signal_stops_everything(proc, stack, log)

    assert proc.returncode == 130, log.read_text(errors="replace")[-2000:]
    busy = [name for name, port in ports.items() if not port_is_free("127.0.0.1", port)]
    assert busy == [], f"still listening after {took:.1f} s: {busy}"
    run = json.loads((run_dir / "run.json").read_text())
    assert run["interrupted"] is True and run["complete"] is False and run["finished_at"] is not None
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] is False
    assert (run_dir / "report.md").is_file() and (run_dir / "report.html").is_file()
