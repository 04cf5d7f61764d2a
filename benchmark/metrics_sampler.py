"""Server-side resources from the services' own metrics, as rows of the resource CSV.

Every service exports its whole CPU and memory (``process_cpu_seconds_total``,
``process_resident_memory_bytes``, ``process_start_time_seconds``: every process of it, see
``scoring_bench/service/metrics.py``). A source here turns those counters into the rows
:class:`benchmark.sampler.ResourceSampler` writes (``t, name, cpu_percent, rss_mb``; cpu_percent in
percent of one core, summed over the service's pods), so the analysis, "server CPU per request" and the
plots read them as they read psutil's:

- :class:`ScrapeSource` scrapes each service's metrics URLs (several: pods or processes, summed) at every
  sample, asking only for the process metrics (``?name[]=...``: the service reads ``/proc`` and nothing
  else). A row's cpu_percent is the counters' increase since the service's previous row over the time
  between the two rows, so the CPU seconds the analysis integrates are exactly the counters' increase.
- :class:`PrometheusSource` reads the same counters from a Prometheus server's HTTP API
  (``PROMETHEUS_URL``): the raw samples Prometheus scraped, so **the resolution is Prometheus's scrape
  interval**, not the sampler's: a row is written when a new scrape has landed (at the scrape's own time),
  one interval's CPU at a time, and the sampler waits, when it stops, for the scrape after the stop (at
  most ``2 x`` the interval seen, ``DRAIN_MAX_S``), so a phase's last seconds are covered. A phase shorter
  than two scrape intervals gets no CPU. The series are grouped by their ``service`` label
  (``exported_service`` when the scrape configuration put its own ``service`` label on the target).

Redis has no ``/metrics``: a ``redis://`` (``rediss://``) URL among a service's URLs is read with ``INFO``
instead, whose ``used_cpu_*`` (its own and its reaped children's, as ``getrusage`` counts them) and
``used_memory_rss`` are the server's CPU and memory, its ``run_id`` telling a restart. A Redis shared with
other work counts that work too.

Counter rules (all sources), as Prometheus's ``rate``: a counter that fell, or a new start time, is a
restarted service, whose new value is the increase. A metrics URL that does not answer (a pod gone, a
service down) leaves a **gap**: no row for that service until every one of its URLs answers again; the
first row after it covers the whole gap (the counters lost nothing meanwhile). Nothing here raises on a
bad answer: the gap is logged once per URL and outage.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import redis
import urllib3

log = logging.getLogger("benchmark")

MetricsTargets = Mapping[str, Sequence[str]]  # service name -> its metrics URLs (summed)
CPU = "process_cpu_seconds_total"
RSS = "process_resident_memory_bytes"
START = "process_start_time_seconds"
NAMES = (CPU, RSS, START)
SCRAPE_TIMEOUT_S = 2.0
MAX_PARALLEL = 8
DRAIN_MAX_S = 60.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")
REDIS_SCHEMES = ("redis", "rediss")
REDIS_CPU = ("used_cpu_sys", "used_cpu_user", "used_cpu_sys_children", "used_cpu_user_children")


@dataclass(frozen=True)
class Reading:
    """One URL's (or one Prometheus series') counters at time ``t`` (seconds since the epoch)."""

    t: float
    cpu_s: float
    rss_bytes: float
    start_time: float | None = None


@dataclass(frozen=True)
class Row:
    """A row of the resource CSV for one service."""

    t: float
    name: str
    cpu_percent: float
    rss_mb: float


def parse(text: str) -> tuple[float | None, float | None, float | None]:
    """``(cpu seconds, rss bytes, start time)`` of a Prometheus text exposition, each the sum of its
    samples (a service's own /metrics has one of each; several processes' without a label are summed;
    start time: the latest). None for a metric that is not there."""
    cpu = rss = start = None
    for line in text.splitlines():
        if not line.startswith("process_"):
            continue
        brace, space = line.find("{"), line.find(" ")
        if brace != -1 and (space == -1 or brace < space):
            name, rest = line[:brace], line[line.rfind("}") + 1 :]
        elif space != -1:
            name, rest = line[:space], line[space + 1 :]
        else:
            continue
        try:
            value = float(rest.split()[0])
        except (IndexError, ValueError):
            continue
        if math.isnan(value):
            continue
        if name == CPU:
            cpu = (cpu or 0.0) + value
        elif name == RSS:
            rss = (rss or 0.0) + value
        elif name == START:
            start = value if start is None else max(start, value)
    return cpu, rss, start


def increase(previous: Reading, current: Reading) -> float:
    """CPU seconds from ``previous`` to ``current`` of one counter: a fall or a new start time is a
    restart, whose whole value is the increase (Prometheus's rule)."""
    restarted = (
        previous.start_time is not None
        and current.start_time is not None
        and current.start_time != previous.start_time
    )
    if restarted or current.cpu_s < previous.cpu_s:
        return current.cpu_s
    return current.cpu_s - previous.cpu_s


class ServiceRates:
    """Rows of one service from its readings (one per URL or series).

    ``complete``: every key must be read for a row (scraped URLs; a missing one is a gap); otherwise
    (Prometheus series, which come and go with pods) the keys present make the row, a new key counting
    from its first reading on.
    """

    def __init__(self, name: str, complete: bool = True) -> None:
        self.name = name
        self.complete = complete
        self._base: dict[str, Reading] = {}
        self._base_t: float | None = None

    def row(self, readings: Mapping[str, Reading | None]) -> Row | None:
        """The row for these readings, or None (a gap; or nothing new since the previous row)."""
        present = {key: r for key, r in readings.items() if r is not None}
        if not present or (self.complete and len(present) < len(readings)):
            return None
        t = max(r.t for r in present.values()) if not self.complete else _mean(r.t for r in present.values())
        rss = sum(r.rss_bytes for r in present.values()) / 2**20
        if self._base_t is None:  # a first row only starts the clock (as psutil's first reading)
            self._base, self._base_t = dict(present), t
            return Row(t, self.name, 0.0, rss)
        if t <= self._base_t:
            return None
        cpu = sum(increase(self._base[k], r) for k, r in present.items() if k in self._base)
        percent = cpu / (t - self._base_t) * 100
        self._base = {**({} if self.complete else self._base), **present}
        self._base_t = t
        return Row(t, self.name, percent, rss)


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items)


