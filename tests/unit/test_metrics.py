"""scoring_bench.service.metrics without servers: route labels, rendering, METRICS_ENABLED, the local
Prometheus configuration and the Grafana dashboard."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from scoring_bench.core.endpoints import index
from scoring_bench.core.settings import Settings
from scoring_bench.core.timing import Timings
from scoring_bench.service import fastapi_adapter, flask_adapter, metrics
from scoring_bench.service.queue import QueueDepthCollector
from scoring_bench.stack import monitoring
from scoring_bench.stack.servers import SERVICES

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "monitoring/grafana/dashboards/scoring-bench.json"
_names = (f"unit-{i}" for i in itertools.count())  # every test its own service label


def samples(name: str, service: str, flush: bool = True) -> dict[tuple[tuple[str, str], ...], float]:
    """The rendered samples called ``name`` of ``service``, keyed by their other labels (what this
    process's FastAPI apps tallied written first, as their ``/metrics`` does)."""
    if flush:
        metrics.flush_all()
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("service") == service:
                labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "service"))
                found[labels] = sample.value
    return found


def count(service: str, route: str, status: str, method: str = "GET") -> float:
    key = (("method", method), ("route", route), ("status", status))
    return samples("http_request_duration_seconds_count", service).get(key, 0.0)


CONTRACT = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}}


def flask_client(service: str, enabled: bool = True) -> Any:
    settings = Settings(metrics_enabled=enabled)
    app = flask_adapter.create_app(__name__, settings, index(service, "/p", docs=False), CONTRACT)

    @app.get("/items/<item_id>")
    def _item(item_id: str) -> Any:
        return flask_adapter.json_response({"id": item_id})

    @app.get("/boom")
    def _boom() -> Any:
        raise RuntimeError("boom")

    return app.test_client()


def fastapi_client(service: str, enabled: bool = True) -> TestClient:
    settings = Settings(metrics_enabled=enabled)
    app = fastapi_adapter.create_app(CONTRACT, index(service, "/p", docs=True), settings=settings)

    @app.get("/items/{item_id}")
    async def _item(item_id: str) -> Any:
        return fastapi_adapter.json_response({"id": item_id})

    @app.get("/boom")
    async def _boom(_: Request) -> Any:
        raise RuntimeError("boom")

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("make_client", [flask_client, fastapi_client], ids=["flask", "fastapi"])
def test_requests_are_labelled_by_route_template(make_client: Any) -> None:
    service = next(_names)
    client = make_client(service)
    assert client.get("/items/42").status_code == 200
    assert client.get("/items/43").status_code == 200
    assert client.get("/no/such/path").status_code == 404
    assert client.post("/items/1").status_code == 405
    assert client.get("/boom").status_code == 500
    template = "/items/{item_id}" if make_client is fastapi_client else "/items/<item_id>"
    assert count(service, template, "200") == 2
    assert count(service, metrics.UNMATCHED, "404") == 1
    assert count(service, "/boom", "500") == 1
    routes = {dict(key)["route"] for key in samples("http_request_duration_seconds_count", service)}
    assert "/no/such/path" not in routes and "/items/42" not in routes  # never the raw path
    # /metrics answers in Prometheus's text format and is not itself counted
    response = client.get(metrics.METRICS_PATH)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    after = {dict(k)["route"] for k in samples("http_request_duration_seconds_count", service)}
    assert metrics.METRICS_PATH not in after
    assert samples("http_requests_in_progress", service) == {(): 0.0}


@pytest.mark.parametrize("make_client", [flask_client, fastapi_client], ids=["flask", "fastapi"])
def test_disabled_metrics_install_nothing(make_client: Any) -> None:
    service = next(_names)
    client = make_client(service, enabled=False)
    assert client.get("/items/1").status_code == 200
    assert client.get(metrics.METRICS_PATH).status_code == 404
    assert samples("http_request_duration_seconds_count", service) == {}
    assert metrics.recorder(Settings(metrics_enabled=False), service) is None


