"""Prometheus metrics of every service: the metric objects, recording them, rendering ``/metrics``.

The adapters (flask_adapter, fastapi_adapter) record every HTTP request; the scoring handlers
and the queue's worker record their Timings; the queue API counts submissions and reads the
broker's queue length when scraped; the Celery worker counts its tasks and serves its own
``/metrics`` (it has no HTTP port otherwise: :func:`start_worker_server`).

Multiprocess mode: a server with several worker processes (gunicorn, ``uvicorn --workers``, a
prefork Celery pool) answers each scrape from one process, so every process writes its values
to files in ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` sums them (prometheus-client's
``MultiProcessCollector``). The variable must be set before ``prometheus_client`` is imported:
the supervisor (and, in containers, ``scoring_bench.stack.serve``) gives each service a fresh
directory of its own at start. Without it, the numbers are the answering process's only.

``METRICS_ENABLED=false`` installs nothing (no hooks, no ``/metrics``), so the benchmark can
measure what the metrics cost.

On an event loop (the FastAPI services) a request's observations are tallied in this process and
written to the metric objects at most ``METRICS_FLUSH_S`` later, in one go per label set
(:class:`BufferedServiceMetrics`): in multiprocess mode every ``inc`` takes a lock and writes the
shared file, ten of them a scoring request (~16 us), where a tally costs a list increment. The
process's own ``/metrics`` flushes before it renders; another worker's last ``METRICS_FLUSH_S``
arrives with its next flush; the process flushes when it exits. Threaded servers (gunicorn's
gthread, the Celery worker) write through, as with ``METRICS_FLUSH_S=0``.

Resources: ``process_cpu_seconds_total``, ``process_resident_memory_bytes`` and
``process_start_time_seconds`` (labelled ``service``) are the WHOLE service's, every process of it,
whichever process answers (:class:`ServiceProcessCollector`, :mod:`.process_tree`); the benchmark
samples them (``benchmark/metrics_sampler.py``). A scrape asking only for those
(``/metrics?name[]=process_cpu_seconds_total&...``, prometheus-client's own parameter) reads ``/proc``
and nothing else: the benchmark scrapes every 0.5 s under load.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import logging
import os
import time
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from scoring_bench.core.settings import Settings
from scoring_bench.core.timing import FEATURE_STORE_STEP, MODEL_STEP_PREFIX, Timings
from scoring_bench.service.process_tree import Floor, ProcessTree, find_root

log = logging.getLogger("scoring_bench")

METRICS_PATH = "/metrics"
CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"  # the route label of a path no route matched (never the raw path)
# A method outside these is labelled "other": a client must not be able to grow the label set.
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

# Scoring requests take 50-100 ms (two 40-50 ms model calls), feature-store reads about 1 ms.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
FEATURE_STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
MODEL_CALL_BUCKETS = (0.01, 0.025, 0.04, 0.045, 0.05, 0.06, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)
END_TO_END_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)

REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP requests by matched route template and status.",
    ["service", "route", "method", "status"],
    buckets=REQUEST_BUCKETS,
)
IN_PROGRESS = Gauge(
    "http_requests_in_progress",
    "HTTP requests being served.",
    ["service"],
    multiprocess_mode="livesum",
)
FEATURE_STORE_READ = Histogram(
    "feature_store_read_seconds",
    "Feature-store reads of scoring requests and tasks.",
    ["service"],
    buckets=FEATURE_STORE_BUCKETS,
)
MODEL_CALL = Histogram(
    "model_call_seconds",
    "Model API calls of scoring requests and tasks.",
    ["service"],
    buckets=MODEL_CALL_BUCKETS,
)
TASKS_SUBMITTED = Counter("queue_tasks_submitted", "Scoring tasks the queue API published.", ["service"])
TASKS_STARTED = Counter("queue_tasks_started", "Scoring task runs a worker began (retries too).", ["service"])
TASKS_SUCCEEDED = Counter("queue_tasks_succeeded", "Scoring tasks that ended in SUCCESS.", ["service"])
TASKS_FAILED = Counter("queue_tasks_failed", "Scoring tasks that ended in FAILURE.", ["service"])
TASK_END_TO_END = Histogram(
    "queue_task_end_to_end_seconds",
    "From the API's submit to the task's stored result (retries included).",
    ["service"],
    buckets=END_TO_END_BUCKETS,
)


def multiproc_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


class ServiceMetrics:
    """The metrics of one service, with the children of its fixed labels looked up once.

    A request costs one dict lookup for its (route, method, status) child, the observation and
    the gauge's two updates: the label sets are bounded (route templates, a fixed set of methods,
    the statuses the service answers), so the cache is too.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self.in_progress = IN_PROGRESS.labels(service)
        self.feature_store = FEATURE_STORE_READ.labels(service)
        self.model_call = MODEL_CALL.labels(service)
        self._durations: dict[tuple[str, str, int], Any] = {}

    def request_started(self) -> None:
        self.in_progress.inc()

    def request_finished(self, route: str, method: str, status: int, seconds: float) -> None:
        """A request ended (whatever its outcome): one observation, one fewer in progress."""
        key = (route, method, status)
        child = self._durations.get(key)
        if child is None:
            child = REQUEST_DURATION.labels(self.service, route, method_label(method), str(status))
            self._durations[key] = child
        child.observe(seconds)
        self.in_progress.dec()

    def observe_timings(self, timings: Timings) -> None:
        """The feature-store read and each model call of one scoring request or task."""
        self.observe_steps(timings.steps)

    def observe_steps(self, steps: Mapping[str, float]) -> None:
        """The same, from a task's ``timings`` (ms by step; other steps are left out)."""
        for step, ms in steps.items():
            if step == FEATURE_STORE_STEP:
                self.feature_store.observe(ms / 1000.0)
            elif step.startswith(MODEL_STEP_PREFIX):
                self.model_call.observe(ms / 1000.0)


