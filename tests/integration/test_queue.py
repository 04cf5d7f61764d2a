"""The queue architecture with real Celery workers, on the embedded Redis and on RabbitMQ.

RabbitMQ: SCORING_BENCH_TEST_AMQP_URL (e.g. amqp://guest:guest@127.0.0.1:5672//); without it these
tests skip, unless SCORING_BENCH_REQUIRE_SERVICES=1 (CI), which makes them fail instead. Each run
uses its own queue name (guest may only have the vhost "/") and deletes what it declared.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kombu
import psutil
import pytest
import redis
import requests

from scoring_bench.core.endpoints import HEALTH_PATH, QUEUE_PREDICT_PATH, QUEUE_TASKS_PATH
from scoring_bench.core.tasks import new_task_id
from scoring_bench.service.queue import SCORE_TASK, make_celery
from scoring_bench.stack.process_env import PROJECT_ROOT, process_env
from scoring_bench.stack.servers import command, service, worker_node_name
from scoring_bench.stack.supervisor import ProcessRecord, StackState, log_tail, state_path, stop_processes
from tests.integration.conftest import SEED_BODY, Stack, free_port, stack_settings, start_stack
from tests.integration.test_services import BAD_BODIES

pytestmark = pytest.mark.integration

AMQP_URL = os.environ.get("SCORING_BENCH_TEST_AMQP_URL")
REQUIRED = os.environ.get("SCORING_BENCH_REQUIRE_SERVICES") == "1"
# Slow enough to catch a task while it runs (two model calls of 250 ms), short limits so that
# a Redis broker redelivers a dead worker's task after 3 s.
QUEUE_TEST_SETTINGS: dict[str, Any] = {
    "model_latency": "fixed",
    "model_latency_fixed_ms": 250.0,
    "queue_visibility_timeout_s": 3.0,
    "queue_soft_time_limit_s": 1.5,
    "queue_time_limit_s": 2.0,
    "queue_retry_backoff_s": 0.05,
    "queue_retry_backoff_max_s": 0.5,
    "queue_max_retries": 2,
    "queue_worker_concurrency": 8,
    "queue_track_started": True,  # the tests watch a task start (off by default: doc/queue.md)
    "callback_timeout_s": 1.0,
}


def _delete_rabbitmq_entities(url: str, name: str, node: str) -> None:
    with kombu.Connection(url) as conn:
        channel = conn.default_channel
        for queue_name in (name, f"{node}.{name}.pidbox"):
            channel.queue_delete(queue_name)
        for exchange in (name, f"{name}.pidbox", f"reply.{name}.pidbox", f"{name}.events"):
            channel.exchange_delete(exchange)


@pytest.fixture(scope="module", params=["redis", "rabbitmq"])
def qstack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides = dict(QUEUE_TEST_SETTINGS)
    if request.param == "rabbitmq":
        if not AMQP_URL:
            if REQUIRED:
                pytest.fail("SCORING_BENCH_TEST_AMQP_URL is not set but SCORING_BENCH_REQUIRE_SERVICES=1")
            pytest.skip("set SCORING_BENCH_TEST_AMQP_URL to run the queue tests on RabbitMQ")
        overrides |= {"broker_url": AMQP_URL, "queue_name": f"scoring-test-{uuid.uuid4().hex[:8]}"}
    settings = stack_settings(tmp_path_factory.mktemp(f"queue-{request.param}"), **overrides)
    try:
        with start_stack(settings) as running:
            yield running
    finally:
        if request.param == "rabbitmq":
            node = worker_node_name(settings)
            _delete_rabbitmq_entities(settings.queue_broker_url, settings.queue_name, node)


# --- helpers -------------------------------------------------------------------------------------


def submit(stack: Stack, body: Any = None, data: bytes | None = None, **params: str) -> requests.Response:
    return stack.post("scoring-queue", body, data=data, params=params)


def status(stack: Stack, task_id: str, **params: str) -> requests.Response:
    url = stack.url("scoring-queue", f"{QUEUE_TASKS_PATH}/{task_id}")
    return stack.http.get(url, params=params, timeout=10)


def finished(stack: Stack, task_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
    """The task's document once it succeeded or failed (long-polling with wait_ms)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        doc = status(stack, task_id, wait_ms="2000").json()
        if doc["status"] in ("SUCCESS", "FAILURE"):
            return doc
    raise AssertionError(f"task {task_id} did not finish within {timeout_s} s: {doc}")


