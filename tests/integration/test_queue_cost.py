"""The queue's cost-per-task settings on a real stack: Celery's own choices (a Redis client per broker
operation, STARTED stored, the stored state read before a SUCCESS) still serve tasks end to end; the
defaults are what every other queue test runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import SEED_BODY, stack_settings, start_stack

pytestmark = pytest.mark.integration


def test_celerys_own_choices_still_serve_tasks(tmp_path: Path) -> None:
    settings = stack_settings(
        tmp_path,
        queue_broker_client="operation",
        queue_track_started=True,
        queue_result_read_before_success=True,
    )
    with start_stack(settings) as stack:
        for _ in range(3):
            answer = stack.post("scoring-queue", SEED_BODY, params={"wait_ms": 5000})
            assert answer.status_code == 200 and answer.json()["status"] == "SUCCESS", answer.text


def test_a_gevent_worker_serves_tasks(tmp_path: Path) -> None:
    """QUEUE_WORKER_POOL=gevent: the worker patches before it imports (it never answered a ping before)."""
    settings = stack_settings(tmp_path, queue_worker_pool="gevent", queue_worker_concurrency=16)
    with start_stack(settings) as stack:
        answer = stack.post("scoring-queue", SEED_BODY, params={"wait_ms": 5000})
        assert answer.status_code == 200 and answer.json()["status"] == "SUCCESS", answer.text
