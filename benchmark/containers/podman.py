"""podman, as make docker-test drives it: its configuration, its Docker-compatible API (for
docker-compose) and the health checks it cannot schedule itself on these machines.

podman schedules a container's health checks with systemd timers; without systemd (our CI
machines) a check runs only when asked (``podman healthcheck run``), so a container would stay
"starting" forever and compose's ``condition: service_healthy`` would never be met.
:class:`HealthTicker` asks, as the timers would: every ``STARTING_EVERY_S`` while a container is
starting, then at its own interval.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmark.containers.settings import CONTAINERS_CONF

STARTING_EVERY_S = 2.0


def engine_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for podman (and docker-compose): the project's containers.conf unless one is set."""
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    env.update(extra or {})
    return env


def podman(
    *args: str, check: bool = True, capture: bool = True, **kw: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], env=engine_env(), check=check, capture_output=capture, text=True, **kw
    )


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def project_containers(project: str, all_states: bool = True) -> list[str]:
    """The ids of a compose project's containers (compose labels them)."""
    args = ["ps", "-q", "--filter", f"label=com.docker.compose.project={project}"]
    return podman(*args, *(["-a"] if all_states else []), check=False).stdout.split()


def inspect(ids: Sequence[str]) -> list[dict[str, Any]]:
    if not ids:
        return []
    out = podman("inspect", *ids, check=False).stdout
    return json.loads(out) if out.strip() else []


@contextmanager
def api_service(run_dir: Path) -> Iterator[str]:
    """podman's Docker-compatible API on a socket of our own, for docker-compose; yields DOCKER_HOST.
    The service process is ours: stopped (and waited for) on the way out, whatever happened."""
    socket = run_dir / "podman.sock"
    log = (run_dir / "podman-service.log").open("w")
    proc = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        env=engine_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"podman system service did not start: see {log.name}")
            time.sleep(0.1)
        yield f"unix://{socket}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        socket.unlink(missing_ok=True)


def _interval_s(info: dict[str, Any]) -> float:
    check = (info.get("Config") or {}).get("Healthcheck") or {}
    return float(check.get("Interval") or 30e9) / 1e9


def _health(info: dict[str, Any]) -> str | None:
    state = info.get("State") or {}
    health = state.get("Health") or state.get("Healthcheck") or {}
    return health.get("Status") or None


class HealthTicker:
    """Runs the health checks of a compose project's running containers in a thread of its own."""

    def __init__(self, project: str) -> None:
        self.project = project
        self._stop = threading.Event()
        self._due: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, name="health-ticker", daemon=True)

    def __enter__(self) -> HealthTicker:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            now = time.monotonic()
            for info in inspect(project_containers(self.project, all_states=False)):
                cid, health = info["Id"], _health(info)
                if health is None or now < self._due.get(cid, 0.0):
                    continue
                podman("healthcheck", "run", cid, check=False, timeout=60)
                every = STARTING_EVERY_S if health == "starting" else _interval_s(info)
                self._due[cid] = time.monotonic() + every
