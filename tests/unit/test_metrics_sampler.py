"""Resources from the services' metrics (benchmark/metrics_sampler.py): parsing, summing over pods,
rates, counter resets, a URL that does not answer, Prometheus's series, and the rows ResourceSampler
writes with them."""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from benchmark.analysis.phases import cpu_seconds
from benchmark.analysis.raw import read_resources
from benchmark.metrics_sampler import (
    PrometheusSource,
    Reading,
    ScrapeSource,
    ServiceRates,
    Sources,
    group_series,
    increase,
    is_local,
    parse,
    process_metrics_url,
    redacted,
    redis_reading,
)
from benchmark.sampler import ResourceSampler, phase_sampler
from benchmark.settings import BenchSettings

EXPOSITION = """# HELP process_cpu_seconds_total CPU time.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total{service="scoring-sync"} 12.5
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes{service="scoring-sync",note="a } and a space"} 1.048576e+08
process_start_time_seconds{service="scoring-sync"} 1700000000.5
process_virtual_memory_bytes 9e9
http_requests_total{service="x"} 5
"""


def test_parse_reads_the_three_metrics() -> None:
    assert parse(EXPOSITION) == (12.5, 104857600.0, 1700000000.5)


def test_parse_sums_unlabelled_processes_and_misses_nothing_else() -> None:
    text = (
        "process_cpu_seconds_total 1.5\n"
        "process_cpu_seconds_total 2.0 1700000000000\n"
        "process_start_time_seconds NaN\n"
    )
    assert parse(text) == (3.5, None, None)
    assert parse("") == (None, None, None)
    assert parse("process_cpu_seconds_total not-a-number\n") == (None, None, None)


def test_the_scrape_asks_for_the_process_metrics_only() -> None:
    url = process_metrics_url("http://h:1/metrics")
    assert url.startswith("http://h:1/metrics?name%5B%5D=process_cpu_seconds_total&")
    assert process_metrics_url("http://h:1/metrics?x=1").startswith("http://h:1/metrics?x=1&name")
    assert is_local("http://127.0.0.1:5/metrics") and not is_local("http://10.0.0.5:5/metrics")


def test_increase_treats_a_fall_or_a_new_start_as_a_restart() -> None:
    a = Reading(0.0, 10.0, 0.0, 100.0)
    assert increase(a, Reading(1.0, 10.4, 0.0, 100.0)) == pytest.approx(0.4)
    assert increase(a, Reading(1.0, 0.3, 0.0, 100.0)) == 0.3  # fell: restarted from zero
    assert increase(a, Reading(1.0, 11.0, 0.0, 200.0)) == 11.0  # a new process, even if higher
    assert increase(Reading(0.0, 5.0, 0.0), Reading(1.0, 6.0, 0.0)) == 1.0  # no start time: by value


def test_rows_sum_the_pods_and_the_first_row_only_starts_the_clock() -> None:
    rates = ServiceRates("scoring-sync")
    first = rates.row({"a": Reading(10.0, 5.0, 2**20), "b": Reading(10.0, 7.0, 2**21)})
    assert first is not None and (first.cpu_percent, first.rss_mb) == (0.0, 3.0)
    second = rates.row({"a": Reading(10.5, 5.2, 2**20), "b": Reading(10.5, 7.3, 2**20)})
    assert second is not None
    assert second.t == 10.5 and second.cpu_percent == pytest.approx(100.0) and second.rss_mb == 2.0


def test_a_missing_pod_is_a_gap_and_the_next_row_covers_it() -> None:
    rates = ServiceRates("s")
    rates.row({"a": Reading(0.0, 0.0, 0.0), "b": Reading(0.0, 0.0, 0.0)})
    assert rates.row({"a": Reading(1.0, 0.5, 0.0), "b": None}) is None  # a pod did not answer: no row
    row = rates.row({"a": Reading(3.0, 1.5, 0.0), "b": Reading(3.0, 1.5, 0.0)})
    assert row is not None and row.cpu_percent == pytest.approx(100.0)  # 3 s of CPU over the 3 s since


def test_a_reset_pod_counts_its_new_value() -> None:
    rates = ServiceRates("s")
    rates.row({"a": Reading(0.0, 100.0, 0.0, 1.0)})
    row = rates.row({"a": Reading(2.0, 0.5, 0.0, 1.5)})
    assert row is not None and row.cpu_percent == pytest.approx(25.0)


