"""The compose stack under podman: built, started on the host network, waited for, removed.

docker-compose (Debian's v1) talks to podman's Docker-compatible API. The compose file run is
docker-compose.yml with docker-compose.host.yml over it, as ``docker-compose config`` merges them,
with one change compose v1 cannot make in an override: the published ``ports`` are dropped, as they
mean nothing on the host's network (docker-py refuses them with ``network_mode: host``).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from benchmark.containers.podman import engine_env, inspect, podman, project_containers
from benchmark.containers.settings import BASE_DOCKERFILE, COMPOSE_FILES, ROOT, ContainerTestSettings
from scoring_bench.core.settings import Settings


def host_network_env(path: Path) -> dict[str, str]:
    """docker/host-network.env: KEY=VALUE lines (comments and blank lines skipped)."""
    pairs = (
        line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


class ComposeStack:
    """``hermetic``: no setting of this shell reaches the containers (make docker-test: a
    BROKER_URL set here would send the test's tasks to the machine's RabbitMQ); otherwise compose
    passes them on as ``make docker-up`` does (make podman-up: NUM_MODELS=4 make podman-up)."""

    def __init__(
        self,
        settings: ContainerTestSettings,
        docker_host: str,
        ports: dict[str, str],
        run_dir: Path,
        hermetic: bool = True,
    ):
        self.settings = settings
        self.run_dir = run_dir
        stack_settings = {name.upper() for name in Settings.model_fields}
        self.env = {
            k: v
            for k, v in engine_env().items()
            # compose's own knobs from the shell would change what runs
            if not k.startswith("COMPOSE_") and not (hermetic and k.upper() in stack_settings)
        }
        self.env.update(
            {
                "DOCKER_HOST": docker_host,
                "IMAGE_PREFIX": settings.image_prefix,
                "IMAGE_TAG": settings.image_tag,
                **ports,
            }
        )
        self.rendered = run_dir / "compose.yml"

    def compose(
        self, *args: str, files: Sequence[Path] | None = None, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        chosen = files if files is not None else [self.rendered]
        argv = ["docker-compose", "-p", self.settings.project]
        for f in chosen:
            argv += ["-f", str(f)]
        return subprocess.run([*argv, *args], cwd=ROOT, env=self.env, check=True, text=True, **kw)

    def render(self) -> dict[str, Any]:
        merged = self.compose("config", files=COMPOSE_FILES, capture_output=True).stdout
        config: dict[str, Any] = yaml.safe_load(merged)
        for entry in config["services"].values():
            if entry.get("network_mode") == "host":
                entry.pop("ports", None)
        self.rendered.write_text(yaml.safe_dump(config, sort_keys=False))
        return config

    def build(self, python_image: str) -> None:
        """The base image with podman itself (its RUN steps need the host network for nothing but
        the index path), then every service image by compose, FROM it."""
        podman(
            "build",
            "--network",
            "host",
            "-f",
            str(BASE_DOCKERFILE),
            "--build-arg",
            f"PYTHON_IMAGE={python_image}",
            "--build-arg",
            "PIP_SOURCE=wheels",
            "-t",
            self.settings.image("base"),
            str(ROOT),
            capture=False,
            stdout=(self.run_dir / "build-base.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        with (self.run_dir / "build-services.log").open("w") as log:
            self.compose("build", stdout=log, stderr=subprocess.STDOUT)

    def up(self) -> None:
        with (self.run_dir / "compose-up.log").open("w") as log:
            self.compose("up", "-d", "--no-build", stdout=log, stderr=subprocess.STDOUT)

    def wait_healthy(self) -> dict[str, float]:
        """Seconds until each container was healthy (or, the seed job, exited 0); fails on a
        non-zero exit or at the timeout, naming the containers still waited for."""
        start, ready = time.monotonic(), dict[str, float]()
        deadline = start + self.settings.health_timeout_s
        while True:
            waiting = []
            for info in inspect(project_containers(self.settings.project)):
                name, state = info["Name"].lstrip("/"), info["State"]
                health = ((state.get("Health") or state.get("Healthcheck") or {}).get("Status")) or "-"
                if state["Status"] == "exited" and state.get("ExitCode") != 0:
                    raise RuntimeError(f"{name} exited with code {state.get('ExitCode')} (see its log)")
                if state["Status"] == "exited" or (
                    state["Status"] == "running" and health in ("healthy", "-")
                ):
                    ready.setdefault(name, round(time.monotonic() - start, 1))
                else:
                    waiting.append(f"{name}({state['Status']}/{health})")
            if not waiting and ready:
                return ready
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"not healthy within {self.settings.health_timeout_s:.0f} s: {' '.join(waiting)}"
                )
            time.sleep(1)

    def save_logs(self) -> None:
        logs = self.run_dir / "logs"
        logs.mkdir(exist_ok=True)
        for info in inspect(project_containers(self.settings.project)):
            name = info["Name"].lstrip("/")
            out = podman("logs", info["Id"], check=False)
            (logs / f"{name}.log").write_text(out.stdout + out.stderr)

    def down(self) -> list[str]:
        """Everything of the project removed: by compose, then by podman whatever compose left.
        Returns what was left behind (nothing, unless removal itself failed)."""
        if self.rendered.exists():
            with (self.run_dir / "compose-down.log").open("w") as log:
                try:
                    self.compose(
                        "down",
                        "--remove-orphans",
                        "--volumes",
                        "--timeout",
                        "10",
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                except subprocess.CalledProcessError:
                    pass  # podman's own clean-up below
        left = project_containers(self.settings.project)
        if left:
            podman("rm", "--force", "--time", "10", *left, check=False)
        network = f"{self.settings.project}_default"
        if podman("network", "exists", network, check=False).returncode == 0:
            podman("network", "rm", "--force", network, check=False)
        return project_containers(self.settings.project)