def issued(stack: Stack) -> int:
    """How many task ids the API has issued (its registry in the result store)."""
    client = redis.Redis.from_url(stack.settings.queue_results_url)
    try:
        return sum(1 for _ in client.scan_iter(match=f"{stack.settings.queue_key_prefix}issued:*"))
    finally:
        client.close()


class Receiver:
    """A callback receiver on loopback: answers each POST with the next planned status (a 3xx
    with ``Location: location``)."""

    def __init__(self, statuses: list[int], location: str | None = None, host: str = "127.0.0.1") -> None:
        self.statuses = statuses
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.put(json.loads(body))
                code = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(code)
                if 300 <= code < 400 and location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/hook"

    def next(self, timeout_s: float = 20.0) -> dict[str, Any]:
        return self.received.get(timeout=timeout_s)


@contextmanager
def receiver(statuses: list[int], location: str | None = None, host: str = "127.0.0.1") -> Iterator[Receiver]:
    r = Receiver(statuses, location, host)
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


# --- the tests -------------------------------------------------------------------------------------


def test_health_reports_broker_workers_and_results(qstack: Stack) -> None:
    resp = qstack.http.get(qstack.url("scoring-queue", "/api/v1/healthcheck"), timeout=5)
    assert resp.status_code == 200
    assert resp.json()["dependencies"] == {"broker": "OK", "workers": "OK", "result_backend": "OK"}


def succeeds_with_the_sync_handlers_detail(stack: Stack, body: Any) -> dict[str, Any]:
    """Submit ``body`` (202, PENDING, its Location), wait for its SUCCESS: the sync handler's answer plus the
    steps' timings, read again at its Location alike. The finished document (either engine)."""
    resp = submit(stack, body)
    assert resp.status_code == 202, resp.text
    doc = resp.json()
    assert doc == {"task_id": doc["task_id"], "status": "PENDING"}
    assert resp.headers["Location"] == f"{QUEUE_TASKS_PATH}/{doc['task_id']}"
    done = finished(stack, doc["task_id"])
    assert done["status"] == "SUCCESS", done
    sync = stack.post("scoring-sync", body).json()
    assert done["result"]["detail"] == sync["detail"] and done["result"]["scores"] == sync["scores"]
    timings = done["result"]["timings"]
    assert {"feature_store", "model_0", "model_1", "total", "queued"} <= set(timings)
    assert 0 <= timings["queued"] < 30_000  # submit to start: this test's own wait bounds it
    again = stack.http.get(requests.compat.urljoin(resp.url, resp.headers["Location"]), timeout=5)
    assert again.json() == done
    return done


@pytest.mark.parametrize("body", [SEED_BODY, {"entity_id": "42", "features": [0.5] * 30}])
def test_a_task_succeeds_with_the_sync_handlers_detail(qstack: Stack, body: Any) -> None:
    succeeds_with_the_sync_handlers_detail(qstack, body)


def test_an_unknown_task_id_is_404(qstack: Stack) -> None:
    for task_id in (str(uuid.uuid4()), "not-a-task-id", str(uuid.uuid4()).upper()):
        resp = status(qstack, task_id)
        assert resp.status_code == 404, resp.text
        assert resp.json()["error"] == "unknown_task"


def test_bad_input_is_a_4xx_and_becomes_no_task(qstack: Stack) -> None:
    before = issued(qstack)
    for case, (data, code) in BAD_BODIES.items():
        resp = submit(qstack, data=data)
        assert resp.status_code == code, (case, resp.text)
        assert resp.json()["error"] and resp.json()["message"]
    invalid = ({"entity_id": "1", "features": [1.0], "extra": 1}, {"entity_id": "bad id!", "features": [1.0]})
    for body in invalid:
        assert submit(qstack, body).json()["error"] == "invalid_body"
    for wait_ms in ("-1", "1.5", "x", str(qstack.settings.queue_max_wait_ms + 1)):
        resp = submit(qstack, SEED_BODY, wait_ms=wait_ms)
        assert resp.status_code == 422 and resp.json()["error"] == "invalid_body", resp.text
        assert status(qstack, str(uuid.uuid4()), wait_ms=wait_ms).status_code == 422
    assert issued(qstack) == before