class _Tally:
    """One histogram child's observations not yet written to it: a count per bucket and their sum."""

    __slots__ = ("bounds", "child", "counts", "total")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.bounds: list[float] = list(child._upper_bounds)  # the last is +Inf
        self.counts = [0] * len(self.bounds)
        self.total = 0.0

    def observe(self, amount: float) -> None:
        """As ``Histogram.observe``: the first bucket whose upper bound is at least ``amount``."""
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.total += amount

    def flush(self) -> None:
        counts = self.counts
        if not any(counts):
            return
        buckets = self.child._buckets  # prometheus_client keeps each bucket's own count (not cumulative)
        for i, n in enumerate(counts):
            if n:
                buckets[i].inc(n)
                counts[i] = 0
        self.child._sum.inc(self.total)
        self.total = 0.0


class BufferedServiceMetrics(ServiceMetrics):
    """The same metrics, tallied in the process and written at most ``flush_s`` after the first
    unwritten observation (a timer on the running event loop; without a loop, at once).

    For one event loop's thread only: the tallies take no lock. ``http_requests_in_progress``
    is this process's count at the last flush.
    """

    def __init__(self, service: str, flush_s: float) -> None:
        super().__init__(service)
        self.flush_s = flush_s
        self._active = 0
        self._active_written = 0
        self._feature_store = _Tally(self.feature_store)
        self._model_call = _Tally(self.model_call)
        self._tallies: dict[tuple[str, str, int], _Tally] = {}
        self._timer: asyncio.TimerHandle | None = None
        _buffered.append(self)

    def _pending(self) -> None:
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(self.flush_s, self.flush)

    def request_started(self) -> None:
        self._active += 1
        self._pending()

    def request_finished(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        tally = self._tallies.get(key)
        if tally is None:
            child = REQUEST_DURATION.labels(self.service, route, method_label(method), str(status))
            tally = self._tallies[key] = _Tally(child)
        tally.observe(seconds)
        self._active -= 1
        self._pending()

    def observe_steps(self, steps: Mapping[str, float]) -> None:
        for step, ms in steps.items():
            if step == FEATURE_STORE_STEP:
                self._feature_store.observe(ms / 1000.0)
            elif step.startswith(MODEL_STEP_PREFIX):
                self._model_call.observe(ms / 1000.0)
        self._pending()

    def flush(self) -> None:
        """Write every tally to its metric (the timer's callback; before a render; at exit)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        delta = self._active - self._active_written
        if delta:
            self.in_progress.inc(delta)
            self._active_written = self._active
        self._feature_store.flush()
        self._model_call.flush()
        for tally in self._tallies.values():
            tally.flush()


_buffered: list[BufferedServiceMetrics] = []


@atexit.register
def flush_all() -> None:
    """Write what this process's buffered recorders hold (on their loop's thread, or at exit)."""
    for each in _buffered:
        each.flush()


@functools.cache
def _service_metrics(service: str, flush_s: float) -> ServiceMetrics:
    return BufferedServiceMetrics(service, flush_s) if flush_s > 0 else ServiceMetrics(service)


def recorder(settings: Settings, service: str, on_loop: bool = False) -> ServiceMetrics | None:
    """This process's metrics of ``service`` (one object per service), None when disabled.
    ``on_loop``: recorded from one event loop's thread only, so tallied (``METRICS_FLUSH_S``)."""
    if not settings.metrics_enabled:
        return None
    return _service_metrics(service, settings.metrics_flush_s if on_loop else 0.0)


