"""The load generators' processes (Locust, the open-loop generator, wrk): wait for one to finish, stop
them whatever happens — no process of the benchmark is ever left behind."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence

STOP_WAIT_S = 10.0  # after SIGTERM, before SIGKILL
POLL_S = 0.25


def wait(proc: subprocess.Popen[bytes], timeout_s: float, tick: Callable[[float], None]) -> None:
    """Until ``proc`` exits (``tick`` with the seconds elapsed meanwhile); raise past ``timeout_s``."""
    began = time.monotonic()
    while proc.poll() is None:
        elapsed = time.monotonic() - began
        if elapsed > timeout_s:
            raise RuntimeError(f"{proc.args!r} did not finish within {timeout_s:.0f} s")
        tick(elapsed)
        time.sleep(POLL_S)


def stop(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """Terminate every process still running, then kill what did not exit; reap them all."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_WAIT_S)
