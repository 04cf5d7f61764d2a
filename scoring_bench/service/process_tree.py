"""The processes of one service and the CPU and memory they use, read from ``/proc`` (Linux).

A service is often several processes (a gunicorn master and its workers, uvicorn's supervisor and its
workers, a Celery worker and its prefork pool), and a scrape is answered by any one of them; the
``process_*`` metrics must be the whole service's whichever answers. The service is the process tree
rooted at its **main process**: the topmost ancestor of this process that has the same
``PROMETHEUS_MULTIPROC_DIR`` in its environment (each service gets a directory of its own: the local
supervisor sets one per service, the images one per container). Under the supervisor that is the process
it started; in a container, PID 1 (the server itself, or an init that runs it). Without the variable
(a single-process service), the tree rooted at this process.

CPU is monotonic: each live process counts ``utime + stime`` (all its threads, dead ones too) **plus**
``cutime + cstime``, the CPU of its children that ended and were reaped (waited for). A worker that
exits therefore moves its CPU into its parent's count instead of taking it away (every server here
reaps its workers: gunicorn's master, uvicorn's supervisor, Celery's pool). The tree is read top-down
(a parent before its children), so a child reaped between the two reads is missed once, never counted
twice; :class:`Floor` then keeps the reported total from falling (see there). Lost for good: a process
whose parent left the tree before it (an orphan reparented outside) and children auto-reaped with
``SIGCHLD`` ignored; none of the servers here do either.

Cost: a scrape lists ``/proc`` (~50 µs for 100 processes) and reads ``/proc/<pid>/stat`` of the service's
processes and of processes it has not seen yet; every ``FULL_SCAN_S`` it reads them all again (a pid
number reused by a new process would otherwise keep its old parent here).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
ROOT_ENV = "PROMETHEUS_MULTIPROC_DIR"
FULL_SCAN_S = 10.0
FLOOR_FILE = "process_cpu_floor"  # in the service's PROMETHEUS_MULTIPROC_DIR (not *.db: not a metric file)
TICKS = float(os.sysconf("SC_CLK_TCK"))
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcStat:
    """What one ``/proc/<pid>/stat`` line tells about the process."""

    pid: int
    ppid: int
    start_ticks: int  # since boot, in clock ticks
    cpu_ticks: int  # utime + stime + cutime + cstime
    rss_pages: int


def parse_stat(pid: int, raw: bytes) -> ProcStat:
    """A ``/proc/<pid>/stat`` line; the command name (field 2) may hold spaces and parentheses, so
    the fields are counted from its last ``)``."""
    fields = raw[raw.rindex(b")") + 2 :].split()
    # fields[0] is field 3 of proc(5): state, ppid, ... utime is 14, rss 24
    return ProcStat(
        pid=pid,
        ppid=int(fields[1]),
        start_ticks=int(fields[19]),
        cpu_ticks=int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14]),
        rss_pages=int(fields[21]),
    )


def read_stat(pid: int, proc: Path = PROC) -> ProcStat | None:
    """The process's stat, or None when it is gone (or was never there)."""
    try:
        with open(proc / str(pid) / "stat", "rb") as f:
            return parse_stat(pid, f.read())
    except (OSError, ValueError, IndexError):
        return None


def environ_value(pid: int, key: str, proc: Path = PROC) -> str | None:
    """``key``'s value in the environment process ``pid`` was started with (None: unset or unreadable)."""
    try:
        raw = (proc / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    prefix = key.encode() + b"="
    for entry in raw.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix) :].decode(errors="replace")
    return None


def find_root(pid: int, value: str | None, key: str = ROOT_ENV, proc: Path = PROC) -> int:
    """The topmost ancestor of ``pid`` (itself included) started with ``key=value``; ``pid`` when
    ``value`` is None (nothing marks the service's processes)."""
    if value is None:
        return pid
    root = pid
    while True:
        stat = read_stat(root, proc)
        if stat is None or stat.ppid <= 0 or environ_value(stat.ppid, key, proc) != value:
            return root
        root = stat.ppid


