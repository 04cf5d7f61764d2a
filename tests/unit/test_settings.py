from __future__ import annotations

import pytest
from pydantic import ValidationError

from scoring_bench.core.settings import Settings


def test_defaults_match_the_documented_stack() -> None:
    s = Settings(_env_file=None)
    assert (s.model_sync_port, s.scoring_sync_port, s.model_async_port, s.scoring_async_port) == (
        5000,
        5001,
        8000,
        8001,
    )
    assert s.host == "127.0.0.1" and s.num_models == 2
    assert (s.model_latency, s.model_latency_min_ms, s.model_latency_max_ms) == ("uniform", 40.0, 50.0)
    assert s.embedded_redis_port != 6379
    assert s.model_sync_endpoint == "http://127.0.0.1:5000/api/v1/ml/sync/predict"


def test_environment_variables_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUM_MODELS", "4")
    monkeypatch.setenv("REDIS_URL", "redis://example:1/2")
    monkeypatch.setenv("SCORING_SYNC_WORKER_CLASS", "meinheld")
    s = Settings()
    assert s.num_models == 4 and s.scoring_sync_worker_class == "meinheld"
    assert s.feature_store_url == "redis://example:1/2"


def test_embedded_store_url_without_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert Settings(embedded_redis_port=7777).feature_store_url == "redis://127.0.0.1:7777/0"


def test_invalid_values_are_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(model_latency_min_ms=50, model_latency_max_ms=40)
    with pytest.raises(ValidationError):
        Settings(scoring_sync_worker_class="tornado")
    with pytest.raises(ValidationError):
        Settings(num_models=0)


def test_child_env_round_trips_and_drops_stale_values(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Settings(num_models=3, redis_persist=True, model_latency_seed=None, redis_url=None)
    env = original.child_env({"MODEL_LATENCY_SEED": "99", "REDIS_URL": "redis://stale", "PATH": "/bin"})
    assert env["PATH"] == "/bin"
    assert "MODEL_LATENCY_SEED" not in env and "REDIS_URL" not in env
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MODEL_LATENCY_SEED", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert Settings() == original