def test_an_unknown_entity_fails_the_task_with_its_error(qstack: Stack) -> None:
    task_id = submit(qstack, {"entity_id": "no-such-entity", "features": [1.0]}).json()["task_id"]
    done = finished(qstack, task_id)
    assert done["status"] == "FAILURE" and "result" not in done
    assert done["error"]["error"] == "unknown_entity" and "no-such-entity" in done["error"]["message"]


def test_wait_ms_gives_the_result_when_fast_and_a_task_id_when_slow(qstack: Stack) -> None:
    fast = submit(qstack, SEED_BODY, wait_ms=str(qstack.settings.queue_max_wait_ms))
    assert fast.status_code == 200, fast.text
    assert fast.json()["status"] == "SUCCESS" and 0.0 < fast.json()["result"]["detail"] < 1.0
    slow = submit(qstack, SEED_BODY, wait_ms="1")  # two model calls take 500 ms
    assert slow.status_code == 202, slow.text
    assert slow.json()["status"] in ("PENDING", "STARTED") and "Location" in slow.headers
    assert finished(qstack, slow.json()["task_id"])["result"]["detail"] == fast.json()["result"]["detail"]


def test_a_waiting_request_is_woken_by_the_result_store_on_either_broker(qstack: Stack) -> None:
    """QUEUE_WAKEUP=notify: the API listens on the result store (a pattern subscription of its own, whatever
    the broker), and a request that waits gets its result through it."""
    client = redis.Redis.from_url(qstack.settings.queue_results_url)
    try:
        listeners = [c for c in client.client_list(_type="pubsub") if c.get("psub") == "1"]
    finally:
        client.close()
    assert listeners, "the queue API does not listen for results"
    doc = submit(qstack, SEED_BODY, wait_ms=str(qstack.settings.queue_max_wait_ms)).json()
    assert doc["status"] == "SUCCESS" and set(doc["result"]["timings"]) >= {"total", "queued"}


def callbacks_reach_a_local_receiver_with_retries(stack: Stack) -> None:
    """A success and a failure each POSTed to the task's callback URL, the first POST retried after a 503
    (either engine)."""
    with receiver([503]) as hook:  # the first POST is answered 503: the worker retries
        task_id = submit(stack, SEED_BODY, callback_url=hook.url).json()["task_id"]
        first, second = hook.next(), hook.next()
        assert first == second and first["task_id"] == task_id and first["status"] == "SUCCESS"
        assert first == status(stack, task_id).json()
        failing = submit(stack, {"entity_id": "no-such-entity", "features": [1.0]}, callback_url=hook.url)
        failed = hook.next()
        assert failed["task_id"] == failing.json()["task_id"] and failed["status"] == "FAILURE"
        assert failed["error"]["error"] == "unknown_entity"


def test_callbacks_reach_a_local_receiver_with_retries(qstack: Stack) -> None:
    callbacks_reach_a_local_receiver_with_retries(qstack)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "http://10.1.2.3/hook",
        "http://127.0.0.1@example.com/hook",
        "ftp://127.0.0.1/hook",
        "http://127.1/hook",
    ],
)
def test_a_callback_url_not_allowed_is_refused_at_submit(qstack: Stack, url: str) -> None:
    before = issued(qstack)
    resp = submit(qstack, SEED_BODY, callback_url=url)
    assert resp.status_code == 422 and resp.json()["error"] == "invalid_body", resp.text
    assert "callback_url" in resp.json()["message"]
    assert issued(qstack) == before


def test_a_model_api_that_stays_down_fails_the_task_after_its_retries(qstack: Stack) -> None:
    _kill_group(_current_pid(qstack, "model-async"))
    try:
        task_id = submit(qstack, SEED_BODY).json()["task_id"]
        done = finished(qstack, task_id)
        assert done["status"] == "FAILURE" and done["error"]["error"] == "model_unavailable"
    finally:
        qstack.supervisor.restart("model-async")
    assert finished(qstack, submit(qstack, SEED_BODY).json()["task_id"])["status"] == "SUCCESS"


def test_a_worker_killed_mid_task_loses_nothing(qstack: Stack) -> None:
    task_id = submit(qstack, SEED_BODY).json()["task_id"]
    deadline = time.monotonic() + 10
    while status(qstack, task_id).json()["status"] != "STARTED":
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.01)
    _kill_group(_current_pid(qstack, "queue-worker"))  # SIGKILL mid-task: nothing is acked
    assert status(qstack, task_id).json()["status"] == "STARTED"
    health_url = qstack.url("scoring-queue", "/api/v1/healthcheck")
    while (health := qstack.http.get(health_url, timeout=5)).status_code != 503:
        assert time.monotonic() < deadline + 10, "the health check never noticed the worker is gone"
        time.sleep(0.2)
    assert health.json()["dependencies"]["workers"].startswith("DOWN")
    qstack.supervisor.restart("queue-worker")  # a new worker gets the task again
    done = finished(qstack, task_id)
    assert done["status"] == "SUCCESS", done
    assert done["result"]["detail"] == qstack.post("scoring-sync", SEED_BODY).json()["detail"]


