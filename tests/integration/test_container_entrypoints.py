"""What the containers run, run here without Docker: the seed job (``python -m feature_store``),
``python -m scoring_bench.stack.serve`` serving a service, and the images' health checks against it.

The services bind loopback here (HOST is a setting; the images set 0.0.0.0).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis

from feature_store import embedded
from scoring_bench.core.settings import Settings
from scoring_bench.stack.servers import SERVICES, service
from tests.container_files import healthcheck_argv, instructions, read_files
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SETTING_NAMES = {name.upper() for name in Settings.model_fields}


def clean_env(**values: str) -> dict[str, str]:
    """This environment without any setting of the developer's shell, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES}
    env["PYTHONPATH"] = str(ROOT)
    env.update(values)
    return env


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    argv = embedded.command(
        embedded.find_binary("auto"), "127.0.0.1", port, tmp_path_factory.mktemp("redis"), persist=False
    )
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "the embedded Redis did not start"
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)


def test_the_seed_job_seeds_once(redis_url: str) -> None:
    prefix = f"scoring-bench-test-{uuid.uuid4().hex[:8]}:"
    env = clean_env(REDIS_URL=redis_url, REDIS_KEY_PREFIX=prefix, NUM_ENTITIES="50")
    seed = [sys.executable, "-m", "feature_store"]
    first = subprocess.run(seed, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0 and "seeded 50 entities" in first.stdout, first.stderr
    again = subprocess.run(seed, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "already seeded" in again.stdout
    assert len(list(redis.Redis.from_url(redis_url).scan_iter(match=prefix + "*"))) == 51
    unset = subprocess.run(seed, env=clean_env(), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert unset.returncode == 2 and "REDIS_URL" in unset.stderr


def _wait(
    check: list[str], env: dict[str, str], proc: subprocess.Popen[bytes], timeout_s: float = 45
) -> None:
    deadline = time.monotonic() + timeout_s
    while subprocess.run(check, env=env, cwd=ROOT, capture_output=True, timeout=30).returncode != 0:
        assert proc.poll() is None, f"the service exited with {proc.returncode}"
        assert time.monotonic() < deadline, "not healthy in time"
        time.sleep(0.3)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as `docker stop` sends it: the server (pid 1 in a container) stops its workers."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    assert proc.returncode is not None


@pytest.mark.parametrize("name", ["model-sync", "model-async"])
def test_serve_runs_the_server_itself_and_the_image_health_check_passes(name: str, tmp_path: Path) -> None:
    """The container's CMD: the server replaces ``serve`` (same pid), and the image's
    HEALTHCHECK command, run as Docker runs it, passes once the server is up."""
    svc = service(name)
    port_var = f"{svc.settings_key}_PORT".upper()
    env = clean_env(HOST="127.0.0.1", **{port_var: str(free_port())}, MODEL_SYNC_WORKERS="1")
    files = read_files()
    dockerfile = files.compose["services"][name]["build"]["dockerfile"]
    check = healthcheck_argv(instructions(files.dockerfiles[dockerfile], "HEALTHCHECK")[-1])
    assert check is not None
    check = [sys.executable, *check[1:]]  # `python` of the image: this interpreter here
    with open(tmp_path / "log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scoring_bench.stack.serve", name],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait(check, env, proc)
        assert svc.server in " ".join(psutil.Process(proc.pid).cmdline())  # exec'd, not a child
        assert (
            subprocess.run(
                [sys.executable, "-m", "scoring_bench.stack.serve", "--check", name],
                env=env,
                cwd=ROOT,
                timeout=30,
            ).returncode
            == 0
        )
    finally:
        _stop(proc)
    assert subprocess.run(check, env=env, cwd=ROOT, capture_output=True, timeout=30).returncode != 0


@pytest.mark.parametrize("name", [s.name for s in SERVICES if not s.listens])
def test_the_worker_health_check_passes_once_it_consumes(name: str, redis_url: str, tmp_path: Path) -> None:
    """The worker image's HEALTHCHECK (``serve --check``) against a worker started by ``serve``,
    with the feature store's Redis as its broker, as in compose."""
    env = clean_env(
        HOST="127.0.0.1",
        REDIS_URL=redis_url,
        QUEUE_NAME=f"test-{uuid.uuid4().hex[:8]}",
        QUEUE_WORKER_CONCURRENCY="2",
    )
    check = [sys.executable, "-m", "scoring_bench.stack.serve", "--check", name]
    assert subprocess.run(check, env=env, cwd=ROOT, capture_output=True, timeout=30).returncode != 0
    with open(tmp_path / "log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scoring_bench.stack.serve", name],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait(check, env, proc)
    finally:
        _stop(proc)