class QueueMetrics:
    """The queue's counters and end-to-end latency (the API submits, the worker runs)."""

    def __init__(self, service: str) -> None:
        self.submitted = TASKS_SUBMITTED.labels(service)
        self.started = TASKS_STARTED.labels(service)
        self.succeeded = TASKS_SUCCEEDED.labels(service)
        self.failed = TASKS_FAILED.labels(service)
        self.end_to_end = TASK_END_TO_END.labels(service)

    def task_ended(self, succeeded: bool, submitted_at: float | None, now: float | None = None) -> None:
        """A task reached SUCCESS or FAILURE; ``submitted_at`` is the API's ``time.time()`` at
        submit (wall clocks: on another host, the clocks' offset is in the number)."""
        (self.succeeded if succeeded else self.failed).inc()
        if submitted_at is not None:
            self.end_to_end.observe(max(0.0, (time.time() if now is None else now) - submitted_at))


# --- /metrics -------------------------------------------------------------------------------------


class _LiveMultiProcessCollector(MultiProcessCollector):
    """MultiProcessCollector that first drops the live gauges of dead processes.

    gunicorn tells us when a worker exits (``child_exit``), but uvicorn's workers and Celery's
    prefork children have no such hook: a process that died would keep its last in-progress
    count in the sum. The directory is one service's, on this host: a pid that no longer exists
    is a process of ours that ended.
    """

    def collect(self) -> Iterable[Metric]:
        for pid in _dead_pids(Path(self._path)):
            mark_process_dead(pid, self._path)
        return super().collect()  # type: ignore[no-any-return]


