"""stop_processes stops a whole process group, a process it forked after the SIGTERM included."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil

from scoring_bench.stack.supervisor import ProcessRecord, port_frees, port_is_free, stop_processes
from tests.ports import free_port

# A leader that listens on a port and, on SIGTERM, forks a child that ignores SIGTERM and keeps the
# inherited socket (as a Celery prefork pool replacing its children during a warm shutdown), then exits.
LEADER = textwrap.dedent("""
    import os, signal, socket, sys, time
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(sys.argv[1])))
    sock.listen()
    def on_term(*_):
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            time.sleep(60)
            os._exit(0)
        os._exit(0)
    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    time.sleep(60)
""")


def test_a_process_forked_after_the_sigterm_is_stopped_and_frees_the_port(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", LEADER, str(port)], start_new_session=True, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        leader = psutil.Process(proc.pid)
        record = ProcessRecord("server", proc.pid, leader.create_time(), port, str(tmp_path / "log"), None)
        started = time.monotonic()
        assert stop_processes([record], timeout=2.0) == ["server"]
        assert time.monotonic() - started < 10
        group = [
            p for p in psutil.process_iter() if _pgid(p) == proc.pid and p.status() != psutil.STATUS_ZOMBIE
        ]
        assert group == []
        assert port_is_free("127.0.0.1", port)
    finally:
        for p in psutil.process_iter():
            if _pgid(p) == proc.pid:
                p.kill()
        proc.wait(timeout=10)


def _pgid(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except (OSError, psutil.Error):
        return None


def test_a_port_released_a_moment_later_counts_as_free_and_one_kept_does_not() -> None:
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    assert not port_frees("127.0.0.1", port, within_s=0.3)
    threading.Timer(0.3, held.close).start()
    assert port_frees("127.0.0.1", port, within_s=3.0)