def test_an_unknown_method_does_not_grow_the_labels() -> None:
    assert metrics.method_label("GET") == "GET" and metrics.method_label("FROBNICATE") == "other"


def test_timings_feed_the_feature_store_and_model_histograms() -> None:
    service = next(_names)
    recorder = metrics.ServiceMetrics(service)
    recorder.observe_timings(Timings(steps={"feature_store": 1.5, "model_0": 40.0, "model_1": 50.0}))
    assert samples("feature_store_read_seconds_count", service) == {(): 1.0}
    assert samples("feature_store_read_seconds_sum", service) == {(): pytest.approx(0.0015)}
    assert samples("model_call_seconds_count", service) == {(): 2.0}
    assert samples("model_call_seconds_sum", service) == {(): pytest.approx(0.09)}


def test_buffered_metrics_write_what_direct_ones_do() -> None:
    """Tallied observations (an event loop's services) render as the same samples as observations
    written at once: every bucket (values on a bound, above the last, zero), sums, counts, the gauge."""
    direct, buffered = next(_names), next(_names)
    recorders = (metrics.ServiceMetrics(direct), metrics.BufferedServiceMetrics(buffered, 3600.0))
    seconds = [0.0, 0.005, 0.0051, 0.1, 0.2, 99.0, 0.05, 0.05]
    for recorder in recorders:
        for s in seconds:
            recorder.request_started()
            recorder.request_finished("/p", "POST", 200 if s < 1 else 504, s)
        recorder.request_started()  # one still in progress
        recorder.observe_timings(Timings(steps={"feature_store": 0.5, "model_0": 45.0, "model_1": 2500.0}))
    for name in (
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_sum",
        "http_request_duration_seconds_count",
        "http_requests_in_progress",
        "feature_store_read_seconds_bucket",
        "model_call_seconds_bucket",
        "model_call_seconds_sum",
    ):
        assert samples(name, buffered) == pytest.approx(samples(name, direct)), name
    assert samples("http_requests_in_progress", buffered) == {(): 1.0}


def test_buffered_metrics_are_written_by_a_timer_on_the_loop() -> None:
    service = next(_names)
    recorder = metrics.BufferedServiceMetrics(service, 0.05)

    def written() -> float:
        return samples("feature_store_read_seconds_count", service, flush=False).get((), 0.0)

    async def scenario() -> tuple[float, float]:
        recorder.observe_timings(Timings(steps={"feature_store": 1.0}))
        pending = written()  # tallied, not yet written
        await asyncio.sleep(0.2)
        return pending, written()

    assert asyncio.run(scenario()) == (0.0, 1.0)
    recorder.observe_timings(Timings(steps={"feature_store": 1.0}))  # no running loop: written at once
    assert written() == 2.0


def test_only_an_event_loop_s_recorder_is_buffered() -> None:
    service = next(_names)
    assert type(metrics.recorder(Settings(), service)) is metrics.ServiceMetrics
    assert isinstance(metrics.recorder(Settings(), service, on_loop=True), metrics.BufferedServiceMetrics)
    unbuffered = metrics.recorder(Settings(metrics_flush_s=0), next(_names), on_loop=True)
    assert type(unbuffered) is metrics.ServiceMetrics


def test_queue_counters_and_end_to_end_latency() -> None:
    service = next(_names)
    queue = metrics.QueueMetrics(service)
    queue.submitted.inc()
    queue.started.inc()
    queue.task_ended(True, submitted_at=100.0, now=100.25)
    queue.task_ended(False, submitted_at=None)
    assert samples("queue_tasks_submitted_total", service) == {(): 1.0}
    assert samples("queue_tasks_succeeded_total", service) == {(): 1.0}
    assert samples("queue_tasks_failed_total", service) == {(): 1.0}
    assert samples("queue_task_end_to_end_seconds_count", service) == {(): 1.0}
    assert samples("queue_task_end_to_end_seconds_sum", service) == {(): pytest.approx(0.25)}


def test_queue_depth_gives_no_sample_when_the_broker_is_down() -> None:
    settings = Settings(broker_url="redis://127.0.0.1:1/1", result_backend_url="redis://127.0.0.1:1/2")
    collector = QueueDepthCollector(settings, "unit-queue")
    (family,) = collector.collect()
    assert family.name == "queue_depth" and family.samples == []