def test_the_rows_integrate_to_the_counters_increase() -> None:
    """What the analysis integrates (cpu_seconds) is exactly the counters' increase over the rows."""
    rates = ServiceRates("s")
    counter, rows = 0.0, []
    for i, (dt, used) in enumerate([(0.5, 0.1), (0.7, 0.6), (0.4, 0.0), (0.5, 0.45)]):
        counter += used
        row = rates.row({"a": Reading(i + dt, counter, 0.0)})
        assert row is not None
        rows.append(row)
    from benchmark.analysis.raw import Sample

    samples = [Sample(r.t, r.name, r.cpu_percent, r.rss_mb) for r in rows]
    assert cpu_seconds(samples, ["s"], (0.0, 100.0)) == pytest.approx(0.6 + 0.0 + 0.45)


def series(service: str, instance: str, name: str, values: list[tuple[float, float]], **labels: str) -> Any:
    metric = {"__name__": name, "service": service, "instance": instance, **labels}
    return {"metric": metric, "values": [[t, str(v)] for t, v in values]}


def test_prometheus_series_are_grouped_by_service_and_pod() -> None:
    result = [
        series("scoring-sync", "p1", "process_cpu_seconds_total", [(1.0, 1.0), (6.0, 2.0)]),
        series("scoring-sync", "p1", "process_resident_memory_bytes", [(6.0, 2**20)]),
        series("scoring-sync", "p2", "process_cpu_seconds_total", [(3.0, 4.0)]),
        series("kube", "p3", "process_cpu_seconds_total", [(3.0, 4.0)], exported_service="model-sync"),
        series("other", "p4", "process_cpu_seconds_total", [(3.0, 4.0)]),
    ]
    spacings: list[list[float]] = []
    grouped = group_series(result, ["scoring-sync", "model-sync"], spacings.append)
    assert set(grouped) == {"scoring-sync", "model-sync"}
    pods = sorted(grouped["scoring-sync"].values(), key=lambda r: r.t)
    assert [(r.t, r.cpu_s, r.rss_bytes) for r in pods] == [(3.0, 4.0, 0.0), (6.0, 2.0, 2**20)]
    assert [1.0, 6.0] in spacings


def test_prometheus_rows_follow_the_scrapes_and_pods_that_come_and_go() -> None:
    answers: list[list[Any]] = [
        [series("s", "p1", "process_cpu_seconds_total", [(10.0, 1.0)])],
        [series("s", "p1", "process_cpu_seconds_total", [(10.0, 1.0)])],  # no new scrape yet: no row
        [
            series("s", "p1", "process_cpu_seconds_total", [(10.0, 1.0), (15.0, 3.0)]),
            series("s", "p2", "process_cpu_seconds_total", [(14.0, 9.0)]),  # a new pod: counts from now on
        ],
        [series("s", "p2", "process_cpu_seconds_total", [(14.0, 9.0), (19.0, 10.0)])],  # p1 gone
    ]
    calls: list[str] = []

    def get(url: str) -> bytes:
        calls.append(url)
        result = answers[0] if "exported_service" not in url else []
        if "exported_service" in url:
            answers.pop(0)
        return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}).encode()

    source = PrometheusSource("http://prom:9090/", ["s"], get=get)
    got = [[(r.t, round(r.cpu_percent, 3)) for r in source.rows()] for _ in range(4)]
    assert got == [[(10.0, 0.0)], [], [(15.0, 40.0)], [(19.0, 25.0)]]
    assert calls[0].startswith("http://prom:9090/api/v1/query?query=")


def test_prometheus_down_gives_no_rows() -> None:
    def get(url: str) -> bytes:
        raise OSError("connection refused")

    assert PrometheusSource("http://prom:9090", ["s"], get=get).rows() == []


INFO = {
    "used_cpu_sys": 1.25,
    "used_cpu_user": 2.5,
    "used_cpu_sys_children": 0.25,
    "used_cpu_user_children": 0.0,
    "used_memory_rss": 2**21,
    "run_id": "4e5ba36f8c8a1c6d2b2e0c1a9f0e3d2c1b0a9f8e",
}


def test_redis_is_read_with_info() -> None:
    reading = redis_reading(INFO, 5.0)
    assert reading is not None and (reading.cpu_s, reading.rss_bytes) == (4.0, 2**21)
    other = redis_reading({**INFO, "run_id": "0" * 40}, 6.0)
    assert other is not None and other.start_time != reading.start_time  # a restarted server
    assert redis_reading({"used_memory_rss": 1}, 5.0) is None
    assert redacted("redis://:secret@h:6379/0") == "redis://***@h:6379/0"
    assert redacted("http://h:1/metrics") == "http://h:1/metrics"


