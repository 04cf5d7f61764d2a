"""Resource sampling (psutil): CPU and memory of every process of the stack and of the
load generator, while a load phase runs.

Rows are ``t, name, cpu_percent, rss_mb``; ``cpu_percent`` is in percent of ONE core (a
service's whole process tree summed), and the ``machine`` row is the whole machine on the
same scale (200 = two cores busy). The ``others`` row is the machine less every sampled process
and this one: the CPU of processes that are not the run's (another job on the machine), which would
make the run's numbers lower than the machine can do.
"""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import psutil

Targets = Callable[[], dict[str, list[int]]]  # name -> root pids, asked again at every sample


class BackgroundSampler:
    """A daemon thread running :meth:`_run` (which writes ``path``) for the length of a ``with``."""

    def __init__(self, path: Path, interval_s: float) -> None:
        self.path = path
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        raise NotImplementedError


class ResourceSampler(BackgroundSampler):
    """CPU and memory of the target processes, sampled until the ``with`` block ends."""

    def __init__(self, path: Path, targets: Targets, interval_s: float = 0.5) -> None:
        super().__init__(path, interval_s)
        self.targets = targets
        self._procs: dict[int, psutil.Process] = {}
        self._primed: set[int] = set()  # pids whose CPU counter has a previous sample
        self._me = psutil.Process()

    def _process(self, pid: int) -> psutil.Process | None:
        proc = self._procs.get(pid)
        if proc is None:
            try:
                proc = psutil.Process(pid)
            except psutil.Error:
                return None
            self._procs[pid] = proc
        return proc

    def _tree(self, roots: list[int]) -> list[psutil.Process]:
        procs = []
        for pid in roots:
            root = self._process(pid)
            if root is None:
                continue
            procs.append(root)
            try:
                procs += [p for c in root.children(recursive=True) if (p := self._process(c.pid))]
            except psutil.Error:
                pass
        return procs

    def _sample(self, writer: Any) -> None:  # a csv writer
        now = time.time()
        ours = self._me.cpu_percent(None)
        for name, roots in self.targets().items():
            cpu = rss = 0.0
            for proc in self._tree(roots):
                try:
                    with proc.oneshot():
                        percent = proc.cpu_percent(None)
                        rss += proc.memory_info().rss
                except psutil.Error:
                    continue
                if proc.pid in self._primed:  # a first reading covers no interval: not a rate
                    cpu += percent
                self._primed.add(proc.pid)
            writer.writerow([f"{now:.3f}", name, f"{cpu:.1f}", f"{rss / 2**20:.1f}"])
            ours += cpu
        machine = psutil.cpu_percent(None) * (psutil.cpu_count() or 1)
        writer.writerow(
            [f"{now:.3f}", "machine", f"{machine:.1f}", f"{psutil.virtual_memory().used / 2**20:.1f}"]
        )
        writer.writerow([f"{now:.3f}", "others", f"{max(machine - ours, 0.0):.1f}", ""])

    def _run(self) -> None:
        psutil.cpu_percent(None)
        self._me.cpu_percent(None)
        with open(self.path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["t", "name", "cpu_percent", "rss_mb"])
            while not self._stop.wait(self.interval_s):
                self._sample(writer)
                f.flush()