def test_dead_processes_leave_the_live_gauges(tmp_path: Path) -> None:
    for pid in (os.getpid(), 2**22 + 12345):  # this process; a pid beyond pid_max: no such process
        (tmp_path / f"gauge_livesum_{pid}.db").write_bytes(b"")
    (tmp_path / "histogram_7.db").write_bytes(b"")  # counters and histograms stay summed
    assert metrics._dead_pids(tmp_path) == {2**22 + 12345}
    assert metrics.prepare_multiproc_dir(tmp_path) == tmp_path and not list(tmp_path.glob("*.db"))


def test_prometheus_config_scrapes_every_service_of_the_stack(tmp_path: Path) -> None:
    settings = Settings(scoring_sync_port=6001, queue_worker_metrics_port=6003, prometheus_port=9999)
    config = monitoring.prometheus_config(settings)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {s.name for s in SERVICES}
    assert jobs["scoring-sync"]["static_configs"] == [{"targets": ["127.0.0.1:6001"]}]
    assert jobs["queue-worker"]["static_configs"] == [{"targets": ["127.0.0.1:6003"]}]
    assert all(job["metrics_path"] == "/metrics" for job in jobs.values())
    assert monitoring.scrape_target(Settings(host="0.0.0.0"), 1) == "127.0.0.1:1"
    path = monitoring.write_config(settings, tmp_path)
    assert json.loads(path.read_text()) == config  # JSON is YAML: Prometheus reads it as is
    argv = monitoring.command("/usr/bin/prometheus", path, tmp_path / "data", settings)
    assert "--web.listen-address=127.0.0.1:9999" in argv and f"--config.file={path}" in argv
    assert f"--storage.tsdb.path={tmp_path / 'data'}" in argv


# --- the Grafana dashboard -------------------------------------------------------------------------------

METRIC_NAMES = {
    "http_request_duration_seconds",
    "http_requests_in_progress",
    "feature_store_read_seconds",
    "model_call_seconds",
    "queue_tasks_submitted_total",
    "queue_tasks_started_total",
    "queue_tasks_succeeded_total",
    "queue_tasks_failed_total",
    "queue_task_end_to_end_seconds",
    "queue_depth",
}
PROMQL_WORDS = {"sum", "by", "rate", "histogram_quantile", "max", "le", "service", "status", "route"}


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels += panel.get("panels", [])  # panels of a collapsed row
    return panels


def _covers(target: dict[str, Any], service: str) -> bool:
    """The query names ``service``, or selects it by a regex and shows one series per service."""
    expr = target["expr"]
    if f'"{service}"' in expr:
        return True
    regexes = re.findall(r'service=~"([^"]+)"', expr)
    return any(re.fullmatch(r, service) for r in regexes) and "{{service}}" in target.get("legendFormat", "")


def test_the_dashboard_loads_and_has_panels_for_each_architecture() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    targets = [t for p in _panels(dashboard) if p.get("type") != "row" for t in p.get("targets", [])]
    assert targets
    for svc in SERVICES:  # every architecture's handler (sync, async, batched, queue)
        if svc.role in ("scoring", "queue"):
            assert any(_covers(t, svc.name) for t in targets), svc.name
    assert any("queue_" in t["expr"] for t in targets)  # the queue's own panels


def test_the_dashboard_queries_only_metrics_the_services_expose() -> None:
    exposed = set()
    for family in text_string_to_metric_families(metrics.render().decode()):
        exposed.add(family.name)
    exposed |= METRIC_NAMES
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            expr = re.sub(r'"[^"]*"|\[[^\]]*\]', "", target["expr"])  # label values, ranges
            for word in set(re.findall(r"[a-z_][a-z0-9_]*", expr)) - PROMQL_WORDS:
                base = re.sub(r"_(bucket|count|sum)$", "", word)
                assert word in exposed or base in exposed, f"{panel['title']}: {word}"
