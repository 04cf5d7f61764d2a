"""The whole service's CPU and memory in every service's /metrics, on a real stack whose servers run
several processes (gunicorn and uvicorn workers, a prefork Celery pool, the minimal control), and the
benchmark's metrics sampler reading them."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from benchmark.metrics_sampler import PrometheusSource, ScrapeSource, parse, process_metrics_url
from benchmark.sampler import ResourceSampler
from scoring_bench.stack.servers import CONTROL, SERVICES, Service
from tests.integration.conftest import SEED_BODY, Stack, free_port, stack_settings, start_stack

pytestmark = pytest.mark.integration

ALL = (*SERVICES, CONTROL)


@pytest.fixture(scope="module")
def several(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = stack_settings(
        tmp_path_factory.mktemp("process-metrics"),
        model_sync_workers=2,
        scoring_sync_workers=2,
        model_async_workers=2,
        scoring_async_workers=2,
        scoring_batched_workers=2,
        scoring_queue_workers=2,
        queue_worker_pool="prefork",
        queue_worker_concurrency=2,
        minimal_control=True,
        scoring_minimal_port=free_port(),
    )
    with start_stack(settings) as running:
        yield running


def metrics_url(stack: Stack, svc: Service) -> str:
    return stack.settings.base_url(svc.metrics_port(stack.settings)) + "/metrics"


def scrape(stack: Stack, svc: Service) -> str:
    url = process_metrics_url(metrics_url(stack, svc)) + "&name[]=service_processes"
    response = requests.get(url, timeout=5)
    assert response.status_code == 200, response.text
    return response.text


def tree(stack: Stack, name: str) -> list[psutil.Process]:
    root = psutil.Process(stack.pid(name))
    return [root, *root.children(recursive=True)]


@pytest.mark.parametrize("svc", ALL, ids=lambda s: s.name)
def test_each_service_reports_every_one_of_its_processes(several: Stack, svc: Service) -> None:
    """The process count is the supervisor's process tree (more than one process for every multi-process
    server), whichever process answers; the memory is that tree's; the scrape asked for names only."""
    text = scrape(several, svc)
    assert f'service_processes{{service="{svc.name}"}}' in text
    assert "http_request_duration_seconds" not in text  # name[]: only the process metrics were collected
    counted = set()
    for _ in range(6):  # a new connection each time: any of the service's processes may answer
        line = next(x for x in scrape(several, svc).splitlines() if x.startswith("service_processes"))
        counted.add(float(line.split()[-1]))
    procs = tree(several, svc.name)
    assert counted == {float(len(procs))}, (counted, [p.name() for p in procs])
    cpu, rss, start = parse(text)
    assert cpu is not None and cpu > 0
    assert rss is not None and rss > 0.5 * sum(p.memory_info().rss for p in procs)
    assert start is not None and abs(start - psutil.Process(several.pid(svc.name)).create_time()) < 1.0


def test_cpu_grows_under_requests_and_never_falls(several: Stack) -> None:
    before = {svc.name: parse(scrape(several, svc))[0] for svc in ALL}
    for _ in range(30):
        for name in ("scoring-sync", "scoring-async", "scoring-batched", "scoring-minimal"):
            svc = next(s for s in ALL if s.name == name)
            url = several.settings.base_url(svc.port(several.settings) or 0) + (svc.predict_path or "")
            assert several.http.post(url, json=SEED_BODY, timeout=10).status_code == 200
    readings: dict[str, list[float]] = {svc.name: [] for svc in ALL}
    for _ in range(5):
        for svc in ALL:
            value = parse(scrape(several, svc))[0]
            assert value is not None
            readings[svc.name].append(value)
    for name, values in readings.items():
        assert values == sorted(values), (name, values)  # the counter never fell between scrapes
    for name in (
        "scoring-sync",
        "scoring-async",
        "scoring-batched",
        "scoring-minimal",
        "model-sync",
        "model-async",
    ):
        assert readings[name][-1] > (before[name] or 0.0), name