def _dead_pids(path: Path) -> set[int]:
    pids = set()
    for file in path.glob("gauge_live*_*.db"):
        pid = file.stem.rpartition("_")[2]
        if pid.isdigit() and not _alive(int(pid)):
            pids.add(int(pid))
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Proxy:
    """Another registry's metrics, as one collector (the default registry, single-process), less its own
    process metrics: :class:`ServiceProcessCollector` gives the whole service's under the same names."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return [m for m in self.registry.collect() if not m.name.startswith("process_")]


PROCESS_CPU = "process_cpu_seconds_total"
PROCESS_RSS = "process_resident_memory_bytes"
PROCESS_START = "process_start_time_seconds"
PROCESS_COUNT = "service_processes"
PROCESS_NAMES = (PROCESS_CPU, PROCESS_RSS, PROCESS_START, PROCESS_COUNT)


class ServiceProcessCollector:
    """CPU and memory of every process of the service (:mod:`.process_tree`), labelled ``service``.

    The service's main process is found once (the topmost ancestor with this ``PROMETHEUS_MULTIPROC_DIR``);
    each scrape reads the tree. The CPU counter never falls while that main process lives (:class:`Floor`);
    a new main process (a restart) is a new counter, with a new ``process_start_time_seconds``.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        folder = multiproc_dir()
        # the variable's value as written (/proc/<pid>/environ is compared with it), not as a Path
        self._tree = ProcessTree(find_root(os.getpid(), os.environ.get(MULTIPROC_ENV) or None))
        self._floor = Floor(folder)

    def describe(self) -> Iterable[Metric]:
        """The names (so a scrape asking only for them, ``name[]``, collects nothing else)."""
        return self._families(0.0, 0.0, 0.0, 0)

    def collect(self) -> Iterable[Metric]:
        totals = self._tree.totals()
        if not totals.processes:
            return []
        cpu = self._floor.apply(totals.cpu_seconds, totals.start_time)
        return self._families(cpu, float(totals.rss_bytes), totals.start_time, totals.processes)

    def _families(self, cpu: float, rss: float, start: float, processes: int) -> list[Metric]:
        label = ["service"]
        families: list[Metric] = [
            CounterMetricFamily(
                PROCESS_CPU, "CPU time (user + system) of every process of the service.", labels=label
            ),
            GaugeMetricFamily(
                PROCESS_RSS, "Resident memory of the service's processes, summed.", labels=label
            ),
            GaugeMetricFamily(PROCESS_START, "Start time of the service's main process.", labels=label),
            GaugeMetricFamily(
                PROCESS_COUNT, "Processes counted in the service's process_* metrics.", labels=label
            ),
        ]
        for family, value in zip(families, (cpu, rss, start, float(processes)), strict=True):
            family.add_metric([self.service], value)  # type: ignore[attr-defined]
        return families


_registry: CollectorRegistry | None = None


def registry() -> CollectorRegistry:
    """What ``/metrics`` renders in this process, made once: every process's files summed
    (multiprocess mode) or this process's metrics, plus the collectors of :func:`add_collector`."""
    global _registry
    if _registry is None:
        from prometheus_client import REGISTRY

        reg = CollectorRegistry(auto_describe=False)
        path = multiproc_dir()
        if path is not None:
            _LiveMultiProcessCollector(reg, str(path))  # registers itself
        else:
            reg.register(_Proxy(REGISTRY))
        _registry = reg
    return _registry


_collectors: dict[str, Collector] = {}


def add_collector(name: str, collector: Collector) -> None:
    """A collector read at each scrape (the queue's depth); one per name (an app built again in
    the same process replaces its collector instead of reporting twice)."""
    previous = _collectors.pop(name, None)
    if previous is not None:
        registry().unregister(previous)
    registry().register(collector)
    _collectors[name] = collector


def install_process_collector(service: str) -> None:
    """The whole service's ``process_*`` metrics in this process's ``/metrics`` (once per process)."""
    add_collector("process", ServiceProcessCollector(service))


def render(names: Sequence[str] = ()) -> bytes:
    """The exposition; ``names`` (a scrape's ``name[]``): only those metrics, and only their collectors
    run (prometheus-client's restricted registry: the multiprocess files are not read for ``process_*``)."""
    reg = registry()
    return generate_latest(reg.restricted_registry(names) if names else reg)


def child_exit(_server: Any, worker: Any) -> None:
    """gunicorn's ``child_exit`` hook: a worker's live gauges leave the sum when it exits."""
    if multiproc_dir() is not None:
        mark_process_dead(worker.pid)


def prepare_multiproc_dir(path: Path) -> Path:
    """An empty directory for one service's files: the previous run's would be summed in."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    return path


def start_worker_server(host: str, port: int, service: str) -> bool:
    """Serve ``/metrics`` (any path, in fact) on ``host:port`` from a daemon thread: the
    queue worker's metrics, summed over its pool's processes in multiprocess mode, and the whole
    worker's ``process_*``. False, with an error logged, when the port cannot be bound: the worker
    runs on without."""
    from prometheus_client import start_http_server

    install_process_collector(service)
    try:
        start_http_server(port, addr=host, registry=registry())
    except OSError as exc:
        log.error("metrics: cannot serve on %s:%s (%s); QUEUE_WORKER_METRICS_PORT moves it", host, port, exc)
        return False
    return True
