"""Ctrl-C for the commands that own processes (``scoring-bench bench``, ``scoring-bench locust-ui``).

One SIGINT or SIGTERM must stop the command and everything it started, whatever state its children are
in. Two things stood in the way:

- A shell that starts a command in the background without job control (``make locust-ui &`` in a
  script, or in a tool's shell) starts it with SIGINT *ignored* (POSIX), and every process inherits
  that: Python then installs no KeyboardInterrupt, make and Locust ignore it too, and a Ctrl-C sent to
  the whole process group does nothing at all. SIGTERM killed the command without its ``finally``
  blocks, leaving the stack's services (each in a session of its own) running on their ports.
- A second Ctrl-C while the command stops its processes cut that cleanup short.

:func:`stop_on_signals` installs one handler for both signals whatever the inherited disposition: the
first raises KeyboardInterrupt in the main thread, later ones are only acknowledged, so the cleanup that
follows runs to its end (every wait in it is bounded). Children started meanwhile inherit the default
disposition (a handler is reset at exec; an ignored signal would stay ignored).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
OWN_EXIT_S = 2.0  # a child that got the terminal's Ctrl-C too: time to exit on its own (Locust's summary)
TERM_EXIT_S = 2.0  # after SIGTERM, before SIGKILL


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, the first SIGINT or SIGTERM raises KeyboardInterrupt; later ones are ignored
    (said on stderr) so the cleanup is not interrupted. The previous handlers are restored after it.
    Only in the main thread (Python's signal handlers live there)."""
    received: list[int] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        if received:
            os.write(2, b"already stopping: the processes started are being stopped\n")
            return
        received.append(signum)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def end_child(proc: subprocess.Popen[bytes], own_exit_s: float = OWN_EXIT_S) -> int:
    """Stop a child that may not react to Ctrl-C (a Locust spinning on a dead target; one that inherited
    an ignored SIGINT): ``own_exit_s`` for it to exit by itself, then SIGTERM, then SIGKILL. Returns its
    exit status. Bounded: at most ``own_exit_s + TERM_EXIT_S`` and a reap."""
    for wait_s, then in ((own_exit_s, proc.terminate), (TERM_EXIT_S, proc.kill)):
        try:
            return proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            then()
    return proc.wait()
