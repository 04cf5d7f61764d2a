"""/metrics of every service of a real stack whose servers run several processes each: the
numbers are the whole service's (summed over its processes), never one worker's fragment."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from scoring_bench.core.endpoints import HEALTH_PATH, batch_path
from scoring_bench.service.metrics import UNMATCHED
from scoring_bench.stack.servers import SERVICES, service
from tests.integration.conftest import SEED_BODY, Stack, free_port, stack_settings, start_stack

pytestmark = pytest.mark.integration

HTTP_NAMES = {"http_request_duration_seconds", "http_requests_in_progress"}
SCORING_NAMES = HTTP_NAMES | {"feature_store_read_seconds", "model_call_seconds"}
EXPECTED = {
    "model-sync": HTTP_NAMES,
    "model-async": HTTP_NAMES,
    "scoring-sync": SCORING_NAMES,
    "scoring-async": SCORING_NAMES,
    "scoring-batched": SCORING_NAMES,
    "scoring-queue": HTTP_NAMES | {"queue_tasks_submitted", "queue_depth"},
    "queue-worker": {
        "feature_store_read_seconds",
        "model_call_seconds",
        "queue_tasks_started",
        "queue_tasks_succeeded",
        "queue_tasks_failed",
        "queue_task_end_to_end_seconds",
    },
}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(stack: Stack, name: str) -> tuple[set[str], Samples]:
    """The metric families and samples of one service's /metrics (a fresh connection)."""
    svc = service(name)
    url = stack.settings.base_url(svc.metrics_port(stack.settings)) + "/metrics"
    response = requests.get(url, timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    families, samples = set(), {}
    for family in text_string_to_metric_families(response.text):
        families.add(family.name)
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return families, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items())


def requests_of(stack: Stack, name: str, route: str, status: str = "200") -> float:
    return value(
        scrape(stack, name)[1],
        "http_request_duration_seconds_count",
        service=name,
        route=route,
        status=status,
    )


def pids_with_files(stack: Stack, name: str) -> set[str]:
    folder = Path(stack.settings.stack_dir).resolve() / "metrics" / name
    return {p.stem.rpartition("_")[2] for p in folder.glob("histogram_*.db")}


def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def settled(read: Callable[[], float], flush_s: float) -> float:
    """A count once no worker has a tally left to write (METRICS_FLUSH_S): the same over two flushes."""
    value = read()
    for _ in range(20):
        time.sleep(2 * flush_s + 0.1)
        again = read()
        if again == value:
            return value
        value = again
    return value


def test_every_service_serves_its_metrics(metrics_stack: Stack) -> None:
    for name in ("scoring-sync", "scoring-async", "scoring-batched"):
        assert metrics_stack.post(name, SEED_BODY).status_code == 200
    response = metrics_stack.post("scoring-queue", SEED_BODY, params={"wait_ms": "5000"})
    assert response.status_code == 200 and response.json()["status"] == "SUCCESS", response.text
    for svc in SERVICES:
        expected = EXPECTED[svc.name]
        eventually(
            lambda name=svc.name, want=expected: want <= scrape(metrics_stack, name)[0]
        )  # the worker's, after
        missing = expected - scrape(metrics_stack, svc.name)[0]
        assert not missing, (svc.name, missing)


@pytest.mark.parametrize(
    "name, model",
    [("scoring-sync", "model-sync"), ("scoring-async", "model-async"), ("scoring-batched", "model-async")],
)
def test_counts_are_the_whole_service_not_one_worker(metrics_stack: Stack, name: str, model: str) -> None:
    """N requests on new connections (the kernel spreads them over the 2 workers): every
    count grows by exactly N (2N model calls), whichever worker answers the scrape. The batching
    handler's requests, one after another, each ride a batch of one per model: 2N batch calls."""
    n = 30
    svc, model_svc = service(name), service(model)
    path, model_path = svc.predict_path or "", model_svc.predict_path or ""
    if name == "scoring-batched":
        model_path = batch_path(model_path)
    flush_s = metrics_stack.settings.metrics_flush_s
    # the earlier tests' last tallies written first: else a late one lands between before and after
    settled(lambda: requests_of(metrics_stack, name, path), flush_s)
    model_before = settled(lambda: requests_of(metrics_stack, model, model_path), flush_s)
    before = scrape(metrics_stack, name)[1]
    for _ in range(n):
        response = requests.post(
            metrics_stack.url(name), json=SEED_BODY, timeout=10, headers={"Connection": "close"}
        )
        assert response.status_code == 200, response.text
    counted_before = value(
        before, "http_request_duration_seconds_count", service=name, route=path, status="200"
    )
    # the async service's workers write their tallies within METRICS_FLUSH_S (the answering one at once)
    assert eventually(lambda: requests_of(metrics_stack, name, path) - counted_before == n, 5.0)
    after = scrape(metrics_stack, name)[1]
    for _ in range(4):  # each scrape answered by whichever worker: always the whole count
        assert requests_of(metrics_stack, name, path) - counted_before == n
    for name_, calls in (("feature_store_read_seconds_count", n), ("model_call_seconds_count", 2 * n)):
        assert value(after, name_) - value(before, name_) == calls, name_
    # the model API's workers write their tallies within METRICS_FLUSH_S too; then exactly 2N, no more
    assert eventually(lambda: requests_of(metrics_stack, model, model_path) - model_before == 2 * n, 5.0)
    assert settled(lambda: requests_of(metrics_stack, model, model_path), flush_s) - model_before == 2 * n
    assert len(pids_with_files(metrics_stack, name)) >= 2, "all requests went to one worker: nothing summed"


