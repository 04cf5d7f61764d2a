"""The faults themselves, on a running stack: each :class:`Injection` begins (kills, stops or restarts
something) and ends (restarts or continues it, or waits for its server to replace it), and notes what it
did. What to inject is decided in :mod:`benchmark.faults.plan`.

Every process of the stack leads its own process group (the supervisor starts each in a session of its
own), so a signal to the group reaches a server's master and its workers alike.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Protocol

import psutil

from benchmark.faults.plan import Fault
from scoring_bench.core.endpoints import HEALTH_PATH
from scoring_bench.stack.probes import check_health
from scoring_bench.stack.servers import service
from scoring_bench.stack.supervisor import REDIS_NAME, StackError, StackState, Supervisor, state_path

RABBITMQCTL = "rabbitmqctl"
RABBITMQCTL_TIMEOUT_S = 120.0
UVICORN_CHILD = "spawn_main"  # how a uvicorn worker process's command line reads (multiprocessing spawn)
GRANIAN = "granian"  # in its main process's command line, and its forked workers' (the same)


class Injection(Protocol):
    def begin(self) -> str:
        """Inject the fault; what was done."""

    def end(self) -> str:
        """End it (restart, continue, or wait for the server's own replacement); what was done."""


def record_pid(supervisor: Supervisor, name: str) -> int:
    """The pid of ``name`` in the stack's current state (restarts change it)."""
    state = StackState.load(state_path(supervisor.settings))
    if state is None:
        raise StackError("the stack is not running")
    for record in state.processes:
        if record.name == name and record.process() is not None:
            return record.pid
    raise StackError(f"{name} is not running")


def signal_group(pid: int, sig: signal.Signals) -> None:
    os.killpg(pid, sig)


class KillRestart:
    """SIGKILL a process's whole group; at the end, the supervisor starts it again and waits until it
    is ready (Redis: reloaded from its append-only file, or seeded again)."""

    def __init__(self, supervisor: Supervisor, target: str, say: Callable[[str], None]) -> None:
        self.supervisor, self.target, self.say = supervisor, target, say

    def begin(self) -> str:
        pid = record_pid(self.supervisor, self.target)
        signal_group(pid, signal.SIGKILL)
        return f"SIGKILL to {self.target} (process group {pid})"

    def end(self) -> str:
        said: list[str] = []
        self.supervisor.say = said.append
        try:
            record = self.supervisor.restart(self.target)
        finally:
            self.supervisor.say = self.say
        restarted = f"{self.target} restarted (pid {record.pid}) and ready"
        return "; ".join([restarted, *said]) if self.target == REDIS_NAME else restarted


class Freeze:
    """SIGSTOP a process's whole group; SIGCONT at the end."""

    def __init__(self, supervisor: Supervisor, target: str) -> None:
        self.supervisor, self.target = supervisor, target
        self.pid: int | None = None

    def begin(self) -> str:
        self.pid = record_pid(self.supervisor, self.target)
        signal_group(self.pid, signal.SIGSTOP)
        return f"SIGSTOP to {self.target} (process group {self.pid})"

    def end(self) -> str:
        if self.pid is None:
            return "nothing was stopped"
        signal_group(self.pid, signal.SIGCONT)
        return f"SIGCONT to {self.target} (process group {self.pid})"


def worker_processes(master: psutil.Process) -> list[psutil.Process]:
    """A server's worker processes: gunicorn's master's children; uvicorn's spawned children (not
    multiprocessing's resource tracker); granian's, forked (its own command line) or spawned."""
    children = master.children()
    if "gunicorn" in " ".join(master.cmdline()):
        return children
    marks = (UVICORN_CHILD, GRANIAN) if GRANIAN in " ".join(master.cmdline()) else (UVICORN_CHILD,)
    found = []
    for child in children:
        try:
            if any(mark in " ".join(child.cmdline()) for mark in marks):
                found.append(child)
        except psutil.Error:
            continue
    return found


class KillChild:
    """SIGKILL one worker process of a server; at the end, wait until its master has as many workers
    again (it starts the replacement by itself) and the server answers its health check."""

    def __init__(self, supervisor: Supervisor, target: str, timeout_s: float) -> None:
        self.supervisor, self.target, self.timeout_s = supervisor, target, timeout_s
        self.master: psutil.Process | None = None
        self.workers = 0
        self.killed: int | None = None

    def begin(self) -> str:
        self.master = psutil.Process(record_pid(self.supervisor, self.target))
        workers = worker_processes(self.master)
        if not workers:
            raise StackError(f"{self.target} has no worker process to kill")
        self.workers = len(workers)
        victim = workers[0]
        self.killed = victim.pid
        victim.kill()
        return f"SIGKILL to worker {victim.pid} of {self.target} ({self.workers} workers)"

    def end(self) -> str:
        if self.master is None:
            return "nothing was killed"
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            workers = [p.pid for p in worker_processes(self.master)]
            if len(workers) >= self.workers and self.killed not in workers and self._healthy():
                return f"{self.target} runs {len(workers)} workers again and is healthy"
            time.sleep(0.05)
        raise StackError(f"{self.target} did not replace its killed worker within {self.timeout_s:g} s")

    def _healthy(self) -> bool:
        return check_health(service(self.target).url(self.supervisor.settings, HEALTH_PATH))[0]


class RabbitRestart:
    """Stop and start the RabbitMQ app of a node (``rabbitmqctl -n NODE stop_app``, ``start_app``, then
    ``await_startup``): the broker goes away and comes back with its durable queues and persistent
    messages; the Erlang VM stays up."""

    def __init__(self, node: str) -> None:
        self.node = node

    def _ctl(self, *args: str) -> None:
        binary = shutil.which(RABBITMQCTL)
        if binary is None:
            raise StackError("rabbitmqctl is not on PATH: the broker cannot be restarted")
        subprocess.run(
            [binary, "-n", self.node, *args],
            check=True,
            capture_output=True,
            timeout=RABBITMQCTL_TIMEOUT_S,
        )

    def begin(self) -> str:
        self._ctl("stop_app")
        return f"rabbitmqctl -n {self.node} stop_app"

    def end(self) -> str:
        self._ctl("start_app")
        self._ctl("await_startup")
        return f"rabbitmqctl -n {self.node} start_app; await_startup"


def injection(fault: Fault, supervisor: Supervisor, node: str, say: Callable[[str], None]) -> Injection:
    """The injection of ``fault`` on the stack ``supervisor`` runs (``node``: RabbitMQ's, for its restart)."""
    if fault.action == "kill-restart":
        return KillRestart(supervisor, fault.target, say)
    if fault.action == "freeze":
        return Freeze(supervisor, fault.target)
    if fault.action == "kill-child":
        return KillChild(supervisor, fault.target, supervisor.settings.health_timeout_s)
    return RabbitRestart(node)