def test_a_prefork_worker_scores_and_stops_with_its_children(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path, queue_worker_pool="prefork", queue_worker_concurrency=2)
    with start_stack(settings) as stack:
        worker = psutil.Process(stack.pid("queue-worker"))
        processes = [worker, *worker.children(recursive=True)]
        assert len(processes) >= 3  # the master and its two pool processes
        done = finished(stack, submit(stack, SEED_BODY).json()["task_id"])
        assert done["result"]["detail"] == stack.post("scoring-sync", SEED_BODY).json()["detail"]
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes)


def _current_pid(stack: Stack, name: str) -> int:
    """The pid in the state file (a restart replaces the one the stack started with)."""
    state = StackState.load(state_path(stack.settings))
    assert state is not None
    return next(p.pid for p in state.processes if p.name == name)


def _kill_group(pid: int) -> None:
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    os.killpg(pid, signal.SIGKILL)
    psutil.wait_procs(procs, timeout=5)


# --- abusive callbacks, and a broker or result store out of reach (issue 12, part 4) -------------------

# Loopback, but not on CALLBACK_ALLOWED_HOSTS: the worker must never call it.
NOT_ALLOWED_HOST = "127.0.0.2"


def all_posts(hook: Receiver, quiet_s: float = 1.5) -> list[dict[str, Any]]:
    """Every POST the receiver gets until none has come for ``quiet_s`` (longer than any retry's wait)."""
    posts = []
    while True:
        try:
            posts.append(hook.received.get(timeout=quiet_s))
        except queue.Empty:
            return posts


def test_a_callback_redirect_is_not_followed_and_retries_are_bounded(qstack: Stack) -> None:
    """A receiver that redirects to a host off the allowlist: the worker posts once (a 3xx is final,
    never followed), the target is never contacted, and the task still succeeds with its result
    stored. A receiver that always answers 503: 1 + CALLBACK_MAX_RETRIES posts, then the worker gives
    up."""
    with receiver([], host=NOT_ALLOWED_HOST) as trap, receiver([307] * 20, location=trap.url) as hook:
        task_id = submit(qstack, SEED_BODY, callback_url=hook.url).json()["task_id"]
        done = finished(qstack, task_id)
        assert done["status"] == "SUCCESS" and 0.0 < done["result"]["detail"] < 1.0
        posts = all_posts(hook)
        assert [p["task_id"] for p in posts] == [task_id]
        assert trap.received.empty()
        assert status(qstack, task_id).json() == done  # the result stays stored
    with receiver([503] * 100) as hook:
        task_id = submit(qstack, SEED_BODY, callback_url=hook.url).json()["task_id"]
        assert finished(qstack, task_id)["status"] == "SUCCESS"
        posts = all_posts(hook)
        assert len(posts) == 1 + qstack.settings.callback_max_retries
        assert {p["task_id"] for p in posts} == {task_id}


def test_the_worker_checks_the_allowlist_again_before_posting(qstack: Stack) -> None:
    """A task published straight to the broker (the API would have refused its callback_url with a
    422) runs, and its callback is not sent."""
    app = make_celery(qstack.settings)
    try:
        with receiver([], host=NOT_ALLOWED_HOST) as trap:
            task_id = new_task_id()
            kwargs = {"features": SEED_BODY, "entity_id": None, "callback_url": trap.url}
            result = app.send_task(SCORE_TASK, kwargs=kwargs, task_id=task_id)
            assert 0.0 < result.get(timeout=20)["detail"] < 1.0
            time.sleep(1.0)  # the callback task ran by now (it is sent when the task ends)
            assert trap.received.empty()
    finally:
        app.close()