def test_a_worker_that_exits_keeps_its_cpu_in_the_count(several: Stack) -> None:
    """gunicorn replaces a killed worker: the worker's CPU moves into the master's count of reaped
    children (cutime), so the service's counter goes on from where it was, plus the new worker's start.
    Without it the total would lose the busiest worker's CPU (more than its replacement's start-up)
    and stay flat at the floor."""
    svc = next(s for s in ALL if s.name == "scoring-sync")
    for _ in range(200):  # one keep-alive connection: mostly one worker's CPU
        several.post("scoring-sync", SEED_BODY)
    workers = psutil.Process(several.pid(svc.name)).children()
    busiest = max(workers, key=lambda p: sum(p.cpu_times()[:2]))
    before = parse(scrape(several, svc))[0]
    assert before is not None
    os.kill(busiest.pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        alive = psutil.Process(several.pid(svc.name)).children()
        if len(alive) == len(workers) and busiest.pid not in {p.pid for p in alive}:
            break
        time.sleep(0.1)
    else:
        pytest.fail("gunicorn did not replace the killed worker")
    assert several.post("scoring-sync", SEED_BODY).status_code == 200  # the new worker is up
    after = parse(scrape(several, svc))[0]
    assert after is not None and after > before


def test_the_metrics_sampler_writes_a_row_for_every_service(several: Stack, tmp_path: Path) -> None:
    """ResourceSampler with the services from their metrics URLs, Redis from its INFO and a local process
    (here the test itself) from psutil, in one file."""
    urls = {svc.name: [metrics_url(several, svc)] for svc in ALL}
    urls["redis"] = [several.settings.feature_store_url]
    me = {"pytest": [os.getpid()]}
    path = tmp_path / "resources.csv"
    with ResourceSampler(path, lambda: me, 0.2, ScrapeSource(urls)):
        for _ in range(20):
            several.post("scoring-async", SEED_BODY)
        time.sleep(1.0)
    with open(path) as f:
        rows = list(csv.DictReader(f))
    names = {row["name"] for row in rows}
    assert names >= {*urls, "pytest", "machine", "others"}
    for name in ("scoring-async", "redis"):
        cpu = [float(r["cpu_percent"]) for r in rows if r["name"] == name]
        assert len(cpu) >= 3 and sum(cpu[1:]) > 0, name


def test_a_url_that_does_not_answer_leaves_a_gap_not_an_error(several: Stack, tmp_path: Path) -> None:
    svc = next(s for s in ALL if s.name == "model-async")
    dead = f"http://127.0.0.1:{free_port()}/metrics"
    urls = {"model-async": [metrics_url(several, svc)], "model-sync": [metrics_url(several, svc), dead]}
    path = tmp_path / "resources.csv"
    with ResourceSampler(path, dict, 0.2, ScrapeSource(urls)):
        time.sleep(1.0)
    with open(path) as f:
        names = [row["name"] for row in csv.DictReader(f)]
    assert "model-async" in names and "model-sync" not in names


def test_the_prometheus_source_reads_every_service_through_a_real_prometheus(tmp_path: Path) -> None:
    """MONITORING=1's Prometheus scrapes the stack every 5 s; the source groups its series by the
    services' own ``service`` label and gives each service a rate once a second scrape has landed."""
    if shutil.which("prometheus") is None:
        reason = "Prometheus is not installed (apt-get install prometheus)"
        if os.environ.get("SCORING_BENCH_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}, but SCORING_BENCH_REQUIRE_SERVICES=1 (CI installs it)")
        pytest.skip(reason)
    settings = stack_settings(tmp_path, monitoring=True, prometheus_port=free_port())
    with start_stack(settings) as stack:
        source = PrometheusSource(f"http://127.0.0.1:{settings.prometheus_port}", [s.name for s in SERVICES])
        seen: dict[str, list[float]] = {s.name: [] for s in SERVICES}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(len(v) >= 2 for v in seen.values()):
            stack.post("scoring-async", SEED_BODY)
            for row in source.rows():
                seen[row.name].append(row.cpu_percent)
            time.sleep(0.2)
        source.close()
    assert all(len(v) >= 2 for v in seen.values()), seen
    assert max(seen["scoring-async"][1:]) > 0
