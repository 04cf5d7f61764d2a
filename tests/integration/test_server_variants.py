"""The other servers the benchmark compares also serve correctly (meinheld, plain asyncio, h11, the
seed-faithful preset's servers). The other clients and model-call policies are tested in process,
in tests/apps/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import SEED_BODY, stack_settings, start_stack

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