def redis_reading(info: Mapping[str, Any], t: float) -> Reading | None:
    """A Redis server's ``INFO`` as a reading: CPU (its own and its reaped children's), RSS, and its
    ``run_id`` as the start (equal while the same server runs)."""
    try:
        cpu = sum(float(info[key]) for key in REDIS_CPU if key in info)
        rss = float(info["used_memory_rss"])
        run = str(info.get("run_id") or "")
        start = float(int(run[:13], 16)) if run else None
    except (KeyError, TypeError, ValueError):
        return None
    if not any(key in info for key in REDIS_CPU):
        return None
    return Reading(t, cpu, rss, start)


def is_redis(url: str) -> bool:
    return urlsplit(url).scheme in REDIS_SCHEMES


def redacted(url: str) -> str:
    """A URL without its password, for the log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=f"***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")).geturl()


def process_metrics_url(url: str) -> str:
    """``url`` asking only for the process metrics (prometheus-client's ``name[]``)."""
    query = urlencode([("name[]", n) for n in NAMES])
    return f"{url}{'&' if '?' in url else '?'}{query}"


def is_local(url: str) -> bool:
    """Whether the URL's host is this machine's loopback (its CPU is part of this machine's)."""
    return (urlsplit(url).hostname or "") in LOOPBACK


class _Outages:
    """Logs a URL's failure once per outage, and its return."""

    def __init__(self) -> None:
        self._down: set[str] = set()

    def failed(self, url: str, why: str) -> None:
        if url not in self._down:
            self._down.add(url)
            log.warning(
                "resources: %s does not answer (%s): no rows for its service until it does",
                redacted(url),
                why,
            )

    def answered(self, url: str) -> None:
        if url in self._down:
            self._down.discard(url)
            log.warning("resources: %s answers again", redacted(url))


class ScrapeSource:
    """Each service's metrics URLs scraped at every sample (concurrently, ``MAX_PARALLEL`` at a time);
    ``redis://`` URLs read with ``INFO``."""

    def __init__(self, targets: MetricsTargets, timeout_s: float = SCRAPE_TIMEOUT_S) -> None:
        self.targets = {name: list(urls) for name, urls in targets.items() if urls}
        self._rates = {name: ServiceRates(name) for name in self.targets}
        self._http = urllib3.PoolManager(
            maxsize=2,
            timeout=urllib3.Timeout(total=timeout_s),
            retries=False,
            headers={"Accept": "text/plain"},
        )
        self._timeout_s = timeout_s
        self._redis: dict[str, redis.Redis] = {}
        self._outages = _Outages()
        urls = [u for us in self.targets.values() for u in us]
        self._pool = ThreadPoolExecutor(max(1, min(MAX_PARALLEL, len(urls))), thread_name_prefix="scrape")

    def names(self) -> set[str]:
        return set(self.targets)

    def local_names(self) -> set[str]:
        """The services all of whose URLs are on this machine."""
        return {name for name, urls in self.targets.items() if all(is_local(u) for u in urls)}

    def read(self, url: str) -> Reading | None:
        if is_redis(url):
            return self.read_redis(url)
        started = time.time()
        try:
            response = self._http.request("GET", process_metrics_url(url))
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            self._outages.failed(url, repr(exc))
            return None
        t = (started + time.time()) / 2
        if response.status != 200:
            self._outages.failed(url, f"HTTP {response.status}")
            return None
        cpu, rss, start = parse(response.data.decode(errors="replace"))
        if cpu is None or rss is None:
            self._outages.failed(url, f"no {CPU} or {RSS} in its answer")
            return None
        self._outages.answered(url)
        return Reading(t, cpu, rss, start)

    def read_redis(self, url: str) -> Reading | None:
        client = self._redis.get(url)
        if client is None:
            timeout = self._timeout_s
            client = self._redis[url] = redis.Redis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
        started = time.time()
        try:
            info = client.info()
        except (redis.RedisError, OSError) as exc:
            self._outages.failed(url, repr(exc))
            return None
        reading = redis_reading(info, (started + time.time()) / 2)
        if reading is None:
            self._outages.failed(url, "no used_cpu_* or used_memory_rss in its INFO")
            return None
        self._outages.answered(url)
        return reading

    def rows(self) -> list[Row]:
        futures = {
            (name, url): self._pool.submit(self.read, url)
            for name, urls in self.targets.items()
            for url in urls
        }
        rows = []
        for name, urls in self.targets.items():
            row = self._rates[name].row({url: futures[(name, url)].result() for url in urls})
            if row is not None:
                rows.append(row)
        return rows

    def drain(self, stopped_at: float) -> list[Row]:
        """Nothing to wait for: a scrape reads the counters as they are."""
        return []

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.clear()
        for client in self._redis.values():
            client.close()


class Sources:
    """Several sources as one (Prometheus for the services, ``INFO`` for Redis)."""

    def __init__(self, *sources: ScrapeSource | PrometheusSource) -> None:
        self.sources = sources

    def names(self) -> set[str]:
        return set().union(*(s.names() for s in self.sources))

    def local_names(self) -> set[str]:
        return set().union(*(s.local_names() for s in self.sources))

    def rows(self) -> list[Row]:
        return [row for s in self.sources for row in s.rows()]

    def drain(self, stopped_at: float) -> list[Row]:
        return [row for s in self.sources for row in s.drain(stopped_at)]

    def close(self) -> None:
        for s in self.sources:
            s.close()


class PrometheusSource:
    """The services' counters from a Prometheus server's HTTP API (``/api/v1/query``), as Prometheus
    scraped them: one range query per sample returns every series' raw samples of the last
    ``lookback_s``; each series' latest sample is its reading (resolution: the scrape interval; see the
    module's docstring)."""

    def __init__(
        self,
        prometheus_url: str,
        services: Iterable[str],
        local: Iterable[str] = (),
        lookback_s: float = 60.0,
        timeout_s: float = 5.0,
        get: Callable[[str], bytes] | None = None,
    ) -> None:
        self.url = prometheus_url.rstrip("/")
        self.services = list(services)
        self._local = set(local)
        self.lookback_s = lookback_s
        self._rates = {name: ServiceRates(name, complete=False) for name in self.services}
        self._http = urllib3.PoolManager(maxsize=1, timeout=urllib3.Timeout(total=timeout_s), retries=False)
        self._get = get or self._fetch
        self._outages = _Outages()
        self._spacing: float | None = None  # the scrape interval seen in the samples

    def names(self) -> set[str]:
        return set(self.services)

    def local_names(self) -> set[str]:
        return set(self._local)

    def queries(self) -> list[str]:
        """Range selectors of the three metrics of the services, by ``service`` and by ``exported_service``
        (PromQL has no ``or`` of range vectors: two queries)."""
        names, services, window = "|".join(NAMES), "|".join(self.services), int(self.lookback_s)
        return [
            f'{{__name__=~"{names}", {label}=~"{services}"}}[{window}s]'
            for label in ("service", "exported_service")
        ]

    def _fetch(self, url: str) -> bytes:
        response = self._http.request("GET", url)
        if response.status != 200:
            raise OSError(f"HTTP {response.status}: {response.data[:200]!r}")
        return bytes(response.data)

    def readings(self) -> dict[str, dict[str, Reading]] | None:
        """Service -> series key -> its latest reading; None when Prometheus does not answer."""
        result = []
        try:
            for query in self.queries():
                body = json.loads(self._get(f"{self.url}/api/v1/query?{urlencode({'query': query})}"))
                result += body["data"]["result"]
        except (OSError, urllib3.exceptions.HTTPError, ValueError, KeyError, TypeError) as exc:
            self._outages.failed(self.url, repr(exc))
            return None
        self._outages.answered(self.url)
        return group_series(result, self.services, self._note_spacing)

    def _note_spacing(self, times: Sequence[float]) -> None:
        if len(times) >= 2:
            gaps = sorted(b - a for a, b in itertools.pairwise(times))
            self._spacing = gaps[len(gaps) // 2]

    def rows(self) -> list[Row]:
        found = self.readings()
        if found is None:
            return []
        rows = []
        for name in self.services:
            row = self._rates[name].row(found.get(name, {}))
            if row is not None:
                rows.append(row)
        return rows

    def drain(self, stopped_at: float) -> list[Row]:
        """The rows of the scrapes after ``stopped_at``: waits until each service has one (at most two
        scrape intervals, ``DRAIN_MAX_S``), so the phase's last seconds are covered."""
        deadline = time.time() + min(DRAIN_MAX_S, 2 * (self._spacing or 15.0) + 1.0)
        rows: list[Row] = []
        covered: set[str] = set()
        while True:
            for row in self.rows():
                rows.append(row)
                if row.t >= stopped_at:
                    covered.add(row.name)
            if covered >= set(self.services) or time.time() > deadline:
                return rows
            time.sleep(min(1.0, self._spacing or 1.0) / 2)

    def close(self) -> None:
        self._http.clear()


def group_series(
    result: Sequence[Mapping[str, Any]],
    services: Sequence[str],
    spacing: Callable[[Sequence[float]], None] = lambda _: None,
) -> dict[str, dict[str, Reading]]:
    """Prometheus's matrix (``[{"metric": {...}, "values": [[t, "v"], ...]}]``) as service -> series key
    (the labels but the metric's name) -> latest reading of CPU, RSS and start time together."""
    parts: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}
    for series in result:
        labels = {str(k): str(v) for k, v in dict(series.get("metric") or {}).items()}
        values = list(series.get("values") or [])
        service = labels.get("exported_service") or labels.get("service")
        name = labels.pop("__name__", None)
        if service not in services or name not in NAMES or not values:
            continue
        key = json.dumps(sorted(labels.items()))
        t, v = values[-1]
        if name == CPU:
            spacing([float(p[0]) for p in values])
        parts.setdefault((str(service), key), {})[str(name)] = (float(t), float(v))
    grouped: dict[str, dict[str, Reading]] = {}
    for (service, key), metrics in parts.items():
        if CPU not in metrics:
            continue
        t, cpu = metrics[CPU]
        rss = metrics.get(RSS, (t, 0.0))[1]
        start = metrics[START][1] if START in metrics else None
        grouped.setdefault(service, {})[key] = Reading(t, cpu, rss, start)
    return grouped
