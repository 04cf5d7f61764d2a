"""The batching handler (api_scoring_batched, doc/batching.md) served for real: uvicorn with the command
the stack's registry builds (scoring_bench.stack.servers.command), beside the default test stack (its
model-async API, its embedded Redis, its async handler to compare with). The stack runs one with the
default batch settings; this module starts its own with a long max wait, so requests sent together
surely share a batch, and stops it."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from scoring_bench.core.endpoints import BATCHED_PREDICT_PATH, HEALTH_PATH
from scoring_bench.core.timing import parse_server_timing, parse_server_timing_notes
from scoring_bench.stack.servers import Service, command
from scoring_bench.stack.supervisor import Supervisor, stop_processes
from tests.integration.conftest import SEED_BODY, Stack, free_port

pytestmark = pytest.mark.integration
BATCHED = Service("scoring-batched", "api_scoring_batched", "uvicorn", "scoring", BATCHED_PREDICT_PATH)
USERS = 32


@pytest.fixture(scope="module")
def batched(stack: Stack) -> Iterator[str]:
    """The batching handler on a free port, its settings the stack's (a generous max wait: requests sent
    together all arrive within it); its predict URL."""
    settings = stack.settings.model_copy(
        update={"scoring_batched_port": free_port(), "batch_max_size": 8, "batch_max_wait_ms": 200.0}
    )
    supervisor = Supervisor(settings)
    assert "api_scoring_batched.app:from_environment" in command(BATCHED, settings)
    try:
        record = supervisor._spawn_service(BATCHED, supervisor._service_env(stack.state.redis_url))
        supervisor._wait_healthy(BATCHED, record)
        yield BATCHED.predict_url(settings)
    finally:
        stop_processes(supervisor.started)


def post(url: str, body: object) -> requests.Response:
    with requests.Session() as session:
        session.trust_env = False
        return session.post(url, json=body, timeout=10)


def test_it_is_healthy_and_answers_as_the_async_handler(stack: Stack, batched: str) -> None:
    health = requests.get(batched.replace(BATCHED_PREDICT_PATH, HEALTH_PATH), timeout=5)
    assert health.status_code == 200 and health.json()["dependencies"]["model_api"] == "OK"
    answer = post(batched, SEED_BODY)
    assert answer.status_code == 200 and answer.json() == stack.post("scoring-async", SEED_BODY).json()
    assert parse_server_timing_notes(answer.headers["Server-Timing"]) == {
        "batch_size_0": "1",
        "batch_size_1": "1",
    }


def test_concurrent_requests_ride_in_batches_and_score_as_the_async_handler(
    stack: Stack, batched: str
) -> None:
    bodies = [{"entity_id": str(i), "features": [float(i), 1.5, -2.0]} for i in range(USERS)]
    with ThreadPoolExecutor(USERS) as pool:
        answers = list(pool.map(lambda body: post(batched, body), bodies))
    sizes: list[int] = []
    for body, answer in zip(bodies, answers):
        assert answer.status_code == 200, answer.text
        assert answer.json() == stack.post("scoring-async", body).json()
        timing = answer.headers["Server-Timing"]
        assert {"batch_wait_0", "batch_wait_1", "model_0", "model_1"} <= parse_server_timing(timing).keys()
        sizes += [int(size) for size in parse_server_timing_notes(timing).values()]
    assert len(sizes) == 2 * USERS and max(sizes) > 1 and max(sizes) <= 8


def test_bad_input_is_the_async_handlers_4xx(stack: Stack, batched: str) -> None:
    for body in ([], {"entity_id": "no-such-entity", "features": [1.0]}, "x"):
        mine, theirs = post(batched, body), stack.post("scoring-async", body)
        assert mine.status_code == theirs.status_code and 400 <= mine.status_code < 500
        assert mine.json()["error"] == theirs.json()["error"]


def test_clients_that_leave_during_the_batch_wait_do_not_break_the_batch(stack: Stack, batched: str) -> None:
    """Six requests that do not fill a batch of eight wait the 200 ms max wait together; three of their
    clients give up after 50 ms (their connections closed mid-wait): the other three still get their own
    answers, and the handler keeps serving."""
    bodies = [{"entity_id": str(i), "features": [float(i), 0.5]} for i in range(6)]

    def send(index: int) -> requests.Response | None:
        with requests.Session() as session:
            session.trust_env = False
            try:
                return session.post(batched, json=bodies[index], timeout=0.05 if index % 2 else 10)
            except requests.exceptions.Timeout:
                return None

    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(send, range(len(bodies))))
    assert all(answer is None for answer in answers[1::2]), (
        "the 50 ms clients should have left during the wait"
    )
    for body, answer in zip(bodies[0::2], answers[0::2]):
        assert answer is not None and answer.status_code == 200, answer and answer.text
        assert answer.json() == stack.post("scoring-async", body).json()
        sizes = parse_server_timing_notes(answer.headers["Server-Timing"]).values()
        assert all(1 <= int(size) <= len(bodies) for size in sizes)
    again = post(batched, SEED_BODY)
    assert again.status_code == 200 and again.json() == stack.post("scoring-async", SEED_BODY).json()
