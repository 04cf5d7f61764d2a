"""`up`, `down` and `status` with real processes; failures clean up after themselves."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from scoring_bench.stack.supervisor import StackError, StackState, Supervisor, port_is_free, state_path
from tests.integration.conftest import SEED_BODY, Stack, stack_settings, start_stack

pytestmark = pytest.mark.integration


def _ports(settings) -> list[int]:  # type: ignore[no-untyped-def]
    return [
        settings.model_sync_port,
        settings.scoring_sync_port,
        settings.model_async_port,
        settings.scoring_async_port,
        settings.scoring_batched_port,
        settings.scoring_queue_port,
        settings.embedded_redis_port,
    ]


def test_up_twice_is_harmless_and_down_frees_everything(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path)
    supervisor = Supervisor(settings)
    try:
        first = supervisor.up()
        second = supervisor.up()
        assert [p.pid for p in first.processes] == [p.pid for p in second.processes]
        rows = supervisor.status()
        assert [r["service"] for r in rows] == [
            "redis",
            "model-sync",
            "model-async",
            "scoring-sync",
            "scoring-async",
            "scoring-batched",
            "queue-worker",
            "scoring-queue",
        ]
        assert all(r["health"] == "OK" and r["pid"] for r in rows)
        everything = [psutil.Process(p.pid) for p in first.processes]
        everything += [c for p in list(everything) for c in p.children(recursive=True)]
    finally:
        stopped = supervisor.down()
    assert len(stopped) == 8
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in everything)
    assert all(port_is_free("127.0.0.1", port) for port in _ports(settings))
    assert not state_path(settings).exists()
    assert supervisor.down() == [] and supervisor.status() == []


def test_a_taken_port_is_a_clear_error_and_starts_nothing(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", settings.scoring_async_port))
        squatter.listen()
        with pytest.raises(StackError) as err:
            Supervisor(settings).up()
    message = str(err.value)
    assert str(settings.scoring_async_port) in message and "SCORING_ASYNC_PORT" in message
    assert not state_path(settings).exists()
    assert all(port_is_free("127.0.0.1", p) for p in _ports(settings))


def test_a_service_that_never_gets_healthy_is_named_and_everything_stops(tmp_path: Path) -> None:
    # The async scoring handler points at a model API that does not exist: it starts,
    # but its health check reports the dependency down until the deadline. The deadline lets the
    # services before it start on a busy machine (eight processes spawned at once on two cores).
    settings = stack_settings(
        tmp_path, model_async_url="http://127.0.0.1:9/api/v1/ml/async/predict", health_timeout_s=8.0
    )
    supervisor = Supervisor(settings)
    with pytest.raises(StackError) as err:
        supervisor.up()
    assert "scoring-async did not become healthy" in str(err.value)
    assert "model_api" in str(err.value)
    assert all(r.process() is None for r in supervisor.started)
    assert all(port_is_free("127.0.0.1", p) for p in _ports(settings))


def test_a_process_that_dies_at_start_shows_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "fake-redis-server"
    fake.write_text("#!/bin/sh\necho 'FATAL: cannot start (fake)'\nexit 1\n")
    fake.chmod(0o755)
    settings = stack_settings(tmp_path, redis_server_bin=str(fake))
    with pytest.raises(StackError) as err:
        Supervisor(settings).up()
    assert "redis-server exited during start-up" in str(err.value)
    assert "FATAL: cannot start (fake)" in str(err.value)
    assert not state_path(settings).exists()


def test_stale_state_is_cleaned_on_up(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path)
    with start_stack(settings) as stack:
        victim = psutil.Process(stack.pid("model-sync"))
        victim.kill()
        victim.wait(5)
        fresh = Supervisor(settings).up()  # notices the dead process, restarts everything
        assert fresh.alive()
        assert stack.http.post(stack.url("scoring-sync"), json=SEED_BODY, timeout=10).status_code == 200


def test_a_proxy_in_the_environment_is_never_used_on_loopback(tmp_path: Path) -> None:
    """`up` with a user's HTTP_PROXY (and no NO_PROXY) set, as a new process reads it: the health
    checks, the handlers' model calls and the queue's round trip never go through the proxy (this
    one refuses everything)."""
    settings = stack_settings(tmp_path)
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    env.update(settings.to_env())
    env.update(
        {
            var: "http://127.0.0.1:9"
            for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
        }
    )

    def cli(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scoring_bench.stack.cli", command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    try:
        up = cli("up")
        assert up.returncode == 0, up.stderr
        stack = Stack(settings, StackState.load(state_path(settings)), Supervisor(settings))  # type: ignore[arg-type]
        for name in ("scoring-sync", "scoring-async", "scoring-batched"):
            assert stack.post(name, SEED_BODY).status_code == 200
        queued = stack.post("scoring-queue", SEED_BODY, params={"wait_ms": "5000"})
        assert queued.status_code == 200 and queued.json()["status"] == "SUCCESS"
        assert cli("status").returncode == 0
    finally:
        assert cli("down").returncode == 0
    assert all(port_is_free("127.0.0.1", port) for port in _ports(settings))