@contextmanager
def queue_api_beside(stack: Stack, **overrides: Any) -> Iterator[str]:
    """One more queue API process, beside ``stack``'s and sharing its broker and result store
    except for ``overrides`` (one of them on a port where nothing listens); its base URL."""
    settings = stack.settings.model_copy(
        update={
            "broker_url": stack.settings.queue_broker_url,
            "result_backend_url": stack.settings.queue_results_url,
            "redis_url": stack.state.redis_url,
            "scoring_queue_port": free_port(),
            "metrics_enabled": False,
            **overrides,
        }
    )
    svc = service("scoring-queue")
    log_path = stack.settings.stack_dir / "logs" / f"queue-api-beside-{settings.scoring_queue_port}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            command(svc, settings),
            env=process_env(settings),
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    record = ProcessRecord(
        "queue-api-beside",
        proc.pid,
        psutil.Process(proc.pid).create_time(),
        svc.port(settings),
        str(log_path),
        None,
    )
    try:
        base = svc.url(settings)
        deadline = time.monotonic() + 30
        while True:
            try:
                if stack.http.get(base + "/", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log_tail(log_path)
            time.sleep(0.1)
        yield base
    finally:
        stop_processes([record])


def test_a_broker_out_of_reach_is_a_fast_503_and_stores_no_task(qstack: Stack) -> None:
    closed = free_port()
    amqp = qstack.settings.queue_broker_url.startswith("amqp")
    broker = f"amqp://guest:guest@127.0.0.1:{closed}//" if amqp else f"redis://127.0.0.1:{closed}/1"
    before = issued(qstack)
    with queue_api_beside(qstack, broker_url=broker) as base:
        started = time.monotonic()
        resp = qstack.http.post(base + QUEUE_PREDICT_PATH, json=SEED_BODY, timeout=30)
        assert time.monotonic() - started < 5.0  # no hang: the publish's retries are short
        assert resp.status_code == 503 and resp.json()["error"] == "queue_unavailable", resp.text
        assert "broker" in resp.json()["message"] and "Location" not in resp.headers
        assert issued(qstack) == before  # the id issued for it was forgotten: nothing to ask about
        health = qstack.http.get(base + HEALTH_PATH, timeout=10)
        assert health.status_code == 503 and health.json()["dependencies"]["broker"].startswith("DOWN")


def test_a_result_store_out_of_reach_is_a_503(qstack: Stack) -> None:
    with queue_api_beside(qstack, result_backend_url=f"redis://127.0.0.1:{free_port()}/2") as base:
        resp = qstack.http.post(base + QUEUE_PREDICT_PATH, json=SEED_BODY, timeout=30)
        assert resp.status_code == 503 and "result store" in resp.json()["message"], resp.text
        answer = qstack.http.get(f"{base}{QUEUE_TASKS_PATH}/{uuid.uuid4()}", timeout=30)
        assert answer.status_code == 503 and answer.json()["error"] == "queue_unavailable", answer.text
        health = qstack.http.get(base + HEALTH_PATH, timeout=10)
        assert health.status_code == 503 and health.json()["dependencies"]["result_backend"].startswith(
            "DOWN"
        )


def test_a_burst_beyond_the_pool_s_wait_is_told_busy_not_down(tmp_path: Path) -> None:
    """300 submits at once through 1 connection to the result store that no request may wait for long
    (QUEUE_POOL_WAIT_S=0.01): some are refused, with a 503 that says the queue is busy (retry), not that
    Redis is down; every one accepted is a task. (With the default wait of 10 s, 3,000 at once to a
    stack of the default size were all accepted on a 2-core machine: doc/queue.md.)"""
    import asyncio

    import aiohttp

    settings = stack_settings(
        tmp_path,
        **QUEUE_TEST_SETTINGS,
        redis_pool_size=1,
        queue_pool_wait_s=0.01,
        queue_model_calls="sequential",
    )

    async def burst(url: str) -> list[tuple[int, dict[str, Any]]]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def one() -> tuple[int, dict[str, Any]]:
                async with session.post(url, params={"wait_ms": "0"}, json=SEED_BODY) as resp:
                    return resp.status, await resp.json()

            return await asyncio.gather(*(one() for _ in range(300)))

    with start_stack(settings) as stack:
        answers = asyncio.run(burst(stack.url("scoring-queue", QUEUE_PREDICT_PATH)))
        refused = [body for status, body in answers if status != 202]
        assert refused, "one connection and a 10 ms wait took 300 submits in at once"
        assert {status for status, _ in answers} == {202, 503}
        assert all(body["error"] == "queue_unavailable" and "busy" in body["message"] for body in refused)
        assert issued(stack) == 300 - len(refused)
