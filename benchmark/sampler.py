"""Resource sampling: CPU and memory of every process of the stack and of the load generator, while a
load phase runs.

Rows are ``t, name, cpu_percent, rss_mb``; ``cpu_percent`` is in percent of ONE core (a
service's whole process tree summed), and the ``machine`` row is the whole machine on the
same scale (200 = two cores busy). The ``others`` row is the machine less every sampled process
and this one: the CPU of processes that are not the run's (another job on the machine), which would
make the run's numbers lower than the machine can do.

Two sources for the services (``RESOURCE_SOURCE``; an external target always uses metrics):
``psutil`` reads the process trees of the pids the runner started; ``metrics`` reads each service's own
``process_*`` metrics from its ``/metrics`` URLs, or from Prometheus with ``PROMETHEUS_URL``
(:mod:`benchmark.metrics_sampler`), which works for a stack on other machines too. The load generator,
``machine`` and ``others`` stay psutil rows of the same file; ``others`` subtracts only services whose
metrics URLs are on this machine's loopback (a remote service's CPU is not this machine's).
"""

from __future__ import annotations

import csv
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

import psutil

from benchmark.metrics_sampler import (
    MetricsTargets,
    PrometheusSource,
    Row,
    ScrapeSource,
    Sources,
    is_local,
    is_redis,
)

if TYPE_CHECKING:
    from benchmark.settings import BenchSettings

log = logging.getLogger("benchmark")

Targets = Callable[[], dict[str, list[int]]]  # name -> root pids, asked again at every sample
REDIS = "redis"  # the stack's Redis, as the supervisor names it (benchmark.analysis.phases.service_names)


class ServiceSource(Protocol):
    """Rows of services read some other way than psutil (:mod:`benchmark.metrics_sampler`)."""

    def names(self) -> set[str]: ...

    def rows(self) -> list[Row]: ...

    def drain(self, stopped_at: float) -> list[Row]: ...

    def local_names(self) -> set[str]: ...

    def close(self) -> None: ...


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

    join_timeout_s = 5.0

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.join_timeout_s)

    def _run(self) -> None:
        raise NotImplementedError


class ResourceSampler(BackgroundSampler):
    """CPU and memory of the target processes (psutil), and of the ``services`` source's services
    (their metrics; a name both have is the source's), sampled until the ``with`` block ends."""

    def __init__(
        self, path: Path, targets: Targets, interval_s: float = 0.5, services: ServiceSource | None = None
    ) -> None:
        super().__init__(path, interval_s)
        self.targets = targets
        self.services = services
        if isinstance(services, PrometheusSource) or (
            isinstance(services, Sources) and any(isinstance(s, PrometheusSource) for s in services.sources)
        ):
            self.join_timeout_s += 62.0  # its drain: the scrape after the stop
        self._procs: dict[int, psutil.Process] = {}
        self._primed: set[int] = set()  # pids whose CPU counter has a previous sample
        self._me = psutil.Process()

    @classmethod
    def from_sources(
        cls,
        path: Path,
        pid_targets: Targets,
        metrics: MetricsTargets | None = None,
        prometheus_url: str | None = None,
        interval_s: float = 0.5,
    ) -> ResourceSampler:
        """The sampler of one phase: the services of ``metrics`` (name -> its metrics URLs, summed) from
        their ``/metrics``, or from Prometheus at ``prometheus_url`` (by their ``service`` label; the URLs
        then only say which services, and which are on this machine), ``redis://`` URLs with ``INFO``,
        and every name of ``pid_targets`` not among them with psutil. No ``metrics``: psutil only."""
        if not metrics:
            return cls(path, pid_targets, interval_s)
        if not prometheus_url:
            return cls(path, pid_targets, interval_s, ScrapeSource(metrics))
        redis_info = {name: urls for name, urls in metrics.items() if urls and all(is_redis(u) for u in urls)}
        scraped = {name: urls for name, urls in metrics.items() if urls and name not in redis_info}
        local = {name for name, urls in scraped.items() if all(is_local(u) for u in urls)}
        prometheus = PrometheusSource(prometheus_url, list(scraped), local)
        source: ServiceSource = Sources(prometheus, ScrapeSource(redis_info)) if redis_info else prometheus
        return cls(path, pid_targets, interval_s, source)

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

    def _service_rows(self, writer: Any, rows: list[Row]) -> float:
        """Write the source's rows; the CPU of those on this machine (% of a core)."""
        local = self.services.local_names() if self.services is not None else set()
        ours = 0.0
        for row in rows:
            writer.writerow([f"{row.t:.3f}", row.name, f"{row.cpu_percent:.1f}", f"{row.rss_mb:.1f}"])
            if row.name in local:
                ours += row.cpu_percent
        return ours

    def _sample(self, writer: Any) -> None:  # a csv writer
        now = time.time()
        ours = self._me.cpu_percent(None)
        skip: set[str] = set()
        if self.services is not None:
            ours += self._service_rows(writer, self.services.rows())
            skip = self.services.names()
        for name, roots in self.targets().items():
            if name in skip:
                continue
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
            try:
                while not self._stop.wait(self.interval_s):
                    self._sample(writer)
                    f.flush()
                if self.services is not None:
                    self._service_rows(writer, self.services.drain(time.time()))
            finally:
                if self.services is not None:
                    self.services.close()


def phase_sampler(
    settings: BenchSettings, path: Path, pid_targets: Targets, interval_s: float | None = None
) -> ResourceSampler:
    """The resource sampler the settings ask for: psutil for every process (``RESOURCE_SOURCE=psutil``,
    the local default), or the services from their metrics (``RESOURCE_SOURCE=metrics``, and always
    against an external target), at the URLs of ``settings.targets()`` (local: the stack's ports; the
    queue's worker: its metrics port) or through ``PROMETHEUS_URL``; the rest of ``pid_targets`` (Redis,
    the load generator) with psutil; Redis with its ``INFO`` (``redis``: the feature store's, which is the
    broker's and the results' unless BROKER_URL or RESULT_BACKEND_URL say otherwise), locally only the
    embedded one the stack runs, as psutil samples only that one. Local with ``METRICS_ENABLED=false``:
    psutil (nothing to read). ``interval_s``: the period (default ``BENCH_SAMPLE_INTERVAL_S``)."""
    interval = settings.bench_sample_interval_s if interval_s is None else interval_s
    external = settings.bench_target == "external"
    if not external and settings.resource_source == "psutil":
        return ResourceSampler(path, pid_targets, interval)
    if not external and not settings.metrics_enabled:
        log.warning("RESOURCE_SOURCE=metrics but METRICS_ENABLED=false: sampling with psutil")
        return ResourceSampler(path, pid_targets, interval)
    targets = settings.targets()
    metrics = targets.metrics_urls()
    stack = settings.stack_settings()
    if external or stack.redis_url is None:
        metrics[REDIS] = [stack.feature_store_url]
    return ResourceSampler.from_sources(path, pid_targets, metrics, targets.prometheus_url, interval)
