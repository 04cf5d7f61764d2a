"""The other servers the benchmark compares also serve correctly (meinheld, plain asyncio, h11, the
seed-faithful preset's servers, granian for both frameworks, gevent-patched Flask). The other clients and
model-call policies are tested in process, in tests/apps/."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import requests

from benchmark.metrics_sampler import parse
from scoring_bench.stack.servers import service
from tests.integration.conftest import SEED_BODY, Stack, free_port, stack_settings, start_stack

pytestmark = pytest.mark.integration


def test_meinheld_workers_requests_client_and_plain_asyncio(tmp_path: Path) -> None:
    settings = stack_settings(
        tmp_path,
        model_sync_worker_class="meinheld",
        scoring_sync_worker_class="meinheld",
        sync_http_client="requests",
        async_loop="asyncio",
        async_http="h11",
    )
    with start_stack(settings) as stack:
        sync = stack.post("scoring-sync", SEED_BODY)
        assert sync.headers["Server"].startswith("meinheld")
        async_ = stack.post("scoring-async", SEED_BODY)
        assert sync.status_code == async_.status_code == 200, (sync.text, async_.text)
        assert sync.json()["detail"] == async_.json()["detail"]
        assert stack.post("scoring-sync", data=b"[1e999]").status_code == 422
        assert stack.post("scoring-sync", data=b"[" + b"1," * 600_000 + b"1]").status_code == 413


def test_seed_faithful_preset_starts_and_agrees(tmp_path: Path) -> None:
    settings = stack_settings(
        tmp_path,
        scoring_preset="seed-faithful",
        scoring_sync_workers=2,
        model_sync_workers=2,
        scoring_async_workers=2,
        model_async_workers=1,
        # A new client per request, in a worker that has not served yet, on two busy cores: its first
        # connect (httpx sets up its transport then) can take longer than the default 0.5 s. This test
        # is about the preset starting and agreeing; the timeouts are tested in tests/apps/.
        model_connect_timeout_s=2.0,
    )
    assert settings.http_client_lifetime == "request" and settings.async_redis_client == "blocking"
    with start_stack(settings) as stack:
        sync = stack.post("scoring-sync", SEED_BODY)
        async_ = stack.post("scoring-async", SEED_BODY)
        assert sync.status_code == async_.status_code == 200, (sync.text, async_.text)
        assert sync.headers["Server"].startswith("meinheld")
        assert sync.json()["detail"] == async_.json()["detail"]
        for name in ("scoring-sync", "scoring-async"):
            health = stack.http.get(stack.url(name, "/api/v1/healthcheck"), timeout=5)
            assert health.status_code == 200, health.text


# --- the server apart from the framework (issue 15 §2): granian, and gevent-patched Flask ----------


def _count(text: str, prefix: str) -> float:
    """The sum of the samples of the metric lines that start with ``prefix``."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def _service_tree(stack: Stack, name: str) -> list[psutil.Process]:
    root = psutil.Process(stack.pid(name))
    return [root, *root.children(recursive=True)]


def _stops_on_sigterm(stack: Stack, name: str) -> None:
    """SIGTERM to the service's main process only (what `docker stop` does to a container's PID 1): the
    whole tree ends by itself, before the supervisor would kill anything."""
    procs = _service_tree(stack, name)
    procs[0].send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=15)
    assert not alive, [(p.pid, p.cmdline()[:4]) for p in alive]


def _answers_and_reports(stack: Stack, name: str, requests_sent: int) -> None:
    """/metrics: the whole service's CPU and processes (every process of its tree), and the request
    counts of all its workers summed (prometheus-client's multiprocess mode)."""
    text = stack.http.get(stack.url(name, "/metrics"), timeout=5).text
    cpu, rss, _ = parse(text)
    assert cpu is not None and cpu > 0 and rss is not None and rss > 0, text[:500]
    assert "process_cpu_seconds_total" in text
    assert _count(text, f'service_processes{{service="{name}"}}') == len(_service_tree(stack, name))
    route = f'route="{service(name).predict_path}"'
    served = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("http_request_duration_seconds_count{") and route in line and "POST" in line
    )
    assert served >= requests_sent, text


