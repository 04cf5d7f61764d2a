"""Ctrl-C for the commands that own processes (scoring_bench/stack/interrupts.py) and the argv of
``scoring-bench locust-ui`` (benchmark/cli.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from benchmark.cli import UI_SPAWN_RATE, UI_USERS, locust_ui_command
from benchmark.load import LOCUSTFILE, USER_CLASSES
from benchmark.settings import BenchSettings
from scoring_bench.stack import interrupts
from scoring_bench.stack.interrupts import end_child, stop_on_signals

main_thread_only = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signal handlers live in the main thread",
)


def _deliver(sig: signal.Signals) -> None:
    """Send ``sig`` to this process and let its handler run (at the next bytecode boundary)."""
    os.kill(os.getpid(), sig)
    for _ in range(100):
        time.sleep(0.001)


@main_thread_only
@pytest.mark.parametrize("sig", interrupts.STOP_SIGNALS)
def test_the_first_signal_interrupts_and_the_later_ones_leave_the_cleanup_alone(
    sig: signal.Signals, capfd: pytest.CaptureFixture[str]
) -> None:
    cleaned = False
    with pytest.raises(KeyboardInterrupt), stop_on_signals():
        try:
            _deliver(sig)
        finally:
            _deliver(signal.SIGINT)  # a second Ctrl-C while stopping: acknowledged, not raised
            cleaned = True
    assert cleaned
    assert "already stopping" in capfd.readouterr().err


@main_thread_only
def test_an_ignored_sigint_is_taken_back_and_restored_after() -> None:
    """A background job without job control starts with SIGINT ignored: the command reacts all the same."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    term = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(KeyboardInterrupt), stop_on_signals():
            _deliver(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is term
    finally:
        signal.signal(signal.SIGINT, before)


def _child(code: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", f"{code}\nprint('ready', flush=True)\nimport time; time.sleep(60)"],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


def test_a_child_that_exits_by_itself_is_only_waited_for() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    assert end_child(proc) == 3


def test_a_child_that_ignores_sigint_gets_sigterm() -> None:
    proc = _child("import signal; signal.signal(signal.SIGINT, signal.SIG_IGN)")
    assert end_child(proc, own_exit_s=0.1) == -signal.SIGTERM


def test_a_child_that_ignores_sigterm_too_is_killed_in_bounded_time() -> None:
    proc = _child(
        "import signal; [signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)]"
    )
    began = time.monotonic()
    assert end_child(proc, own_exit_s=0.1) == -signal.SIGKILL
    assert time.monotonic() - began < 0.1 + interrupts.TERM_EXIT_S + 1.0


def test_the_ui_command_fills_the_start_form_and_offers_every_architecture() -> None:
    argv = locust_ui_command(BenchSettings(locust_ui_port=18089))
    assert argv[:5] == [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]

    def option(name: str) -> str:
        return argv[argv.index(name) + 1]

    assert (option("--web-host"), option("--web-port")) == ("127.0.0.1", "18089")
    assert (option("--users"), option("--spawn-rate")) == (str(UI_USERS), str(UI_SPAWN_RATE))
    assert "--class-picker" in argv and "--headless" not in argv and "--autostart" not in argv
    assert argv[-len(USER_CLASSES) :] == list(USER_CLASSES.values())
    assert "--host" not in argv  # Locust's one host would override every class's own service URL
    assert UI_SPAWN_RATE <= UI_USERS


def test_the_ui_port_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert BenchSettings().locust_ui_port == 8089
    monkeypatch.setenv("LOCUST_UI_PORT", "18090")
    assert BenchSettings().locust_ui_port == 18090