def boot_time(proc: Path = PROC) -> float:
    with open(proc / "stat", "rb") as f:
        for line in f:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    return 0.0


@dataclass(frozen=True)
class Totals:
    cpu_seconds: float
    rss_bytes: int
    processes: int
    start_time: float  # the main process's, seconds since the epoch


class ProcessTree:
    """The processes of the tree rooted at ``root``, read again at each :meth:`totals`; nothing once the
    root is gone (the service is stopping; a new main process is another service run)."""

    def __init__(self, root: int, proc: Path = PROC) -> None:
        self.root = root
        self.proc = proc
        self._root_start: int | None = None
        self._parents: dict[int, int] = {}  # pid -> ppid, of every process seen
        self._scanned_at = float("-inf")
        self._boot = boot_time(proc)

    def _pids(self) -> list[int]:
        return [int(name) for name in os.listdir(self.proc) if name.isdigit()]

    def _refresh(self, pids: list[int]) -> None:
        """Learn the parent of every process not seen yet (of all of them every ``FULL_SCAN_S``)."""
        now = time.monotonic()
        full = now - self._scanned_at >= FULL_SCAN_S
        if full:
            self._parents.clear()
            self._scanned_at = now
        else:
            alive = set(pids)
            for gone in [pid for pid in self._parents if pid not in alive]:
                del self._parents[gone]
        for pid in pids:
            if pid not in self._parents and (stat := read_stat(pid, self.proc)) is not None:
                self._parents[pid] = stat.ppid

    def stats(self) -> list[ProcStat]:
        """Every live process of the tree, parents before children (empty when the root is gone)."""
        self._refresh(self._pids())
        children: dict[int, list[int]] = defaultdict(list)
        for pid, ppid in self._parents.items():
            children[ppid].append(pid)
        found: list[ProcStat] = []
        queue = [self.root]
        while queue:
            pid = queue.pop(0)
            stat = read_stat(pid, self.proc)
            if stat is None:
                continue
            if pid == self.root:
                if self._root_start is None:
                    self._root_start = stat.start_ticks
                elif stat.start_ticks != self._root_start:  # the number now belongs to another process
                    return []
            elif stat.ppid != self._parents.get(pid):  # reparented since seen: no longer ours
                self._parents[pid] = stat.ppid
                continue
            found.append(stat)
            queue.extend(children.get(pid, ()))
        return found

    def totals(self) -> Totals:
        stats = self.stats()
        start = self._boot + (self._root_start or 0) / TICKS
        return Totals(
            cpu_seconds=sum(s.cpu_ticks for s in stats) / TICKS,
            rss_bytes=sum(s.rss_pages for s in stats) * PAGE_SIZE,
            processes=len(stats),
            start_time=start,
        )


class Floor:
    """The highest CPU total reported so far, shared by the service's processes through a small file in
    its ``PROMETHEUS_MULTIPROC_DIR`` (this process's own memory without one): a total read while a child
    was being reaped (missed once, :class:`ProcessTree`) is reported as the floor instead of a fall,
    which Prometheus would take for a counter reset. The file belongs to the run of the service whose
    main process started at ``start_time``; another start (the supervisor's restart) starts it again."""

    def __init__(self, folder: Path | None) -> None:
        self.path = folder / FLOOR_FILE if folder is not None else None
        self._value = 0.0

    def apply(self, value: float, start_time: float) -> float:
        if self.path is None:
            self._value = max(self._value, value)
            return self._value
        try:
            with open(self.path, "a+") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                f.seek(0)
                stored = f.read().split()
                floor = float(stored[1]) if len(stored) == 2 and float(stored[0]) == start_time else 0.0
                if value > floor:
                    f.seek(0)
                    f.truncate()
                    f.write(f"{start_time!r} {value!r}")
                    return value
                return floor
        except (OSError, ValueError):
            self._value = max(self._value, value)
            return self._value
