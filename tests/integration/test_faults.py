"""Dependencies whose process dies give fast, explicit 5xx answers from the real servers (a slow
or unreachable dependency, in process: tests/apps/)."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from tests.integration.conftest import SCORING_SERVICES, SEED_BODY, Stack, stack_settings, start_stack

pytestmark = pytest.mark.integration


def _kill(stack: Stack, name: str) -> None:
    proc = psutil.Process(stack.pid(name))
    procs = [proc, *proc.children(recursive=True)]
    for p in procs:
        p.kill()
    psutil.wait_procs(procs, timeout=5)


def test_a_model_that_is_down_gives_502(tmp_path: Path) -> None:
    with start_stack(stack_settings(tmp_path)) as stack:
        _kill(stack, "model-sync")
        _kill(stack, "model-async")
        for name in SCORING_SERVICES:
            resp = stack.post(name, SEED_BODY)
            assert resp.status_code == 502, resp.text
            assert resp.json()["error"] == "model_unavailable"
            health = stack.http.get(stack.url(name, "/api/v1/healthcheck"), timeout=5)
            assert health.status_code == 503
            assert health.json()["dependencies"]["model_api"].startswith("DOWN")


def test_redis_down_gives_503(tmp_path: Path) -> None:
    with start_stack(stack_settings(tmp_path)) as stack:
        _kill(stack, "redis")
        for name in SCORING_SERVICES:
            resp = stack.post(name, SEED_BODY)
            assert resp.status_code == 503, resp.text
            assert resp.json()["error"] == "feature_store_unavailable"
            health = stack.http.get(stack.url(name, "/api/v1/healthcheck"), timeout=5).json()
            assert health["status"] == "DEGRADED"
            assert health["dependencies"]["feature_store"].startswith("DOWN")
