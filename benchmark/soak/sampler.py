"""Every process of every service, one row each per sample (the soak): memory, open descriptors, threads
and TCP connections — what grows when something leaks.

Unlike :class:`benchmark.sampler.ResourceSampler`, which sums a service's process tree, this keeps each
process apart (a gunicorn master and its workers, uvicorn's workers, the Celery worker's pool, redis-server),
so one leaking worker shows as itself. Columns (:data:`COLUMNS`)::

    t            epoch s of the sample
    service      the stack's name of the process tree (scoring-sync, model-async, queue-worker, redis, ...)
    pid, ppid    the process and its parent
    process      its name (gunicorn, python, redis-server, ...)
    rss_mb       resident memory, MiB
    fds          open file descriptors
    threads      threads
    connections  TCP sockets it holds that are not listening (established, closing, ...)
"""

from __future__ import annotations

import csv
import time
from typing import Any

import psutil

from benchmark.sampler import BackgroundSampler, Targets

COLUMNS = ("t", "service", "pid", "ppid", "process", "rss_mb", "fds", "threads", "connections")


def tree(roots: list[int]) -> list[psutil.Process]:
    """The root processes and all their descendants (those that exited meanwhile are left out)."""
    found: list[psutil.Process] = []
    for pid in roots:
        try:
            root = psutil.Process(pid)
            found += [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
    return found


def connections(proc: psutil.Process) -> int:
    """TCP sockets of ``proc`` that are not listening."""
    return sum(1 for c in proc.net_connections(kind="tcp") if c.status != psutil.CONN_LISTEN)


def process_row(now: float, service: str, proc: psutil.Process) -> list[str] | None:
    """One process's row, or None when it exited (or cannot be read) meanwhile."""
    try:
        with proc.oneshot():
            row = [
                f"{now:.3f}",
                service,
                str(proc.pid),
                str(proc.ppid()),
                proc.name(),
                f"{proc.memory_info().rss / 2**20:.2f}",
                str(proc.num_fds()),
                str(proc.num_threads()),
            ]
        return [*row, str(connections(proc))]
    except psutil.Error:
        return None


class ProcessSampler(BackgroundSampler):
    """Each process of the targets' trees, sampled every ``interval_s`` (and once at the start) until the
    ``with`` block ends."""

    def __init__(self, path: Any, targets: Targets, interval_s: float = 5.0) -> None:
        super().__init__(path, interval_s)
        self.targets = targets

    def _sample(self, writer: Any) -> None:  # a csv writer
        now = time.time()
        for service, roots in self.targets().items():
            for proc in tree(roots):
                row = process_row(now, service, proc)
                if row is not None:
                    writer.writerow(row)

    def _run(self) -> None:
        with open(self.path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            while True:
                self._sample(writer)
                f.flush()
                if self._stop.wait(self.interval_s):
                    break