def in_progress(stack: Stack, name: str) -> float:
    return value(scrape(stack, name)[1], "http_requests_in_progress")


def test_unknown_paths_are_one_label_and_in_progress_returns_to_zero(metrics_stack: Stack) -> None:
    for name in ("scoring-sync", "scoring-async", "scoring-batched", "scoring-queue"):
        before = requests_of(metrics_stack, name, UNMATCHED, "404")
        assert requests.get(metrics_stack.url(name, "/no/such/path/42"), timeout=5).status_code == 404
        assert requests.get(metrics_stack.url(name, HEALTH_PATH), timeout=5).status_code == 200
        # another worker than the one scraped may have answered: its tallies come within METRICS_FLUSH_S
        assert eventually(
            lambda n=name, b=before: requests_of(metrics_stack, n, UNMATCHED, "404") - b == 1, 5.0
        )
        _, samples = scrape(metrics_stack, name)
        assert (
            value(samples, "http_request_duration_seconds_count", service=name, route=UNMATCHED, status="404")
            - before
            == 1
        )
        assert not any("/no/such" in dict(labels).get("route", "") for _, labels in samples)
        assert value(samples, "http_request_duration_seconds_count", route=HEALTH_PATH) >= 1
    for svc in SERVICES:
        if svc.listens:
            assert eventually(lambda n=svc.name: in_progress(metrics_stack, n) == 0, 5.0), svc.name


def test_queue_counters(metrics_stack: Stack) -> None:
    """k tasks that succeed and one that fails (an unknown entity): the API counts k + 1
    submitted; the worker (a prefork pool: its children's numbers summed) started, succeeded,
    failed and the end-to-end latency of each."""
    k = 4
    api_before = scrape(metrics_stack, "scoring-queue")[1]
    worker_before = scrape(metrics_stack, "queue-worker")[1]
    for _ in range(k):
        response = metrics_stack.post("scoring-queue", SEED_BODY, params={"wait_ms": "5000"})
        assert response.json()["status"] == "SUCCESS", response.text
    response = metrics_stack.post(
        "scoring-queue", {"entity_id": "no-such-entity", "features": [1.0]}, params={"wait_ms": "5000"}
    )
    assert response.json()["status"] == "FAILURE", response.text

    def delta(name: str, samples: Samples, before: Samples) -> float:
        return value(samples, name) - value(before, name)

    api = scrape(metrics_stack, "scoring-queue")[1]
    assert delta("queue_tasks_submitted_total", api, api_before) == k + 1
    assert value(api, "queue_depth", queue=metrics_stack.settings.queue_name) == 0
    expected = {
        "queue_tasks_started_total": k + 1,
        "queue_tasks_succeeded_total": k,
        "queue_tasks_failed_total": 1,
        "queue_task_end_to_end_seconds_count": k + 1,
        "feature_store_read_seconds_count": k,
        "model_call_seconds_count": 2 * k,
    }

    def worker_deltas() -> dict[str, float]:
        worker = scrape(metrics_stack, "queue-worker")[1]
        return {name: delta(name, worker, worker_before) for name in expected}

    eventually(lambda: worker_deltas() == expected)  # task_postrun runs just after the result is stored
    assert worker_deltas() == expected


def test_monitoring_starts_a_prometheus_that_scrapes_the_stack(tmp_path: Path) -> None:
    if shutil.which("prometheus") is None:
        reason = "Prometheus is not installed (apt-get install prometheus): MONITORING=1 goes on without it"
        if os.environ.get("SCORING_BENCH_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}, but SCORING_BENCH_REQUIRE_SERVICES=1 (CI installs it)")
        pytest.skip(reason)
    settings = stack_settings(tmp_path, monitoring=True, prometheus_port=free_port())
    base = f"http://127.0.0.1:{settings.prometheus_port}"
    with start_stack(settings) as stack:
        rows = {row["service"]: row for row in stack.supervisor.status()}
        assert rows["prometheus"]["health"] == "OK" and rows["prometheus"]["port"] == settings.prometheus_port

        def targets() -> dict[str, str]:
            active = requests.get(f"{base}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            return {t["labels"]["job"]: t["health"] for t in active}

        assert eventually(lambda: targets() == {s.name: "up" for s in SERVICES}, timeout_s=30), targets()
        pid = stack.pid("prometheus")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