def test_granian_serves_flask_and_fastapi_with_the_defaults_scores(tmp_path: Path) -> None:
    """granian's WSGI (the Flask handler) and ASGI (the FastAPI handler), two worker processes each,
    beside the minimal control on uvicorn (the default server): the same answers, /metrics over every
    worker, and a clean stop on SIGTERM."""
    settings = stack_settings(
        tmp_path,
        scoring_sync_server="granian",
        scoring_async_server="granian",
        scoring_sync_workers=2,
        scoring_async_workers=2,
        minimal_control=True,
        scoring_minimal_port=free_port(),
    )
    with start_stack(settings) as stack:
        for name in ("scoring-sync", "scoring-async"):
            assert "granian" in " ".join(psutil.Process(stack.pid(name)).cmdline())
            assert len(_service_tree(stack, name)) == 3  # granian's main process and its two workers
        reference = stack.post("scoring-minimal", SEED_BODY)
        assert reference.status_code == 200, reference.text
        sent = 6
        for _ in range(sent):  # a new connection each: either worker may answer
            for name in ("scoring-sync", "scoring-async"):
                response = stack.http.post(stack.url(name), json=SEED_BODY, headers={"Connection": "close"})
                assert response.status_code == 200, response.text
                assert response.json()["detail"] == reference.json()["detail"]
                assert "Server-Timing" in response.headers
        for name in ("scoring-sync", "scoring-async"):
            health = stack.http.get(stack.url(name, "/api/v1/healthcheck"), timeout=5)
            assert health.status_code == 200, health.text
            assert stack.post(name, data=b"[1e999]").status_code == 422
            _answers_and_reports(stack, name, sent)
        stack.http.close()
        for name in ("scoring-sync", "scoring-async"):
            _stops_on_sigterm(stack, name)


def test_gevent_flask_handler_waits_on_patched_io(tmp_path: Path) -> None:
    """SCORING_SYNC_WORKER_CLASS=gevent: one worker process serves several requests at once, which it can
    only if its Redis reads and model calls (redis-py, urllib3) yield to other greenlets. Unpatched, the
    worker's one thread would block in each call and serve the requests one after another (here ≥ 8 × 2
    model calls of 250 ms = 4 s); concurrently they take about one request's time (0.5 s). The bound
    below is half the serial time: it tells the two apart, it measures nothing."""
    settings = stack_settings(
        tmp_path,
        scoring_sync_worker_class="gevent",
        scoring_sync_workers=1,
        model_sync_workers=1,
        model_latency="fixed",
        model_latency_fixed_ms=250.0,
    )
    concurrent = 8
    serial_s = concurrent * settings.num_models * 0.25
    with start_stack(settings) as stack:
        assert len(_service_tree(stack, "scoring-sync")) == 2  # gunicorn's master and its one worker
        reference = stack.post("scoring-async", SEED_BODY)
        first = stack.post("scoring-sync", SEED_BODY)  # warm: the worker's pools are made
        assert first.status_code == reference.status_code == 200, (first.text, reference.text)
        assert first.json()["detail"] == reference.json()["detail"]

        def one(_: int) -> requests.Response:
            with requests.Session() as session:
                session.trust_env = False
                return session.post(stack.url("scoring-sync"), json=SEED_BODY, timeout=30)

        started = time.monotonic()
        with ThreadPoolExecutor(concurrent) as pool:
            responses = list(pool.map(one, range(concurrent)))
        elapsed = time.monotonic() - started
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
        assert all(r.json()["detail"] == reference.json()["detail"] for r in responses)
        assert elapsed < serial_s / 2, f"{concurrent} requests took {elapsed:.2f} s: served one at a time?"
        _answers_and_reports(stack, "scoring-sync", concurrent + 1)
        stack.http.close()
        _stops_on_sigterm(stack, "scoring-sync")