class _FakeRedis:
    def __init__(self) -> None:
        self.cpu = 1.0
        self.down = False

    def info(self) -> dict[str, Any]:
        if self.down:
            raise ConnectionError("refused")
        self.cpu += 0.5
        return {**INFO, "used_cpu_user": self.cpu, "used_cpu_sys": 0.0, "used_cpu_sys_children": 0.0}

    def close(self) -> None:
        pass


def test_a_redis_url_gives_rows_and_gaps_like_a_metrics_url() -> None:
    url = "redis://:secret@127.0.0.1:1/0"
    source = ScrapeSource({"redis": [url]})
    fake = _FakeRedis()
    source._redis[url] = fake  # type: ignore[assignment]
    first, second = source.rows(), source.rows()
    assert [r.name for r in first] == ["redis"] and first[0].cpu_percent == 0.0
    assert second[0].cpu_percent > 0 and second[0].rss_mb == 2.0
    fake.down = True
    assert source.rows() == []
    source.close()


class _Metrics(BaseHTTPRequestHandler):
    cpu = 0.0

    def do_GET(self) -> None:
        type(self).cpu += 0.05
        body = f'process_cpu_seconds_total{{service="x"}} {self.cpu}\nprocess_resident_memory_bytes 1048576\n'
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def metrics_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def test_the_sampler_writes_metrics_and_psutil_rows_in_one_file(metrics_server: str, tmp_path: Path) -> None:
    import os

    path = tmp_path / "r.csv"
    down = "http://127.0.0.1:9/metrics"  # discard port: nothing listens
    pods = [metrics_server, metrics_server.replace("127.0.0.1", "localhost")]  # two URLs: two "pods"
    source = ScrapeSource({"svc": pods, "gone": [down]})
    with ResourceSampler(path, lambda: {"me": [os.getpid()]}, 0.05, source):
        threading.Event().wait(0.5)
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["t", "name", "cpu_percent", "rss_mb"]
    names = {r["name"] for r in rows}
    assert {"svc", "me", "machine", "others"} <= names and "gone" not in names
    svc = [r for r in rows if r["name"] == "svc"]
    assert svc[0]["cpu_percent"] == "0.0" and float(svc[1]["cpu_percent"]) > 0
    assert all(r["rss_mb"] == "2.0" for r in svc)  # two URLs, 1 MiB each
    assert [s.name for s in read_resources(path)].count("svc") == len(svc)


def test_phase_sampler_follows_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    plain = phase_sampler(BenchSettings(resource_source="psutil"), path, dict)
    assert plain.services is None
    scraped = phase_sampler(BenchSettings(resource_source="metrics"), path, dict)
    assert isinstance(scraped.services, ScrapeSource)
    assert {"scoring-sync", "queue-worker"} <= scraped.services.names() == scraped.services.local_names()
    scraped.services.close()
    disabled = phase_sampler(BenchSettings(resource_source="metrics", metrics_enabled=False), path, dict)
    assert disabled.services is None
    via = phase_sampler(
        BenchSettings(resource_source="metrics", prometheus_url="http://127.0.0.1:9090"), path, dict
    )
    assert isinstance(via.services, Sources)
    prometheus, redis_info = via.services.sources
    assert isinstance(prometheus, PrometheusSource) and "scoring-async" in prometheus.local_names()
    assert isinstance(redis_info, ScrapeSource) and redis_info.names() == {"redis"}
    assert "redis" not in prometheus.names() and "redis" in via.services.local_names()
    user_redis = phase_sampler(
        BenchSettings(resource_source="metrics", redis_url="redis://h:1/0"), path, dict
    )
    assert isinstance(user_redis.services, ScrapeSource) and "redis" not in user_redis.services.names()
    # an external target's Redis is read with INFO wherever it is
    external = phase_sampler(
        BenchSettings(
            bench_target="external", target_host="10.0.0.5", redis_url="redis://:pw@10.0.0.6:6379/0"
        ),
        path,
        dict,
    )
    assert isinstance(external.services, ScrapeSource)
    assert external.services.targets["redis"] == ["redis://:pw@10.0.0.6:6379/0"]
    assert not external.services.local_names() & {"redis", "scoring-sync"}
